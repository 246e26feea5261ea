"""The worker-process side: set up Plain, run one claimed job, report the outcome.

This module is imported by the supervisor (to hand ``initialize`` and
``execute`` to the process pool) before and independently of the spawned
processes that run them. A spawned process starts from a fresh interpreter,
so nothing may touch models until ``initialize`` has run ``plain.runtime.setup()``
there; that is why model-related imports below stay inside functions.

The process never writes to the job tables: it returns an Outcome and the
supervisor records outcomes in batches.
"""

from __future__ import annotations

import os
import signal
import traceback
from functools import cache
from typing import Any, NamedTuple

from plain.utils import timezone

from . import telemetry
from .middleware import RunJob, RunningJob, call_run


class Task(NamedTuple):
    """The part of a claimed Job a process needs to run it (cheap to pickle)."""

    job_uuid: str
    job_request_uuid: str
    job_class: str
    parameters: Any
    queue: str
    priority: int
    retries: int
    retry_attempt: int
    unique_key: str
    trace_id: str | None
    span_id: str | None


def initialize() -> None:
    """Pool initializer: leave signals to the supervisor and set up Plain."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    import plain.runtime

    if not plain.runtime._is_setup_complete:
        plain.runtime.setup()


def ping() -> int:
    """Used by the supervisor to wait until a new process is ready."""
    return os.getpid()


@cache
def middleware_chain() -> RunJob:
    from plain.runtime import settings
    from plain.utils.module_loading import import_string

    handler: RunJob = call_run
    for path in reversed(settings.WORKER_MIDDLEWARE):
        handler = import_string(path)(handler)
    return handler


def execute(task: Task) -> Any:
    """Run one job and return its Outcome; never raises for the job's own errors."""
    from .models import JobResultStatuses, Outcome

    started_at = timezone.now()
    with telemetry.execute_span(
        job_class=task.job_class,
        queue=task.queue,
        job_uuid=task.job_uuid,
        job_request_uuid=task.job_request_uuid,
        retry_attempt=task.retry_attempt,
        trace_id=task.trace_id,
        span_id=task.span_id,
    ) as span:
        job = None
        try:
            job = build_job(task)
            middleware_chain()(running_job(task, job))
        except BaseException as error:  # Job-failure boundary: anything the job raises is its result.
            telemetry.record_failure(span, error)
            return Outcome(
                status=JobResultStatuses.ERRORED,
                started_at=started_at,
                ended_at=timezone.now(),
                error=traceback.format_exc(),
                retry_delay=retry_delay(job, task),
                pid=os.getpid(),
            )
        finally:
            close_connection_if_broken()
    return Outcome(status=JobResultStatuses.SUCCESSFUL, started_at=started_at, ended_at=timezone.now(), pid=os.getpid())


def build_job(task: Task) -> Any:
    """Instantiate the job class with its decoded parameters."""
    from .parameters import decode
    from .registry import jobs_registry

    cls = jobs_registry.get_class(task.job_class)
    args, kwargs = decode(task.parameters)
    return cls(*args, **kwargs)


def running_job(task: Task, job: Any) -> RunningJob:
    return RunningJob(
        job=job,
        job_class=task.job_class,
        job_uuid=task.job_uuid,
        job_request_uuid=task.job_request_uuid,
        queue=task.queue,
        priority=task.priority,
        retries=task.retries,
        retry_attempt=task.retry_attempt,
        unique_key=task.unique_key,
    )


def retry_delay(job: Any, task: Task) -> int | None:
    """The job's own get_retry_delay() for its next attempt, if it has retries left."""
    from .models import retry_delay_for

    attempt = task.retry_attempt + 1
    if attempt > task.retries:
        return None
    if job is None:
        return retry_delay_for(task.job_class, attempt)
    try:
        return int(job.get_retry_delay(attempt) or 0)
    except Exception:  # Job-failure boundary: a broken get_retry_delay() means "retry now".
        return 0


def close_connection_if_broken() -> None:
    """Drop a connection a job left in a failed state so the next job gets a fresh one.

    Not inside an atomic block: there the connection belongs to a caller running
    the job in its own transaction (plain.worker.testing), and closing it would
    break that transaction. A worker process never runs a job inside one.
    """
    from plain.models import db_connection

    if db_connection.has_connection() and not db_connection.in_atomic_block:
        db_connection.close_if_unusable_or_obsolete()
