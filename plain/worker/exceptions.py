"""The few errors a plain.worker user may want to catch.

Everything else that goes wrong inside a job is the job's own exception,
recorded on its JobResult.
"""

from __future__ import annotations


class JobNotRegistered(LookupError):
    """A stored job class name does not match any registered Job."""

    def __init__(self, job_class: str) -> None:
        self.job_class = job_class
        super().__init__(
            f"Job class {job_class!r} is not registered. Decorate it with "
            "@register_job in a jobs.py module of an installed package, or add "
            "@register_job(alias=...) for its old name if it was renamed."
        )


class ParameterNotFound(LookupError):
    """A model instance stored as a job parameter no longer exists."""

    def __init__(self, reference: str) -> None:
        self.reference = reference
        super().__init__(
            f"The model instance {reference} passed to this job no longer "
            "exists (it was deleted after the job was enqueued)."
        )


class DatabaseNotMigrated(RuntimeError):
    """plain.worker's tables are missing or out of date."""

    def __init__(self, detail: str = "") -> None:
        message = "plain.worker's database tables are missing or out of date: run `plain migrate`."
        if detail:
            message = f"{message} ({detail})"
        super().__init__(message)


class ProcessStartError(RuntimeError):
    """A worker's job processes cannot start (usually the app fails to import in them)."""
