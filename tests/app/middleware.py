"""Job middleware the middleware tests list in WORKER_MIDDLEWARE.

Each records rows in Execution (key "<job key>:<name>:<step>") so a test can
read back the order in which they wrapped the job, and what they saw of it.
"""

from __future__ import annotations

import os

from .records.models import Execution


def note(running, name: str, step: str) -> None:
    Execution.objects.create(
        key=f"{running.job.key}:{name}:{step}",
        job_class=running.job_class,
        pid=os.getpid(),
        value={
            "job_uuid": running.job_uuid,
            "job_request_uuid": running.job_request_uuid,
            "queue": running.queue,
            "retry_attempt": running.retry_attempt,
        },
    )


class OuterMiddleware:
    def __init__(self, run_job):
        self.run_job = run_job

    def __call__(self, running):
        note(running, "outer", "before")
        try:
            self.run_job(running)
        finally:
            note(running, "outer", "after")


class InnerMiddleware:
    def __init__(self, run_job):
        self.run_job = run_job

    def __call__(self, running):
        note(running, "inner", "before")
        self.run_job(running)
        note(running, "inner", "after")


class GuardMiddleware:
    """Refuses to run jobs whose key starts with "forbidden" (the job is recorded ERRORED)."""

    def __init__(self, run_job):
        self.run_job = run_job

    def __call__(self, running):
        if running.job.key.startswith("forbidden"):
            raise PermissionError(f"{running.job.key} may not run here")
        self.run_job(running)
