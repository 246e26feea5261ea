"""The three job tables and the only moves between them.

A job is always in exactly one of JobRequest (waiting), Job (claimed by a
worker) or JobResult (history). The legal moves, each one method running one
transaction:

- request -> job      ``JobRequest.claim()``
- job -> request      ``Job.release()``           (handed back at shutdown)
- job -> result       ``Job.finish()``, ``Job.rescue_dead_workers()``,
                      ``Job.expire()``, ``Job.cancel()`` (finished, errored, lost, cancelled)
- request -> result   ``JobRequest.cancel()``     (deleted before it ran: CANCELLED)
- result -> request   inside the job -> result move when retries are left,
                      and ``JobResult.retry()`` for a manual retry

Deleting a waiting or running job (admin, purge-processing) is a cancel: the
job leaves a CANCELLED result, so nothing disappears without a trace.

Every move out of Job deletes the row only if it is still held by the worker
the caller expects (or is still overdue), so a rescue and a late result can
never both win. The statements themselves live in ``claims.py``.
"""

from __future__ import annotations

from .jobs import Job
from .requests import JobRequest
from .results import JobResult, JobResultQuerySet, JobResultStatuses, Outcome, retry_delay_for
from .schedules import ScheduleRun
from .workers import Worker, WorkerIdentity

__all__ = [
    "Job",
    "JobRequest",
    "JobResult",
    "JobResultQuerySet",
    "JobResultStatuses",
    "Outcome",
    "ScheduleRun",
    "Worker",
    "WorkerIdentity",
    "retry_delay_for",
]
