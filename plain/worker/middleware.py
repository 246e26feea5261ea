"""The job middleware contract and the default app-logger middleware.

A middleware is a class listed in WORKER_MIDDLEWARE. It is built once per
worker process with the next callable in the chain and called once per job:

    class TimingMiddleware:
        def __init__(self, run_job):
            self.run_job = run_job

        def __call__(self, job):
            started = time.monotonic()
            try:
                self.run_job(job)
            finally:
                print(job.job_class, time.monotonic() - started)

``job`` is a RunningJob; raising marks the job ERRORED.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plain.logs import app_logger

if TYPE_CHECKING:
    from .jobs import Job

RunJob = Callable[["RunningJob"], None]


@dataclass(frozen=True, slots=True)
class RunningJob:
    """What a middleware sees of the job being run."""

    job: Job
    job_class: str
    job_uuid: str
    job_request_uuid: str
    queue: str
    priority: int
    retries: int
    retry_attempt: int
    unique_key: str


def call_run(running: RunningJob) -> None:
    """The innermost handler: the job's own run()."""
    running.job.run()


class AppLoggerMiddleware:
    """Adds the job's ids to ``app_logger.kv`` context while it runs."""

    def __init__(self, run_job: RunJob) -> None:
        self.run_job = run_job

    def __call__(self, running: RunningJob) -> None:
        context: dict[str, Any] = app_logger.kv.context
        saved = dict(context)
        context.update(
            job_uuid=running.job_uuid,
            job_request_uuid=running.job_request_uuid,
            job_class=running.job_class,
        )
        try:
            self.run_job(running)
        finally:
            context.clear()
            context.update(saved)
