"""Test harness: one real database per session, real worker subprocesses.

The database is chosen with PLAINWORKER_TEST_DB=sqlite|postgres (default
sqlite); `scripts/test` runs the suite once for each. Every session gets its
own fresh database (a temp SQLite file, or a new PostgreSQL database named
after the process), so sessions can run side by side.

Worker subprocesses must see the tests' rows, so tests use committed data:
the `db` fixture here truncates the tables before each test instead of
wrapping it in a rolled-back transaction.

This module runs before Plain is set up (pytest loads it before
plain.pytest's pytest_configure), which is why DATABASE_URL is set at import.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).parent
DB_KIND = os.environ.get("PLAINWORKER_TEST_DB", "sqlite")
POSTGRES_SERVER = os.environ.get("PLAINWORKER_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432")
ARTIFACTS = Path(os.environ.get("PLAINWORKER_TEST_ARTIFACTS", TESTS_DIR.parent / "test-artifacts"))

#: Short intervals for every worker the tests start (seconds).
FAST_WORKER_ENV = {
    "PLAIN_WORKER_HEARTBEAT_INTERVAL": "0.5",
    "PLAIN_WORKER_HEARTBEAT_TIMEOUT": "3",
    "PLAIN_WORKER_POLL_INTERVAL": "0.05",
    "PLAIN_WORKER_SHUTDOWN_TIMEOUT": "10",
    "PLAIN_WORKER_STATS_EVERY": "0",
}

assert DB_KIND in ("sqlite", "postgres"), f"PLAINWORKER_TEST_DB must be sqlite or postgres, not {DB_KIND!r}"


def _admin_execute(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def _create_database() -> tuple[str, Callable[[], None]]:
    if DB_KIND == "sqlite":
        directory = tempfile.mkdtemp(prefix="plainworker-test-")
        path = Path(directory) / "test.sqlite3"

        def drop() -> None:
            for file in Path(directory).glob("*"):
                file.unlink()
            Path(directory).rmdir()

        return f"sqlite:///{path}", drop
    name = f"plainworker_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    _admin_execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return f"{POSTGRES_SERVER}/{name}", drop


if "PLAINWORKER_TEST_DATABASE_URL" in os.environ:
    # Imported again in a process the tests spawned: use the session's database.
    DATABASE_URL, _drop_database = os.environ["PLAINWORKER_TEST_DATABASE_URL"], lambda: None
else:
    DATABASE_URL, _drop_database = _create_database()
    os.environ["PLAINWORKER_TEST_DATABASE_URL"] = DATABASE_URL
os.environ["DATABASE_URL"] = DATABASE_URL
os.environ.setdefault("PLAIN_LOG_LEVEL", "INFO")
os.chdir(TESTS_DIR)


def pytest_unconfigure(config: pytest.Config) -> None:
    from plain.models import db_connection

    if db_connection.has_connection():
        db_connection.close()
    _drop_database()


def plain_command(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `plain ...` in the test app, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "plain", *args],
        cwd=TESTS_DIR,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def migrated() -> None:
    result = plain_command("migrate", "--no-input")
    assert result.returncode == 0, result.stdout + result.stderr


TABLES = [
    "plainworker_jobrequest",
    "plainworker_job",
    "plainworker_jobresult",
    "plainworker_worker",
    "records_execution",
    "users_user",
]


@pytest.fixture
def db(migrated: None) -> Iterator[None]:
    """Committed-data database access (workers in other processes see it).

    Replaces plain.models' rolled-back `db` fixture for this suite.
    """
    from plain.models import db_connection
    from plain.models.backends.base.base import BaseDatabaseWrapper

    BaseDatabaseWrapper.cursor = BaseDatabaseWrapper._enabled_cursor
    truncate(db_connection)
    yield
    db_connection.close()


def truncate(connection) -> None:
    extra = [name for name in connection.introspection.table_names() if name.startswith("plainworker_schedule")]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"TRUNCATE {', '.join(TABLES + extra)} RESTART IDENTITY")
        else:
            for table in TABLES + extra:
                cursor.execute(f"DELETE FROM {table}")


class WorkerProcess:
    """A real `plain worker run` subprocess; output goes to a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.args = args
        self.log_path = log_path
        self.log_file = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "plain", "worker", "run", *args],
            cwd=TESTS_DIR,
            env=env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        if not self.log_file.closed:
            self.log_file.flush()
        return self.log_path.read_text()

    def send(self, signum: int) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signum)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Signal the worker and wait for it to exit; returns its exit code."""
        self.send(signum)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self.log_file.close()

    def kill(self) -> None:
        """SIGKILL the worker's whole process group (main process and job processes)."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(timeout=10)
        self.log_file.close()

    def alive(self) -> bool:
        return self.process.poll() is None


@pytest.fixture
def worker(request: pytest.FixtureRequest, db: None) -> Iterator[Callable[..., WorkerProcess]]:
    """Start real workers: ``worker("--queue", "slow", env={...})``. All are killed at teardown."""
    started: list[WorkerProcess] = []
    log_dir = ARTIFACTS / "worker-logs"
    log_dir.mkdir(parents=True, exist_ok=True)

    def start(*args: str, env: dict[str, str] | None = None, processes: int = 2) -> WorkerProcess:
        full_env = {**os.environ, **FAST_WORKER_ENV, **(env or {})}
        if "--max-processes" not in args:
            args = ("--max-processes", str(processes), *args)
        name = f"{request.node.name}-{len(started)}".replace("/", "_")[:150]
        process = WorkerProcess(list(args), full_env, log_dir / f"{name}.log")
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


def wait_until(
    predicate: Callable[[], object], timeout: float = 30, interval: float = 0.05, message: str = ""
) -> object:
    """Poll ``predicate`` until it returns something truthy, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"Timed out after {timeout}s waiting for {message or predicate}")
        time.sleep(interval)


def table_counts() -> dict[str, int]:
    from plain.worker.models import Job, JobRequest, JobResult

    return {
        "requests": JobRequest.objects.count(),
        "jobs": Job.objects.count(),
        "results": JobResult.objects.count(),
    }


def assert_each_job_in_one_table() -> None:
    """The lifecycle invariant: no request uuid is in two of the three tables at once."""
    from plain.worker.models import Job, JobRequest, JobResult

    pending = set(JobRequest.objects.values_list("uuid", flat=True))
    running = set(Job.objects.values_list("job_request_uuid", flat=True))
    finished = set(JobResult.objects.values_list("job_request_uuid", flat=True))
    assert not pending & running, f"jobs both pending and running: {pending & running}"
    assert not pending & finished, f"jobs both pending and finished: {pending & finished}"
    assert not running & finished, f"jobs both running and finished: {running & finished}"


def assert_enqueues_wake_the_worker(within_seconds: float, times: int = 3, timeout: float = 10) -> None:
    """Enqueue a job ``times`` times, a pause apart; each must start within ``within_seconds``
    (and be seen to start within ``timeout``)."""
    from app.jobs import RecordJob
    from app.records.models import Execution

    for i in range(times):
        request = RecordJob(f"wake-{i}").run_in_worker()
        execution = wait_until(
            lambda key=f"wake-{i}": Execution.objects.filter(key=key).first(), timeout=timeout, interval=0.01
        )
        assert (execution.created_at - request.created_at).total_seconds() < within_seconds
        time.sleep(0.3)
