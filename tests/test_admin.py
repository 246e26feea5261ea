"""The admin pages over real HTTP: sections, cards, filters, search, Retry and Delete.

The admin-enabled app (app.settings_admin) runs in a server subprocess on
this session's database; the rows come from a real worker (webapp.make_history).
The browser-driven version of the main path is in test_browser.py.
"""

from __future__ import annotations

import html
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from conftest import TESTS_DIR, assert_each_job_in_one_table, plain_command
from webapp import (
    ERROR_BLOCK,
    HISTORY,
    Session,
    WebApp,
    card_numbers,
    create_admin_user,
    database_counts,
    make_history,
    row_ids,
    serve,
)

RESULTS = "/admin/p/worker/results/"
REQUESTS = "/admin/p/worker/requests/"
JOBS = "/admin/p/worker/jobs/"


@pytest.fixture(scope="module")
def web_app(migrated: None) -> Iterator[WebApp]:
    yield from serve("admin")


@pytest.fixture
def admin_user(db: None):
    return create_admin_user()


def logged_in(web_app, user) -> Session:
    session = Session(web_app)
    session.login(user.email)
    return session


def test_admin_module_is_not_loaded_without_plain_admin(db):
    """The base test app has no plain.admin: nothing imports plain.worker.admin."""
    assert "plain.worker.admin" not in sys.modules
    assert "plain.admin" not in sys.modules


def test_worker_runs_jobs_when_plain_admin_cannot_be_imported(db):
    from app.records.models import Execution

    blocked = (
        "import runpy, sys; sys.modules['plain.admin'] = None; "
        "sys.argv = ['plain', 'worker', 'run-job', 'app.jobs.RecordJob', '--args', '[\"no-admin\"]']; "
        "runpy.run_module('plain', run_name='__main__')"
    )
    result = subprocess.run([sys.executable, "-c", blocked], cwd=TESTS_DIR, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert Execution.objects.filter(key="no-admin").count() == 1
    assert plain_command("worker", "registered-jobs").returncode == 0


def test_anonymous_users_are_sent_to_log_in(web_app, db):
    page = Session(web_app).get(RESULTS)
    assert page.url.startswith(web_app.url("/login/")), page.url


def test_each_section_lists_its_rows_and_shows_their_details(web_app, admin_user, worker):
    from plain.worker.models import Job, JobRequest, JobResult

    make_history(worker)
    session = logged_in(web_app, admin_user)
    for path, model in [(REQUESTS, JobRequest), (JOBS, Job), (RESULTS, JobResult)]:
        page = session.get(path)
        assert page.status == 200, page.text[:2000]
        rows = list(model.objects.all())
        assert row_ids(page.text) == {row.id for row in rows}, path
        for row in rows:
            detail = session.get(f"{path}{row.id}/")
            assert detail.status == 200, (path, row.id)
            assert str(row.uuid) in detail.text
            assert row.job_class in detail.text


def test_cards_match_the_database(web_app, admin_user, worker):
    make_history(worker)
    session = logged_in(web_app, admin_user)
    for path in (RESULTS, REQUESTS, JOBS):
        assert card_numbers(session.get(path).text) == database_counts() == HISTORY


def test_result_filters(web_app, admin_user, worker):
    from plain.worker.models import JobResult

    make_history(worker)
    session = logged_in(web_app, admin_user)
    expected = {
        "Successful": JobResult.objects.filter(status="SUCCESSFUL"),
        "Errored": JobResult.objects.filter(status="ERRORED"),
        "Cancelled": JobResult.objects.filter(status="CANCELLED"),
        "Lost": JobResult.objects.filter(status="LOST"),
        "Retried": JobResult.objects.exclude(retry_job_request_uuid=None),
    }
    for display, queryset in expected.items():
        page = session.get(f"{RESULTS}?display={display}")
        assert row_ids(page.text) == set(queryset.values_list("id", flat=True)), display
    assert len(row_ids(session.get(f"{RESULTS}?display=Errored").text)) == HISTORY["Errored"]


def test_search_by_uuid_and_job_class(web_app, admin_user, worker):
    from plain.worker.models import JobRequest, JobResult

    make_history(worker)
    session = logged_in(web_app, admin_user)
    lost = JobResult.objects.get(status="LOST")
    assert row_ids(session.get(f"{RESULTS}?search={lost.uuid}").text) == {lost.id}
    assert lost.id in row_ids(session.get(f"{RESULTS}?search={str(lost.uuid)[:13]}").text)
    assert row_ids(session.get(f"{RESULTS}?search={lost.job_request_uuid}").text) == {lost.id}
    failing = set(JobResult.objects.filter(job_class="app.jobs.FailingJob").values_list("id", flat=True))
    assert len(failing) == 3
    assert row_ids(session.get(f"{RESULTS}?search=FailingJob").text) == failing
    waiting = JobRequest.objects.filter(queue="default").order_by("id").first()
    assert row_ids(session.get(f"{REQUESTS}?search={waiting.uuid}").text) == {waiting.id}


def test_failed_result_shows_its_error_and_traceback(web_app, admin_user, worker):
    from plain.worker.models import JobResult

    make_history(worker)
    session = logged_in(web_app, admin_user)
    failed = JobResult.objects.get(job_class="app.jobs.FailingJob", retry_attempt=0, retries=0)
    page = session.get(f"{RESULTS}{failed.id}/")
    block = ERROR_BLOCK.search(page.text)
    assert block, page.text[:3000]
    shown = html.unescape(block.group(1))
    assert shown == failed.error
    assert shown.startswith("Traceback (most recent call last):")
    assert shown.rstrip().endswith("ValueError: deliberate failure for fail-a")
    assert 'raise ValueError(f"deliberate' in shown
    assert 'raise ValueError(f"deliberate' not in block.group(1), "the traceback must be HTML-escaped"
    assert "data-retry-button" in page.text


def test_retry_action_in_the_list_retries_only_retryable_results(web_app, admin_user, worker):
    from plain.worker.models import JobRequest, JobResult

    make_history(worker)
    session = logged_in(web_app, admin_user)
    fail_a = JobResult.objects.get(job_class="app.jobs.FailingJob", retries=0)
    already_retried = JobResult.objects.get(job_class="app.jobs.FailingJob", retries=1, retry_attempt=0)
    successful = JobResult.objects.filter(status="SUCCESSFUL").first()
    before = set(JobRequest.objects.values_list("uuid", flat=True))

    page = session.post(
        RESULTS,
        {"action_name": "Retry", "action_ids": f"{fail_a.id},{already_retried.id},{successful.id}"},
    )
    assert page.status == 200 and page.url.endswith(RESULTS), (page.status, page.url)

    new = JobRequest.objects.exclude(uuid__in=before)
    assert new.count() == 1
    request = new.get()
    fail_a.refresh_from_db()
    assert fail_a.retry_job_request_uuid == request.uuid
    assert (request.job_class, request.parameters, request.retry_attempt) == (
        "app.jobs.FailingJob",
        fail_a.parameters,
        1,
    )
    successful.refresh_from_db()
    assert successful.retry_job_request_uuid is None
    assert_each_job_in_one_table()


def test_retry_button_on_the_detail_page(web_app, admin_user, worker):
    from plain.worker.models import JobRequest, JobResult

    make_history(worker)
    session = logged_in(web_app, admin_user)
    lost = JobResult.objects.get(status="LOST")
    before = JobRequest.objects.count()

    page = session.post(f"{RESULTS}{lost.id}/")
    assert page.status == 200 and page.url.endswith(f"{RESULTS}{lost.id}/")
    lost.refresh_from_db()
    request = JobRequest.objects.get(uuid=lost.retry_job_request_uuid)
    assert request.job_class == "app.jobs.ExitJob" and request.retry_attempt == 1
    assert f'href="{REQUESTS}{request.id}/"' in page.text, "the page links to the retry"
    assert "data-retry-button" not in page.text

    session.post(f"{RESULTS}{lost.id}/")  # pressing it again changes nothing
    assert JobRequest.objects.count() == before + 1

    successful = JobResult.objects.filter(status="SUCCESSFUL").first()
    assert "data-retry-button" not in session.get(f"{RESULTS}{successful.id}/").text
    session.post(f"{RESULTS}{successful.id}/")
    assert JobRequest.objects.count() == before + 1


def test_delete_requests_and_jobs(web_app, admin_user, worker):
    from plain.worker.models import Job, JobRequest

    make_history(worker)
    session = logged_in(web_app, admin_user)
    waiting = list(JobRequest.objects.filter(queue="default").order_by("id"))

    session.post(REQUESTS, {"action_name": "Delete", "action_ids": str(waiting[0].id)})
    assert not JobRequest.objects.filter(id=waiting[0].id).exists()
    assert JobRequest.objects.filter(id=waiting[1].id).exists()

    confirm = session.get(f"{REQUESTS}{waiting[1].id}/delete/")
    assert confirm.status == 200 and "Are you sure" in confirm.text
    page = session.post(f"{REQUESTS}{waiting[1].id}/delete/")
    assert page.url.endswith(REQUESTS)
    assert not JobRequest.objects.filter(id=waiting[1].id).exists()

    from app.jobs import RecordJob
    from plain.utils import timezone

    from plain.worker.models import WorkerIdentity

    RecordJob("held-2").run_in_worker(queue="held")
    identity = WorkerIdentity(uuid=uuid.uuid4(), hostname="stopped-host", pid=2)
    JobRequest.claim(queues=["held"], limit=1, worker=identity, now=timezone.now())
    first, second = Job.objects.order_by("id")
    assert row_ids(session.get(JOBS).text) == {first.id, second.id}
    session.post(JOBS, {"action_name": "Delete", "action_ids": str(first.id)})
    assert list(Job.objects.all()) == [second]
    page = session.post(f"{JOBS}{second.id}/delete/")
    assert page.url.endswith(JOBS)
    assert not Job.objects.exists()

    # Deleting is a cancel: each deleted row left a CANCELLED result behind.
    from plain.worker.models import JobResult

    cancelled = JobResult.objects.cancelled()
    assert set(cancelled.values_list("job_request_uuid", flat=True)) == {
        waiting[0].uuid,
        waiting[1].uuid,
        first.job_request_uuid,
        second.job_request_uuid,
    }
    assert set(cancelled.values_list("error", flat=True)) == {"Cancelled: deleted from the admin."}
