"""Every hand-written SQL statement that moves job rows, in one place.

The transitions in ``models.py`` call these inside their transaction. Each
statement is named, says which index serves it, and exists in a PostgreSQL
and a SQLite flavour only where the two must differ.

SQLite note: a write transaction here always starts with a write statement
(DELETE/INSERT). SQLite then takes the write lock through its busy handler;
a transaction that reads first and writes later can instead fail at once with
"database is locked" when another connection committed in between.
"""

from __future__ import annotations

import datetime
import uuid
from typing import TYPE_CHECKING, Any, Protocol

from plain.models import db_connection

from .models.columns import CARRIED

if TYPE_CHECKING:
    from .models import Job, JobRequest

#: The single definition of claim order: higher priority first, then the job
#: that became runnable first (a NULL start_at, written only by older versions,
#: means "runnable since it was created" and sorts first), then insertion order.
#: Served by the index ``plainworker_jobrequest_claim`` (queue, priority DESC,
#: start_at ASC NULLS FIRST, id).
CLAIM_ORDER = "priority DESC, start_at ASC NULLS FIRST, id ASC"

RUNNABLE = "queue IN ({queues}) AND (start_at IS NULL OR start_at <= %s)"

JOB_COLUMNS = (
    "uuid, created_at, started_at, job_request_uuid, job_class, parameters, priority, "
    "source, queue, retries, retry_attempt, unique_key, span_id, trace_id, "
    "worker_uuid, start_at, request_created_at"
)

#: CLAIM (PostgreSQL): pick runnable requests in claim order, skipping rows other
#: workers have locked, delete them and insert the jobs, all in one statement.
#: The INSERT's ORDER BY makes the new job ids follow claim order.
CLAIM_POSTGRES = f"""
WITH picked AS (
    SELECT id FROM plainworker_jobrequest
    WHERE {RUNNABLE}
    ORDER BY {CLAIM_ORDER}
    LIMIT %s
    FOR UPDATE SKIP LOCKED
), taken AS (
    DELETE FROM plainworker_jobrequest r USING picked WHERE r.id = picked.id
    RETURNING r.*
)
INSERT INTO plainworker_job ({JOB_COLUMNS})
SELECT gen_random_uuid(), %s, %s, uuid, job_class, parameters, priority,
       source, queue, retries, retry_attempt, unique_key, span_id, trace_id,
       %s, start_at, created_at
FROM taken
ORDER BY {CLAIM_ORDER}
RETURNING *
"""

#: CLAIM (SQLite, step 1): delete the runnable requests in claim order. SQLite
#: has one writer at a time, so no row locks are needed. Same index as above.
CLAIM_SQLITE_TAKE = f"""
DELETE FROM plainworker_jobrequest WHERE id IN (
    SELECT id FROM plainworker_jobrequest
    WHERE {RUNNABLE}
    ORDER BY {CLAIM_ORDER}
    LIMIT %s
)
RETURNING *
"""

#: TAKE_HELD: delete jobs only if this worker still holds them (primary key).
#: What is not returned was rescued by another worker meanwhile.
TAKE_HELD = "DELETE FROM plainworker_job WHERE worker_uuid = %s AND id IN ({ids}) RETURNING id"

#: TAKE_UNKNOWN: jobs held by this worker other than the ones it knows about
#: (index plainworker_job_worker_uuid). Used after a claim whose reply was lost.
TAKE_UNKNOWN = "DELETE FROM plainworker_job WHERE worker_uuid = %s AND id NOT IN ({ids}) RETURNING *"

#: DELETE_DEAD_WORKERS: workers whose heartbeat is older than the cutoff
#: (index plainworker_worker_heartbeat). Deleting locks the rows, so a worker
#: whose heartbeat lands first is re-checked and kept.
DELETE_DEAD_WORKERS = "DELETE FROM plainworker_worker WHERE heartbeat_at < %s RETURNING uuid, hostname, pid"

#: TAKE_ORPHANED: jobs held by a worker that is no longer registered
#: (index plainworker_job_worker_uuid).
TAKE_ORPHANED = """
DELETE FROM plainworker_job
WHERE worker_uuid IS NOT NULL
  AND worker_uuid NOT IN (SELECT uuid FROM plainworker_worker)
RETURNING *
"""

#: TAKE_OVERDUE: jobs started before the cutoff, whoever holds them
#: (index plainworker_started_143df5_idx). NULL started_at never matches.
TAKE_OVERDUE = "DELETE FROM plainworker_job WHERE started_at < %s RETURNING *"

#: TAKE_ALL_JOBS / TAKE_JOBS / TAKE_REQUESTS: rows by primary key, whoever
#: holds them (cancelling from the admin or purge-processing).
TAKE_ALL_JOBS = "DELETE FROM plainworker_job RETURNING *"
TAKE_JOBS = "DELETE FROM plainworker_job WHERE id IN ({ids}) RETURNING *"
TAKE_REQUESTS = "DELETE FROM plainworker_jobrequest WHERE id IN ({ids}) RETURNING *"

#: COPY_REQUESTS (PostgreSQL): bulk enqueue. COPY skips building one giant
#: parameterized INSERT, the slow part of inserting thousands of rows; the
#: statement trigger still sends one NOTIFY per queue.
REQUEST_COLUMNS = ("created_at", "uuid", "start_at", *CARRIED)
COPY_REQUESTS = f"COPY plainworker_jobrequest ({', '.join(REQUEST_COLUMNS)}) FROM STDIN"

#: REQUEST_IDS: the ids COPY assigned (unique index on uuid).
REQUEST_IDS = "SELECT uuid, id FROM plainworker_jobrequest WHERE uuid = ANY(%s)"

#: IN_PROGRESS: requests and jobs with a class and unique key, in one snapshot
#: (indexes job_request_class_unique_key and job_class_unique_key).
IN_PROGRESS = """
SELECT 'request', id FROM plainworker_jobrequest WHERE job_class = %s AND unique_key = %s
UNION ALL
SELECT 'job', id FROM plainworker_job WHERE job_class = %s AND unique_key = %s
"""


def _placeholders(count: int) -> str:
    return ", ".join(["%s"] * count)


def _datetime(value: datetime.datetime) -> Any:
    return db_connection.ops.adapt_datetimefield_value(value)


def _uuid(value: uuid.UUID) -> Any:
    return value if db_connection.vendor == "postgresql" else value.hex


def _execute(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    with db_connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def prepare_database() -> None:
    """Once per worker start: on SQLite, switch the file to WAL so readers (web
    requests, stats) never block the worker's writes and the other way round.
    WAL is a property of the database file and stays on."""
    if db_connection.vendor == "sqlite" and not db_connection.is_in_memory_db():
        _execute("PRAGMA journal_mode=WAL", [])


class Claimer(Protocol):
    def claim(self, *, queues: list[str], limit: int, worker_uuid: uuid.UUID, now: datetime.datetime) -> list[Job]: ...


class PostgresClaimer:
    def claim(self, *, queues: list[str], limit: int, worker_uuid: uuid.UUID, now: datetime.datetime) -> list[Job]:
        from .models import Job

        sql = CLAIM_POSTGRES.format(queues=_placeholders(len(queues)))
        params = [*queues, now, limit, now, now, worker_uuid]
        return sorted(Job.objects.raw(sql, params), key=lambda job: job.id)


class SQLiteClaimer:
    def claim(self, *, queues: list[str], limit: int, worker_uuid: uuid.UUID, now: datetime.datetime) -> list[Job]:
        from .models import Job, JobRequest

        sql = CLAIM_SQLITE_TAKE.format(queues=_placeholders(len(queues)))
        requests = list(JobRequest.objects.raw(sql, [*queues, _datetime(now), limit]))
        if not requests:
            return []
        # DELETE ... RETURNING gives rows in table order, not the subquery's:
        # put them back in CLAIM_ORDER (test_worker checks both orders agree).
        earliest = datetime.datetime.min.replace(tzinfo=datetime.UTC)
        requests.sort(key=lambda r: (-r.priority, r.start_at or earliest, r.id))
        jobs = [
            Job(
                uuid=uuid.uuid4(),
                created_at=now,
                started_at=now,
                job_request_uuid=r.uuid,
                **r.carried(),
                worker_uuid=worker_uuid,
                start_at=r.start_at,
                request_created_at=r.created_at,
            )
            for r in requests
        ]
        return Job.objects.bulk_create(jobs)


def claimer() -> Claimer:
    return PostgresClaimer() if db_connection.vendor == "postgresql" else SQLiteClaimer()


def claim(*, queues: list[str], limit: int, worker_uuid: uuid.UUID, now: datetime.datetime) -> list[Job]:
    return claimer().claim(queues=queues, limit=limit, worker_uuid=worker_uuid, now=now)


def take_held(job_ids: list[int], worker_uuid: uuid.UUID) -> set[int]:
    """Delete these jobs if this worker still holds them; return the ids deleted."""
    rows = _execute(TAKE_HELD.format(ids=_placeholders(len(job_ids))), [_uuid(worker_uuid), *job_ids])
    return {row[0] for row in rows}


def take_unknown(worker_uuid: uuid.UUID, known_ids: list[int]) -> list[Job]:
    from .models import Job

    ids = known_ids or [-1]
    return list(Job.objects.raw(TAKE_UNKNOWN.format(ids=_placeholders(len(ids))), [_uuid(worker_uuid), *ids]))


def delete_dead_workers(cutoff: datetime.datetime) -> list[str]:
    rows = _execute(DELETE_DEAD_WORKERS, [_datetime(cutoff)])
    return [f"{hostname}:{pid}" for _, hostname, pid in rows]


def take_orphaned() -> list[Job]:
    from .models import Job

    return list(Job.objects.raw(TAKE_ORPHANED))


def take_overdue(cutoff: datetime.datetime) -> list[Job]:
    from .models import Job

    return list(Job.objects.raw(TAKE_OVERDUE, [_datetime(cutoff)]))


def insert_requests(requests: list[JobRequest]) -> None:
    """Insert new requests in bulk, setting their ids."""
    from .models import JobRequest

    if db_connection.vendor != "postgresql":
        JobRequest.objects.bulk_create(requests)
        return
    from psycopg.types.json import Jsonb

    with db_connection.cursor() as cursor:
        with cursor.cursor.copy(COPY_REQUESTS) as copy:
            for r in requests:
                carried = r.carried()
                carried["parameters"] = Jsonb(carried["parameters"])
                copy.write_row((r.created_at, r.uuid, r.start_at, *carried.values()))
        cursor.execute(REQUEST_IDS, [[r.uuid for r in requests]])
        ids = dict(cursor.fetchall())
    for r in requests:
        r.id = ids[r.uuid]
        r._state.adding = False


def take_jobs(ids: list[int] | None) -> list[Job]:
    from .models import Job

    if ids is None:
        return list(Job.objects.raw(TAKE_ALL_JOBS))
    if not ids:
        return []
    return list(Job.objects.raw(TAKE_JOBS.format(ids=_placeholders(len(ids))), list(ids)))


def take_requests(ids: list[int]) -> list[JobRequest]:
    from .models import JobRequest

    if not ids:
        return []
    return list(JobRequest.objects.raw(TAKE_REQUESTS.format(ids=_placeholders(len(ids))), list(ids)))


def in_progress_ids(job_class: str, unique_key: str) -> list[tuple[str, int]]:
    return [(table, row_id) for table, row_id in _execute(IN_PROGRESS, [job_class, unique_key] * 2)]
