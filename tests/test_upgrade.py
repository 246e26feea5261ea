"""Drop-in upgrade: a database migrated and filled by the published plain.worker
0.27.1 switches to this package with `plain migrate` alone, and its pending
jobs run.

The published package is installed with uv into a throwaway virtualenv
(cached between runs under test-artifacts/); it only ever touches its own
app directory and database.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from conftest import ARTIFACTS, DB_KIND, FAST_WORKER_ENV, POSTGRES_SERVER, _admin_execute

PUBLISHED = "plain.worker==0.27.1"
UV = [sys.executable, "-m", "uv"]  # uv is a dev dependency, so it is in this virtualenv

APP_SETTINGS = """
SECRET_KEY = "upgrade-test"
URLS_ROUTER = "app.urls.AppRouter"
INSTALLED_PACKAGES = ["plain.models", "plain.worker"]
"""

APP_URLS = """
from plain.urls import Router


class AppRouter(Router):
    namespace = ""
    urls = []
"""

APP_JOBS = """
import json
import os

from plain.worker import Job, register_job


@register_job
class WriteJob(Job):
    def __init__(self, path, key, when=None, day=None):
        self.path = path
        self.key = key
        self.when = when
        self.day = day

    def run(self):
        with open(self.path, "a") as f:
            f.write(json.dumps({
                "key": self.key,
                "when": self.when.isoformat() if self.when else None,
                "day": self.day.isoformat() if self.day else None,
            }) + "\\n")


@register_job
class KeyedJob(WriteJob):
    def get_unique_key(self):
        return self.key
"""

ENQUEUE = """
import datetime
import sys

import plain.runtime

plain.runtime.setup()
from app.jobs import KeyedJob, WriteJob

path = sys.argv[1]
WriteJob(path, "plain").run_in_worker()
WriteJob(path, "typed", when=datetime.datetime(2024, 2, 29, 12, 0, tzinfo=datetime.timezone.utc),
         day=datetime.date(2024, 2, 29)).run_in_worker()
WriteJob(path, "urgent").run_in_worker(priority=10, queue="default")
WriteJob(path, "retrying").run_in_worker(retries=3)
WriteJob(path, "was-delayed").run_in_worker(delay=1)
KeyedJob(path, "keyed").run_in_worker()
"""


@pytest.fixture(scope="module")
def published_python() -> Path:
    venv = ARTIFACTS / ".venvs" / "published-0.27.1"
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    if not marker.exists():
        subprocess.run([*UV, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
        subprocess.run([*UV, "pip", "install", "-q", "--python", str(python), PUBLISHED, "psycopg[binary]"], check=True)
        marker.write_text(PUBLISHED)
    return python


@pytest.fixture
def legacy_app(tmp_path: Path) -> tuple[Path, str]:
    app = tmp_path / "project" / "app"
    app.mkdir(parents=True)
    (app / "__init__.py").write_text("")
    (app / "settings.py").write_text(textwrap.dedent(APP_SETTINGS))
    (app / "urls.py").write_text(textwrap.dedent(APP_URLS))
    (app / "jobs.py").write_text(textwrap.dedent(APP_JOBS))
    if DB_KIND == "sqlite":
        yield app.parent, f"sqlite:///{tmp_path / 'legacy.sqlite3'}"
        return
    name = f"plainworker_upgrade_{uuid.uuid4().hex[:8]}"
    _admin_execute(f'CREATE DATABASE "{name}"')
    yield app.parent, f"{POSTGRES_SERVER}/{name}"
    _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(python: Path | str, args: list[str], project: Path, database_url: str, timeout: float = 120):
    env = {**os.environ, "DATABASE_URL": database_url, **FAST_WORKER_ENV}
    env.pop("PLAIN_SETTINGS_MODULE", None)
    return subprocess.run([str(python), *args], cwd=project, env=env, capture_output=True, text=True, timeout=timeout)


def test_published_database_upgrades_and_its_pending_jobs_run(published_python, legacy_app):
    project, database_url = legacy_app
    output = project / "ran.jsonl"

    migrated = run(published_python, ["-m", "plain", "migrate", "--no-input"], project, database_url)
    assert migrated.returncode == 0, migrated.stderr
    assert "plainworker.0002_job_span_id_job_trace_id_jobrequest_span_id_and_more... OK" in migrated.stdout
    enqueued = run(published_python, ["-c", ENQUEUE, str(output)], project, database_url)
    assert enqueued.returncode == 0, enqueued.stderr

    upgraded = run(sys.executable, ["-m", "plain", "migrate", "--no-input"], project, database_url)
    assert upgraded.returncode == 0, upgraded.stderr
    applied = [line.strip() for line in upgraded.stdout.splitlines() if line.strip().startswith("Applying")]
    assert applied == [
        "Applying plainworker.0003_worker_tracking... OK",
        "Applying plainworker.0004_claim_index_and_notify... OK",
        "Applying plainworker.0005_schedule_runs... OK",
    ]

    check = run(sys.executable, ["-m", "plain", "makemigrations", "--check", "--dry-run"], project, database_url)
    assert check.returncode == 0, check.stdout + check.stderr

    worker = subprocess.Popen(
        [sys.executable, "-m", "plain", "worker", "run", "--max-processes", "1"],
        cwd=project,
        env={**os.environ, "DATABASE_URL": database_url, **FAST_WORKER_ENV},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        rows = _wait_for_lines(output, 6, worker)
    finally:
        worker.terminate()
        log = worker.communicate(timeout=30)[0]
    assert worker.returncode == 0, log

    by_key = {row["key"]: row for row in rows}
    assert sorted(by_key) == ["keyed", "plain", "retrying", "typed", "urgent", "was-delayed"], log
    assert rows[0]["key"] == "urgent"  # priority still honoured for rows written by the old version
    assert by_key["typed"] == {"key": "typed", "when": "2024-02-29T12:00:00+00:00", "day": "2024-02-29"}

    status = run(
        sys.executable,
        [
            "-c",
            "import plain.runtime; plain.runtime.setup();"
            "from plain.worker.models import JobRequest, Job, JobResult;"
            "import json; print(json.dumps([JobRequest.objects.count(), Job.objects.count(),"
            " sorted(JobResult.objects.values_list('status', flat=True))]))",
        ],
        project,
        database_url,
    )
    assert json.loads(status.stdout) == [0, 0, ["SUCCESSFUL"] * 6], status.stderr


def _wait_for_lines(path: Path, count: int, worker: subprocess.Popen, timeout: float = 60) -> list[dict]:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            lines = [json.loads(line) for line in path.read_text().splitlines() if line]
            if len(lines) >= count:
                time.sleep(0.3)
                return [json.loads(line) for line in path.read_text().splitlines() if line]
        if worker.poll() is not None:
            break
        time.sleep(0.1)
    pytest.fail(f"only {path.read_text() if path.exists() else 'no'} output from the upgraded worker")
