"""The admin-enabled test app served over real HTTP, for the admin, browser and telemetry tests.

``app.settings_admin`` adds plain.admin (and its packages) to the base test
app. The server is ``python -m app.serve`` in a subprocess, on the session's
database, so pages read exactly the rows the tests commit.
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import ARTIFACTS, TESTS_DIR, plain_command

ADMIN_ENV = {"PLAIN_SETTINGS_MODULE": "app.settings_admin"}


@dataclass
class Page:
    status: int
    url: str
    text: str


@dataclass
class WebApp:
    """A running server and where it is."""

    process: subprocess.Popen
    base_url: str
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return urllib.parse.urljoin(self.base_url, path)

    def log(self) -> str:
        return self.log_path.read_text()


class Session:
    """A cookie-keeping HTTP client, like a browser without JavaScript."""

    def __init__(self, app: WebApp) -> None:
        self.app = app
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def request(self, path: str, data: dict[str, str] | None = None) -> Page:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        try:
            with self.opener.open(self.app.url(path), data=body, timeout=30) as response:
                return Page(response.status, response.url, response.read().decode())
        except urllib.error.HTTPError as error:
            return Page(error.code, error.url, error.read().decode())

    def get(self, path: str) -> Page:
        return self.request(path)

    def post(self, path: str, data: dict[str, str] | None = None) -> Page:
        return self.request(path, data or {})

    def login(self, email: str) -> Page:
        page = self.post("/login/", {"email": email})
        assert page.status == 200 and "/admin/" in page.url, (page.status, page.url, page.text[:500])
        return page


def start_web_app(name: str, extra_env: dict[str, str] | None = None) -> WebApp:
    env = {**os.environ, **ADMIN_ENV, **(extra_env or {})}
    migrate = plain_command("migrate", "--no-input", env=env)
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log_path = ARTIFACTS / f"web-{name}.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.serve", "0"],
            cwd=TESTS_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    assert process.stdout is not None
    line = process.stdout.readline()  # "listening <port>", or "" if the server died
    if not line.startswith("listening "):
        process.kill()
        pytest.fail(f"test web server did not start:\n{log_path.read_text()}")
    return WebApp(process, f"http://127.0.0.1:{line.split()[1]}/", log_path, env)


def stop_web_app(app: WebApp) -> None:
    app.process.terminate()
    try:
        app.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        app.process.kill()
        app.process.wait(timeout=10)
    if app.process.stdout:
        app.process.stdout.close()


def serve(name: str) -> Iterator[WebApp]:
    """Body of a test module's ``web_app`` fixture: start the server, stop it afterwards."""
    app = start_web_app(name)
    try:
        yield app
    finally:
        stop_web_app(app)


def create_admin_user():
    from app.users.models import User

    return User.objects.create(email="admin@example.com", is_admin=True)


#: What make_history() leaves in the tables.
HISTORY = {"Successful": 2, "Errored": 3, "Lost": 1, "Retried": 1, "Waiting": 2, "Running": 1}


def make_history(worker) -> None:
    """Real results from a real worker, then requests waiting and one job held by a (stopped) worker.

    Results: ok-1, ok-2 succeed; fail-a errors; fail-b errors, is retried and
    errors again; gone kills its process (LOST). Then two runnable requests,
    one delayed an hour, and one claimed from the "held" queue.
    """
    import uuid

    from app.jobs import ExitJob, FailingJob, RecordJob
    from conftest import wait_until
    from plain.utils import timezone

    from plain.worker.models import Job, JobRequest, JobResult, WorkerIdentity

    RecordJob("ok-1").run_in_worker()
    RecordJob("ok-2").run_in_worker()
    FailingJob("fail-a").run_in_worker()
    FailingJob("fail-b", retries=1).run_in_worker()
    process = worker()

    def settled(results: int) -> bool:
        return JobResult.objects.count() == results and not JobRequest.objects.exists() and not Job.objects.exists()

    wait_until(lambda: settled(5), message="the worker to record five results")
    # Alone in the queue, so no other job is being handed to the process it kills.
    ExitJob("gone").run_in_worker()
    wait_until(lambda: settled(6), message="the worker to record the lost job")
    assert process.stop() == 0, process.log_path.read_text()

    RecordJob("waiting-1").run_in_worker()
    RecordJob("waiting-2").run_in_worker()
    RecordJob("later").run_in_worker(delay=3600)
    RecordJob("held").run_in_worker(queue="held")
    identity = WorkerIdentity(uuid=uuid.uuid4(), hostname="stopped-host", pid=1)
    assert len(JobRequest.claim(queues=["held"], limit=1, worker=identity, now=timezone.now())) == 1


def database_counts() -> dict[str, int]:
    """The figures the dashboard cards show, counted straight from the tables."""
    from plain.models import Q
    from plain.utils import timezone

    from plain.worker.models import Job, JobRequest, JobResult

    now = timezone.now()
    return {
        "Successful": JobResult.objects.filter(status="SUCCESSFUL").count(),
        "Errored": JobResult.objects.filter(status="ERRORED").count(),
        "Lost": JobResult.objects.filter(status="LOST").count(),
        "Retried": JobResult.objects.exclude(retry_job_request_uuid=None).count(),
        "Waiting": JobRequest.objects.filter(Q(start_at=None) | Q(start_at__lte=now)).count(),
        "Running": Job.objects.count(),
    }


CARD = re.compile(r'<h2 class="text-sm font-semibold">([^<]+)</h2>.*?text-4xl font-bold">\s*(\d+)', re.S)
ROW = re.compile(r'<input data-action-checkbox [^>]*name="(\d+)"')
ERROR_BLOCK = re.compile(r'<pre id="job-error"[^>]*>(.*?)</pre>', re.S)


def card_numbers(html: str) -> dict[str, int]:
    return {title: int(number) for title, number in CARD.findall(html)}


def row_ids(html: str) -> set[int]:
    """Ids of the rows in an admin list page."""
    return {int(row_id) for row_id in ROW.findall(html)}
