"""The admin in a real browser: headless Debian Chromium driven by Playwright.

Logs in through the login form, opens each Worker section from the sidebar,
checks the dashboard cards against the database, filters errored results,
presses Retry (in the list and on a detail page) and sees the new
JobRequests. Screenshots go to the test artifacts directory.

Playwright never downloads a browser here: it drives /usr/bin/chromium
(``apt-get install chromium``; `.ci/run` installs it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ARTIFACTS, assert_each_job_in_one_table
from webapp import (
    HISTORY,
    WebApp,
    create_admin_user,
    database_counts,
    make_history,
    serve,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
]
CARD_SLUGS = {
    "Successful": "successfulcard",
    "Errored": "erroredcard",
    "Lost": "lostcard",
    "Retried": "retriedcard",
    "Waiting": "waitingcard",
    "Running": "runningcard",
}

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)"
)


@pytest.fixture(scope="module")
def web_app(migrated: None) -> Iterator[WebApp]:
    yield from serve("browser")


@pytest.fixture
def admin_user(db: None):
    return create_admin_user()


@pytest.fixture(scope="module")
def chromium() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def script_errors() -> list[str]:
    """Uncaught JavaScript errors of the page under test."""
    return []


@pytest.fixture
def page(chromium, web_app, script_errors):
    context = chromium.new_context(base_url=web_app.base_url.rstrip("/"), viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.on("pageerror", lambda error: script_errors.append(str(error)))
    yield page
    context.close()


def card_number(page, title: str) -> int:
    return int(page.locator(f"#card-plain_worker_admin_{CARD_SLUGS[title]} .text-4xl").inner_text().strip())


def table_rows(page):
    return page.locator("table tbody tr")


def open_section(page, title: str, path: str) -> None:
    """Click a Worker section in the sidebar (opening the collapsed group first).

    The sidebar links are htmx-boosted: the page body is swapped in place.
    """
    from playwright.sync_api import expect

    link = page.locator("#admin-sidebar").get_by_role("link", name=title, exact=True)
    if not link.is_visible():
        page.locator("#admin-sidebar").get_by_title("Toggle Worker").click()
    link.click()
    page.wait_for_url(f"**{path}")
    expect(page.locator("h1")).to_have_text(title)


def test_admin_in_a_browser(page, script_errors, admin_user, worker):
    from plain.worker.models import Job, JobRequest, JobResult

    make_history(worker)

    # Log in: the admin sends us to the login form and back.
    page.goto("/admin/p/worker/results/")
    assert "/login/" in page.url
    page.get_by_label("Email").fill(admin_user.email)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/p/worker/results/")

    # Every section, from the sidebar, lists every row of its table.
    sections = [
        ("Job requests", "/admin/p/worker/requests/", JobRequest),
        ("Jobs", "/admin/p/worker/jobs/", Job),
        ("Job results", "/admin/p/worker/results/", JobResult),
    ]
    for title, path, model in sections:
        open_section(page, title, path)
        assert table_rows(page).count() == model.objects.count(), title

    # The cards show what the database holds.
    counts = database_counts()
    assert counts == HISTORY
    for title, expected in counts.items():
        assert card_number(page, title) == expected, title

    # Filter errored results: the card's link, then the list's own filter menu. A full
    # page load first: plain.admin binds its list scripts on load, not after the
    # sidebar's htmx-boosted swaps.
    page.get_by_role("link", name="View errored").click()
    page.wait_for_url("**/admin/p/worker/results/?display=Errored")
    assert table_rows(page).count() == HISTORY["Errored"]
    page.goto("/admin/p/worker/results/")
    page.locator('select[name="display"]').select_option("Errored")
    page.wait_for_url("**display=Errored**")
    statuses = page.locator("table tbody tr td:nth-child(4)").all_inner_texts()
    assert [status.strip() for status in statuses] == ["Errored"] * HISTORY["Errored"]

    # Retry one errored result from the list (the action asks for confirmation).
    fail_a = JobResult.objects.get(job_class="app.jobs.FailingJob", retries=0)
    page.locator(f'input[data-action-checkbox][name="{fail_a.id}"]').check()
    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        page.locator('select[name="action_name"]').select_option("Retry")
    fail_a.refresh_from_db()
    retry = JobRequest.objects.get(uuid=fail_a.retry_job_request_uuid)
    assert (retry.job_class, retry.retry_attempt, retry.parameters) == ("app.jobs.FailingJob", 1, fail_a.parameters)
    assert card_number(page, "Waiting") == HISTORY["Waiting"] + 1
    assert card_number(page, "Retried") == HISTORY["Retried"] + 1

    # Open the lost result, read its error, and press Retry there.
    lost = JobResult.objects.get(status="LOST")
    page.goto("/admin/p/worker/results/?display=Lost")
    page.locator("table tbody tr td[data-column-autolink]").first.click()
    page.wait_for_url(f"**/admin/p/worker/results/{lost.id}/")
    assert page.locator("#job-error").inner_text().strip() == lost.error.strip()
    page.get_by_role("button", name="Retry").click()
    page.get_by_role("link", name="Retry (waiting)").wait_for()
    lost.refresh_from_db()
    assert JobRequest.objects.filter(uuid=lost.retry_job_request_uuid, job_class="app.jobs.ExitJob").exists()
    assert page.get_by_role("button", name="Retry").count() == 0
    assert_each_job_in_one_table()

    # A failed result's traceback, and the results page, for people to look at.
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    fail_b = JobResult.objects.filter(job_class="app.jobs.FailingJob", retries=1).order_by("-id").first()
    page.goto(f"/admin/p/worker/results/{fail_b.id}/")
    assert "ValueError: deliberate failure for fail-b" in page.locator("#job-error").inner_text()
    page.screenshot(path=str(ARTIFACTS / "admin-job-result-error.png"), full_page=True)
    page.goto("/admin/p/worker/results/")
    page.screenshot(path=str(ARTIFACTS / "admin-job-results.png"), full_page=True)
    assert (ARTIFACTS / "admin-job-results.png").stat().st_size > 0
    assert script_errors == []
