"""The database goes away under a running worker: it logs, backs off, reconnects and loses nothing."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import time
from urllib.parse import urlparse

import pytest
from conftest import (
    DB_KIND,
    POSTGRES_SERVER,
    _admin_execute,
    assert_each_job_in_one_table,
    assert_enqueues_wake_the_worker,
    table_counts,
    wait_until,
)

postgres_only = pytest.mark.skipif(DB_KIND != "postgres", reason="drops PostgreSQL connections")
sqlite_only = pytest.mark.skipif(DB_KIND != "sqlite", reason="locks the SQLite file")


def _local_cluster() -> tuple[str, str] | None:
    """(version, name) of the pg_ctlcluster cluster serving the tests, when this
    machine runs it and we may restart it (root, Debian's postgresql-common)."""
    server = urlparse(POSTGRES_SERVER)
    if DB_KIND != "postgres" or os.geteuid() != 0 or not shutil.which("pg_lsclusters"):
        return None
    if server.hostname not in ("127.0.0.1", "localhost"):
        return None
    listing = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True).stdout
    for line in listing.splitlines():
        version, name, port, status, *_ = line.split()
        if port == str(server.port or 5432) and status.startswith("online"):
            return version, name
    return None


LOCAL_CLUSTER = _local_cluster()


def _restart_cluster(version: str, name: str) -> None:
    command = ["pg_ctlcluster", "--skip-systemctl-redirect", version, name]
    server = urlparse(POSTGRES_SERVER)
    try:
        subprocess.run([*command, "restart", "-m", "fast"], check=True, capture_output=True, timeout=120)
    finally:
        ready = ["pg_isready", "-q", "-h", str(server.hostname), "-p", str(server.port or 5432)]
        if subprocess.run(ready).returncode != 0:
            subprocess.run([*command, "start"], capture_output=True, timeout=120)


def _drop_other_connections() -> int:
    from plain.models import db_connection

    with db_connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def _wait_for_final_results(total: int, message: str, timeout: float = 90) -> None:
    """Until ``total`` jobs have a final result (one not followed by a retry)."""
    from plain.worker.models import JobResult

    wait_until(
        lambda: JobResult.objects.filter(retry_job_request_uuid__isnull=True).count() == total,
        timeout=timeout,
        message=message,
    )


def _check_every_job_finished_once(total: int) -> None:
    from app.records.models import Execution

    from plain.worker.models import JobResult

    assert table_counts() == {"requests": 0, "jobs": 0, "results": JobResult.objects.count()}
    final = JobResult.objects.filter(retry_job_request_uuid__isnull=True)
    assert final.count() == total
    assert set(final.values_list("status", flat=True)) == {"SUCCESSFUL"}
    # A job runs again only after a recorded failure (its connection was cut mid-run).
    errored_keys = {r.parameters["args"][0] for r in JobResult.objects.exclude(status="SUCCESSFUL")}
    for key in {r.parameters["args"][0] for r in final}:
        runs = Execution.objects.filter(key=key).count()
        assert runs >= 1
        assert runs == 1 or key in errored_keys, key
    assert_each_job_in_one_table()


@postgres_only
def test_dropped_connections_mid_drain(worker):
    from app.jobs import RecordJob
    from plain.models import db_connection

    from plain.worker import Job
    from plain.worker.models import JobResult

    total = 400
    Job.run_in_worker_bulk([RecordJob(f"job-{i}") for i in range(total)], retries=3)
    process = worker()
    wait_until(lambda: JobResult.objects.exists(), message="the drain to start")
    for _ in range(4):
        _drop_other_connections()
        db_connection.close()
        time.sleep(0.3)

    _wait_for_final_results(total, "every job to finish")
    time.sleep(0.5)
    assert process.alive()
    _check_every_job_finished_once(total)


@pytest.mark.skipif(LOCAL_CLUSTER is None, reason="needs a local PostgreSQL cluster this user can restart")
def test_postgres_server_restarted_mid_drain(worker):
    """A real server restart: every connection (worker, job processes, its LISTEN
    connection, this test's) dies at once. The worker finishes the drain, and
    afterwards it is woken by NOTIFY again, not by its (long) poll interval."""
    from app.jobs import ChaosJob
    from plain.models import db_connection

    from plain.worker import Job
    from plain.worker.models import JobResult
    from plain.worker.wakeup import LISTEN_RETRY_SECONDS

    total = 300
    Job.run_in_worker_bulk([ChaosJob(f"job-{i}", 30) for i in range(total)])
    slow_poll = {
        "PLAIN_WORKER_POLL_INTERVAL": "5",
        "PLAIN_WORKER_HEARTBEAT_INTERVAL": "20",
        "PLAIN_WORKER_HEARTBEAT_TIMEOUT": "60",
    }
    process = worker(env=slow_poll)
    wait_until(lambda: JobResult.objects.count() >= 20, message="the drain to be under way")
    db_connection.close()
    _restart_cluster(*LOCAL_CLUSTER)
    assert process.alive()

    _wait_for_final_results(total, "every job to finish after the restart")
    time.sleep(0.5)
    assert process.alive()
    assert "Database error" in process.output()
    _check_every_job_finished_once(total)

    time.sleep(LISTEN_RETRY_SECONDS + 1)  # the idle worker has LISTENed again by now
    assert_enqueues_wake_the_worker(within_seconds=0.5)


@postgres_only
def test_database_down_for_seconds_then_back(worker):
    from app.jobs import RecordJob
    from plain.models import db_connection

    from plain.worker.models import JobResult

    for i in range(20):
        RecordJob(f"before-{i}").run_in_worker(retries=3)
    process = worker()
    wait_until(lambda: JobResult.objects.exists(), message="work to start")

    name = db_connection.settings_dict["NAME"]
    _admin_execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    try:
        _drop_other_connections()
        db_connection.close()
        time.sleep(4)
        assert process.alive()
    finally:
        _admin_execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')

    for i in range(20):
        RecordJob(f"after-{i}").run_in_worker(retries=3)
    _wait_for_final_results(40, "jobs from before and after the outage")
    assert process.alive()
    assert "Database error" in process.output()
    _check_every_job_finished_once(40)


@sqlite_only
def test_sqlite_file_locked_longer_than_the_busy_timeout(worker):
    from app.jobs import RecordJob
    from plain.models import db_connection

    from plain.worker.models import Worker

    process = worker()
    wait_until(lambda: Worker.objects.exists(), message="the worker to start")
    for i in range(30):
        RecordJob(f"job-{i}").run_in_worker(retries=3)

    # Another program holds the write lock for longer than SQLite's 5s busy timeout.
    locker = sqlite3.connect(db_connection.settings_dict["NAME"], timeout=30)
    locker.execute("BEGIN EXCLUSIVE")
    time.sleep(7)
    locker.rollback()
    locker.close()

    _wait_for_final_results(30, "every job after the lock", timeout=60)
    assert process.alive()
    _check_every_job_finished_once(30)
