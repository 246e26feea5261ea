"""Tests that pin the design of the hot path (not its speed, which benchmarks/ measures)."""

from __future__ import annotations

import time
import uuid
from contextlib import contextmanager

from conftest import DB_KIND, assert_enqueues_wake_the_worker, wait_until
from plain.utils import timezone


@contextmanager
def captured_sql():
    """Collect every SQL statement the ORM connection runs."""
    from plain.models import db_connection

    statements: list[str] = []

    def record(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    with db_connection.execute_wrapper(record):
        yield statements
    # Transaction control is not a query: SQLite's atomic() issues BEGIN explicitly.
    statements[:] = [sql for sql in statements if not sql.upper().startswith(("BEGIN", "SAVEPOINT", "RELEASE"))]


def identity():
    from plain.worker.models import WorkerIdentity

    return WorkerIdentity(uuid=uuid.uuid4(), hostname="test", pid=0)


def test_a_claim_batch_is_one_statement_on_postgres_two_on_sqlite(db):
    from app.jobs import RecordJob

    from plain.worker import Job
    from plain.worker.models import Job as JobRow
    from plain.worker.models import JobRequest

    Job.run_in_worker_bulk([RecordJob(f"k{i}") for i in range(25)])
    with captured_sql() as statements:
        claimed = JobRequest.claim(queues=["default"], limit=10, worker=identity(), now=timezone.now())

    assert len(claimed) == 10
    expected = 1 if DB_KIND == "postgres" else 2
    assert len(statements) == expected, statements
    assert JobRow.objects.count() == 10 and JobRequest.objects.count() == 15


def test_recording_a_batch_of_outcomes_is_a_fixed_number_of_statements(db):
    from app.jobs import RecordJob

    from plain.worker import Job
    from plain.worker.models import JobRequest, JobResult, Outcome

    Job.run_in_worker_bulk([RecordJob(f"k{i}") for i in range(30)])
    worker = identity()
    claimed = JobRequest.claim(queues=["default"], limit=30, worker=worker, now=timezone.now())
    now = timezone.now()
    outcomes = [(job, Outcome(status="SUCCESSFUL", started_at=now, ended_at=now)) for job in claimed]

    with captured_sql() as statements:
        from plain.worker.models import Job as JobRow

        JobRow.finish(outcomes, worker)

    assert JobResult.objects.count() == 30
    assert len(statements) == 2, statements  # one DELETE ... RETURNING, one multi-row INSERT


def test_the_claim_query_is_served_by_the_claim_index(db):
    from app.jobs import PriorityJob
    from plain.models import db_connection

    from plain.worker import Job, claims

    for start in range(0, 5000, 1000):
        Job.run_in_worker_bulk(
            [PriorityJob(f"p{i}", priority=i % 5) for i in range(start, start + 1000)], queue="q" + str(start % 2)
        )
    picked = (
        f"SELECT id FROM plainworker_jobrequest WHERE {claims.RUNNABLE.format(queues='%s')} "
        f"ORDER BY {claims.CLAIM_ORDER} LIMIT 10"
    )
    with db_connection.cursor() as cursor:
        if DB_KIND == "postgres":
            cursor.execute("ANALYZE plainworker_jobrequest")
            cursor.execute(f"EXPLAIN {picked} FOR UPDATE SKIP LOCKED", ["q0", timezone.now()])
        else:
            cursor.execute("ANALYZE")
            cursor.execute(f"EXPLAIN QUERY PLAN {picked}", ["q0", claims._datetime(timezone.now())])
        plan = "\n".join(str(row[-1]) for row in cursor.fetchall())

    assert "plainworker_jobrequest_claim" in plan, plan
    assert "Sort" not in plan and "TEMP B-TREE" not in plan, plan


def test_an_idle_worker_is_woken_by_an_enqueue_not_by_its_poll(worker):
    """A worker sleeping on a 30s poll interval is woken by the enqueue's commit:
    the NOTIFY trigger on PostgreSQL, PRAGMA data_version on SQLite."""
    from plain.worker.models import Worker

    worker(
        env={
            "PLAIN_WORKER_POLL_INTERVAL": "30",
            "PLAIN_WORKER_HEARTBEAT_INTERVAL": "20",
            "PLAIN_WORKER_HEARTBEAT_TIMEOUT": "60",
        }
    )
    wait_until(lambda: Worker.objects.exists(), message="the worker to start")
    time.sleep(1)  # let it settle into its idle wait

    assert_enqueues_wake_the_worker(within_seconds=1.0, timeout=5)


def test_the_sqlite_waker_survives_an_unreadable_data_version(tmp_path, caplog):
    """A failing ``PRAGMA data_version`` read is an infrastructure error: the wait
    neither raises (which would stop the worker) nor returns at once (which would
    spin); it waits out its timeout and logs why."""
    from plain.worker.wakeup import DataVersionWaker

    waker = DataVersionWaker({"database": str(tmp_path / "wake.sqlite3")}, poll_interval=30)
    try:
        waker._conn.close()  # every further read fails with sqlite3.ProgrammingError
        started = time.monotonic()
        assert waker.wait(0.3) is True
        assert time.monotonic() - started >= 0.29
        assert "Cannot read PRAGMA data_version" in caplog.text
    finally:
        waker.close()
