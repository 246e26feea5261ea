"""Run jobs in the test process, recorded exactly as a worker records them.

``drain()`` takes the worker's own steps, one job at a time: claim with
``JobRequest.claim`` (the same claim order), run with ``execution.execute``
(the middleware chain, the same error text), record with ``Job.finish`` (the
same statuses and retries). The only difference is where the job runs: in
this process, under a WorkerIdentity naming this process.

``now`` only decides which jobs are due. The rows carry the real clock, and a
retry's delay counts from the real time of the failure, so ``drain(now=...)``
far enough ahead also runs the retries due before ``now``.

Model imports stay inside functions so that a conftest.py can import this
module before Plain is set up (pytest loads it before plain.pytest runs setup).
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import uuid
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING

from plain.models import DatabaseError, db_connection
from plain.utils import timezone

from .. import execution
from ..processes import task_for

if TYPE_CHECKING:
    from ..jobs import Job
    from ..models import Job as JobRow
    from ..models import JobResult, Outcome, WorkerIdentity

#: Default bound on the jobs one drain() runs; a job that keeps enqueuing itself hits it.
MAX_JOBS = 100

#: Drains running in this process. Eager mode does not start a drain inside
#: another one: jobs enqueued by a running job wait for the outer loop.
_draining = 0


class JobFailed(AssertionError):
    """A job run by perform() or drain(raise_errors=True) did not succeed."""

    def __init__(self, job_class: str, status: str, error: str) -> None:
        self.job_class = job_class
        self.status = status
        self.error = error
        super().__init__(f"{job_class} finished {status}:\n{error}")


class DrainLimitReached(AssertionError):
    """drain() ran ``max_jobs`` jobs and more were still due."""


def drain(
    *,
    queues: str | Iterable[str] | None = None,
    now: datetime.datetime | None = None,
    max_jobs: int = MAX_JOBS,
    raise_errors: bool = False,
) -> list[JobResult]:
    """Run every job due at ``now`` (default: the clock at each step), in claim order,
    until none is left, including the retries and new jobs they cause.

    Returns the JobResults recorded, in the order the jobs ran. ``queues`` limits
    the run to those queues (default: all). Raises DrainLimitReached instead of
    running job number ``max_jobs + 1``, which stays pending; with
    ``raise_errors``, raises JobFailed after recording the first job that fails.
    """
    from ..models import Job as JobRow
    from ..models import JobResultStatuses

    global _draining
    if now is not None and timezone.is_naive(now):
        raise ValueError(f"now must be timezone-aware, not {now.isoformat()}")
    identity = this_process()
    execution.middleware_chain.cache_clear()  # Follow WORKER_MIDDLEWARE changes made by the test.
    results: list[JobResult] = []
    ran = 0
    _draining += 1
    try:
        while job := _claim_next(queues, now, identity):
            if ran == max_jobs:
                JobRow.release([job], identity)
                raise DrainLimitReached(_limit_message(max_jobs, results, job))
            ran += 1
            recorded = JobRow.finish([(job, run(job))], identity)
            results.extend(recorded)
            failed = [result for result in recorded if result.status != JobResultStatuses.SUCCESSFUL]
            if raise_errors and failed:
                raise JobFailed(failed[0].job_class, failed[0].status, failed[0].error)
    finally:
        _draining -= 1
    return results


def _claim_next(
    queues: str | Iterable[str] | None, now: datetime.datetime | None, identity: WorkerIdentity
) -> JobRow | None:
    from ..models import JobRequest

    if isinstance(queues, str):
        names = [queues]
    elif queues is not None:
        names = list(queues)
    else:
        names = sorted(set(JobRequest.objects.values_list("queue", flat=True)))
    if not names:
        return None
    claimed = JobRequest.claim(queues=names, limit=1, worker=identity, now=now or timezone.now())
    return claimed[0] if claimed else None


def _limit_message(max_jobs: int, results: list[JobResult], next_job: JobRow) -> str:
    ran = ", ".join(f"{name} x{count}" for name, count in Counter(r.job_class for r in results).most_common())
    return (
        f"drain() ran max_jobs={max_jobs} jobs and more are still due, so a job may be "
        f"enqueuing itself or failing forever (raise max_jobs if that many is expected).\n"
        f"Ran: {ran or 'nothing'}.\nNext due, left pending: {next_job.job_class} "
        f"(retry_attempt={next_job.retry_attempt})."
    )


def this_process() -> WorkerIdentity:
    """The identity the test process records on results, like a worker's."""
    from ..models import WorkerIdentity

    return WorkerIdentity(uuid=uuid.uuid4(), hostname=socket.gethostname(), pid=os.getpid())


def run(job: JobRow) -> Outcome:
    """Run one claimed job as a worker process would, keeping the caller's transaction usable."""
    return _execute(task_for(job))


def _execute(task: execution.Task) -> Outcome:
    """execution.execute(), inside a savepoint when the caller holds a transaction.

    A job that fails on a database error would otherwise leave the caller's
    transaction aborted (PostgreSQL). The savepoint is released when it can be
    and rolled back only when the transaction is broken.
    """
    if not db_connection.in_atomic_block:
        return execution.execute(task)
    savepoint = db_connection.savepoint()
    outcome = execution.execute(task)
    try:
        db_connection.savepoint_commit(savepoint)
    except DatabaseError:
        db_connection.savepoint_rollback(savepoint)
    return outcome


def perform(
    job: Job,
    *,
    queue: str | None = None,
    priority: int | None = None,
    retries: int | None = None,
    unique_key: str | None = None,
    raise_errors: bool = True,
) -> Outcome:
    """Run one job now, rebuilt from its stored parameters, without the job tables.

    The arguments are encoded as run_in_worker() would (a bad one raises the
    same TypeError), sent through JSON, decoded (model instances are fetched
    again) and the rebuilt job runs through the middleware chain. Raises
    JobFailed if it fails, unless ``raise_errors=False``; returns the Outcome.
    """
    from ..models import JobResultStatuses

    request = job._build_request(
        queue=queue, delay=None, priority=priority, retries=retries, unique_key=unique_key, source=""
    )
    execution.middleware_chain.cache_clear()
    task = execution.Task(
        job_uuid=str(uuid.uuid4()),
        job_request_uuid=str(request.uuid),
        job_class=request.job_class,
        parameters=json.loads(json.dumps(request.parameters)),
        queue=request.queue,
        priority=request.priority,
        retries=request.retries,
        retry_attempt=0,
        unique_key=request.unique_key,
        trace_id=None,
        span_id=None,
    )
    outcome = _execute(task)
    if raise_errors and outcome.status != JobResultStatuses.SUCCESSFUL:
        raise JobFailed(request.job_class, outcome.status, outcome.error)
    return outcome


def run_eagerly() -> None:
    """WORKER_EAGER: run_in_worker() calls this after enqueueing; runs what is due now."""
    if not _draining:
        drain()
