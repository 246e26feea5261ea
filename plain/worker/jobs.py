"""The Job base class that app code subclasses."""

from __future__ import annotations

import datetime
import sys
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from plain.utils import timezone

from . import parameters, telemetry
from .registry import job_class_name, jobs_registry

if TYPE_CHECKING:
    from .models import Job as JobRow
    from .models import JobRequest

Delay = int | float | datetime.timedelta | datetime.datetime
Enqueued = "JobRequest | list[JobRequest | JobRow]"


class Job:
    """Subclass and implement ``run()``; constructor arguments become the job's parameters.

    No ``super().__init__()`` is needed: ``__new__`` keeps the arguments so the
    worker can build the same job again.
    """

    _init_args: tuple[Any, ...]
    _init_kwargs: dict[str, Any]

    def __new__(cls, *args: Any, **kwargs: Any) -> Job:
        instance = super().__new__(cls)
        instance._init_args = args
        instance._init_kwargs = kwargs
        return instance

    def run(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement run()")

    def get_queue(self) -> str:
        return "default"

    def get_priority(self) -> int:
        """Higher numbers run first."""
        return 0

    def get_retries(self) -> int:
        return 0

    def get_retry_delay(self, attempt: int) -> int:
        """Seconds to wait before retry number ``attempt`` (starting at 1)."""
        return 0

    def get_unique_key(self) -> str:
        """A non-empty key allows one pending or running job per class and key."""
        return ""

    def run_in_worker(
        self,
        *,
        queue: str | None = None,
        delay: Delay | None = None,
        priority: int | None = None,
        retries: int | None = None,
        unique_key: str | None = None,
    ) -> JobRequest | list[JobRequest | JobRow]:
        """Enqueue this job.

        Returns the new JobRequest, or, when a job of this class with the same
        non-empty unique key is already pending or running, the list of those
        rows (and nothing is enqueued).
        """
        request = self._build_request(
            queue=queue,
            delay=delay,
            priority=priority,
            retries=retries,
            unique_key=unique_key,
            source=_caller_source(),
        )
        with telemetry.enqueue_span(request.job_class, request.queue) as span:
            request.trace_id, request.span_id = telemetry.span_ids(span)
            result = _enqueue(request.enqueue)
            if not isinstance(result, list):  # a duplicate unique key enqueued nothing
                telemetry.set_job_uuid(span, str(request.uuid))
        _run_if_eager()
        return result

    @classmethod
    def run_in_worker_bulk(
        cls,
        jobs: Iterable[Job],
        *,
        queue: str | None = None,
        delay: Delay | None = None,
        priority: int | None = None,
        retries: int | None = None,
    ) -> list[JobRequest | list[JobRequest | JobRow]]:
        """Enqueue many jobs (of any classes) in one transaction.

        Options apply to every job and override each job's get_* defaults.
        Unique keys (from get_unique_key()) are honoured per job exactly as in
        run_in_worker(); the result list matches the input order.
        """
        from .models import JobRequest

        source = _caller_source()
        requests = [
            job._build_request(
                queue=queue, delay=delay, priority=priority, retries=retries, unique_key=None, source=source
            )
            for job in jobs
        ]
        if not requests:
            return []
        with telemetry.enqueue_span(requests[0].job_class, requests[0].queue) as span:
            trace_id, span_id = telemetry.span_ids(span)
            for request in requests:
                request.trace_id, request.span_id = trace_id, span_id
            results = _enqueue(lambda: JobRequest.enqueue_bulk(requests))
        _run_if_eager()
        return results

    def _build_request(
        self,
        *,
        queue: str | None,
        delay: Delay | None,
        priority: int | None,
        retries: int | None,
        unique_key: str | None,
        source: str,
    ) -> JobRequest:
        from .models import JobRequest

        job_class = job_class_name(type(self))
        jobs_registry.get_class(job_class)  # Unregistered classes fail here, not in a worker.
        now = timezone.now()
        return JobRequest.new(
            created_at=now,
            uuid=uuid.uuid4(),
            retry_attempt=0,
            span_id=None,
            trace_id=None,
            job_class=job_class,
            parameters=parameters.encode(self._init_args, self._init_kwargs),
            queue=_check_queue(self.get_queue() if queue is None else queue),
            priority=_check_int("priority", self.get_priority() if priority is None else priority),
            retries=_check_int("retries", self.get_retries() if retries is None else retries, minimum=0),
            unique_key=_check_key(self.get_unique_key() if unique_key is None else unique_key),
            start_at=start_time(delay, now),
            source=source,
        )


def _enqueue(insert: Any) -> Any:
    """Run an insert, turning a missing table into a 'run plain migrate' error."""
    from plain.models import DatabaseError

    from .exceptions import DatabaseNotMigrated

    try:
        return insert()
    except DatabaseError as error:
        if "plainworker_" in str(error) and ("no such table" in str(error) or "does not exist" in str(error)):
            raise DatabaseNotMigrated(str(error).splitlines()[0]) from error
        raise


def _run_if_eager() -> None:
    """WORKER_EAGER (tests): run the jobs that are due now, in this process."""
    from plain.runtime import settings

    if settings.WORKER_EAGER:
        from .testing.running import run_eagerly

        run_eagerly()


def start_time(delay: Delay | None, now: datetime.datetime) -> datetime.datetime:
    """When a job enqueued at ``now`` with ``delay`` may start."""
    if delay is None:
        return now
    if isinstance(delay, bool) or not isinstance(delay, int | float | datetime.timedelta | datetime.datetime):
        raise TypeError(
            f"delay must be seconds (int), a timedelta or an aware datetime, not {type(delay).__name__} {delay!r}"
        )
    if isinstance(delay, datetime.datetime):
        if timezone.is_naive(delay):
            raise ValueError(f"delay datetime {delay.isoformat()} must be timezone-aware")
        return delay
    if isinstance(delay, datetime.timedelta):
        return now + delay
    return now + datetime.timedelta(seconds=delay)


def _check_queue(queue: Any) -> str:
    if not isinstance(queue, str) or not queue or len(queue) > 255:
        raise ValueError(f"queue must be a non-empty string of at most 255 characters, not {queue!r}")
    return queue


def _check_int(name: str, value: Any, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__} {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {value}")
    return value


def _check_key(key: Any) -> str:
    if not isinstance(key, str) or len(key) > 255:
        raise TypeError(f"unique_key must be a string of at most 255 characters, not {key!r}")
    return key


def _caller_source() -> str:
    """``file:line`` of the code that called run_in_worker (two frames up, no stack walk)."""
    frame = sys._getframe(2)
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"
