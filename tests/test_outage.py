"""The database goes away under a running worker: it logs, backs off, reconnects and loses nothing."""

from __future__ import annotations

import sqlite3
import time

import pytest
from conftest import DB_KIND, _admin_execute, assert_each_job_in_one_table, table_counts, wait_until

postgres_only = pytest.mark.skipif(DB_KIND != "postgres", reason="drops PostgreSQL connections")
sqlite_only = pytest.mark.skipif(DB_KIND != "sqlite", reason="locks the SQLite file")


def _drop_other_connections() -> int:
    from plain.models import db_connection

    with db_connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


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

    wait_until(
        lambda: JobResult.objects.filter(retry_job_request_uuid__isnull=True).count() == total,
        timeout=90,
        message="every job to finish",
    )
    time.sleep(0.5)
    assert process.alive()
    _check_every_job_finished_once(total)


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
    wait_until(
        lambda: JobResult.objects.filter(retry_job_request_uuid__isnull=True).count() == 40,
        timeout=90,
        message="jobs from before and after the outage",
    )
    assert process.alive()
    assert "Database error" in process.output()
    _check_every_job_finished_once(40)


@sqlite_only
def test_sqlite_file_locked_longer_than_the_busy_timeout(worker):
    from app.jobs import RecordJob
    from plain.models import db_connection

    from plain.worker.models import JobResult, Worker

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

    wait_until(
        lambda: JobResult.objects.filter(retry_job_request_uuid__isnull=True).count() == 30,
        timeout=60,
        message="every job after the lock",
    )
    assert process.alive()
    _check_every_job_finished_once(30)
