"""Assertions on pending JobRequests, with failure messages that list them.

Each filter a test passes becomes a Criterion on one attribute of a
JobRequest. A failed assertion lists every pending request and, under each,
the criteria it misses, so the message shows what *was* enqueued instead.

Arguments are compared in their stored form: the expected values go through
the same encoder as ``run_in_worker()``, so a model instance matches the
reference a worker would load, and a value that could not be enqueued fails
here with the same TypeError.

Model imports stay inside functions, as in running.py.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from .. import parameters
from ..jobs import Job
from ..registry import job_class_name, jobs_registry

if TYPE_CHECKING:
    from ..models import JobRequest

#: How many pending requests a failure message lists before summarising the rest.
LISTED = 20

Seconds = int | float | datetime.timedelta
DelayWindow = tuple[Seconds | None, Seconds | None]
StartWindow = tuple[datetime.datetime | None, datetime.datetime | None]
JobSpec = type[Job] | Job | str


@dataclass(frozen=True, slots=True)
class Criterion:
    """One attribute a pending request must have; ``wanted`` says which, for messages."""

    name: str
    wanted: str
    value: Callable[[JobRequest], Any]
    test: Callable[[Any], bool]
    show: Callable[[Any], str] = repr

    def holds(self, request: JobRequest) -> bool:
        return self.test(self.value(request))

    def miss(self, request: JobRequest) -> str:
        return f"{self.name}={self.show(self.value(request))}"


def criteria(
    job: JobSpec | None = None,
    *,
    args: Sequence[Any] | None = None,
    kwargs: Mapping[str, Any] | None = None,
    queue: str | None = None,
    priority: int | None = None,
    unique_key: str | None = None,
    retry_attempt: int | None = None,
    delay: Seconds | DelayWindow | None = None,
    start_at: datetime.datetime | StartWindow | None = None,
) -> list[Criterion]:
    """Turn assertion filters into criteria (None means "any")."""
    found: list[Criterion] = []
    if job is not None:
        found.append(_equal("job_class", _job_class(job), lambda r: r.job_class, show=str))
    if isinstance(job, Job):
        if args is not None or kwargs is not None:
            raise TypeError("Pass the arguments in the job instance or as args=/kwargs=, not both.")
        args, kwargs = job._init_args, job._init_kwargs
    if args is not None:
        found.append(_equal("args", parameters.encode(tuple(args), {})["args"], lambda r: _stored(r)["args"]))
    if kwargs is not None:
        found.append(_equal("kwargs", parameters.encode((), dict(kwargs))["kwargs"], lambda r: _stored(r)["kwargs"]))
    for name, value in (
        ("queue", queue),
        ("priority", priority),
        ("unique_key", unique_key),
        ("retry_attempt", retry_attempt),
    ):
        if value is not None:
            found.append(_equal(name, value, attrgetter(name)))
    if delay is not None:
        found.append(_delay_criterion(delay))
    if start_at is not None:
        found.append(_start_criterion(start_at))
    return found


def _equal(
    name: str, expected: Any, value: Callable[[JobRequest], Any], show: Callable[[Any], str] = repr
) -> Criterion:
    return Criterion(name, f"{name}={show(expected)}", value, lambda actual: actual == expected, show)


def _job_class(job: JobSpec) -> str:
    if isinstance(job, str):
        return job_class_name(jobs_registry.get_class(job))
    if isinstance(job, type) and issubclass(job, Job):
        return job_class_name(job)
    if isinstance(job, Job):
        return job_class_name(type(job))
    raise TypeError(f"job must be a Job class, a Job instance or a job class name, not {job!r}")


def _stored(request: JobRequest) -> dict[str, Any]:
    stored = request.parameters or {}
    return {"args": stored.get("args", []), "kwargs": stored.get("kwargs", {})}


def delay_of(request: JobRequest) -> int:
    """Whole seconds between enqueueing and the earliest start (0 when due at once).

    created_at is stamped when the row is inserted, a moment after run_in_worker
    computed start_at, which is why delays are compared in rounded seconds.
    """
    if request.start_at is None:
        return 0
    return round((request.start_at - request.created_at).total_seconds())


def _seconds(value: Seconds) -> int:
    if isinstance(value, datetime.timedelta):
        return round(value.total_seconds())
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"delay must be seconds, a timedelta or a (min, max) window, not {value!r} (use start_at=)")
    return round(value)


def _show_seconds(seconds: int) -> str:
    return f"{seconds}s"


def _start_of(request: JobRequest) -> datetime.datetime:
    return request.start_at or request.created_at


def _delay_criterion(delay: Seconds | DelayWindow) -> Criterion:
    if isinstance(delay, tuple):
        low, high = delay
        bounds = (None if low is None else _seconds(low), None if high is None else _seconds(high))
        return _within("delay", bounds, delay_of, _show_seconds)
    return _equal("delay", _seconds(delay), delay_of, _show_seconds)


def _start_criterion(start_at: datetime.datetime | StartWindow) -> Criterion:
    if isinstance(start_at, tuple):
        return _within("start_at", start_at, _start_of, _iso)
    return _equal("start_at", start_at, _start_of, _iso)


def _within(
    name: str, bounds: tuple[Any, Any], value: Callable[[JobRequest], Any], show: Callable[[Any], str]
) -> Criterion:
    low, high = bounds
    return Criterion(
        name,
        f"{name} {_window_text(low, high, show)}",
        value,
        lambda actual: (low is None or actual >= low) and (high is None or actual <= high),
        show,
    )


def _window_text(low: Any, high: Any, show: Callable[[Any], str]) -> str:
    if low is None and high is None:
        return "anything"
    if low is None:
        return f"at most {show(high)}"
    if high is None:
        return f"at least {show(low)}"
    return f"between {show(low)} and {show(high)}"


def _iso(value: datetime.datetime) -> str:
    return value.isoformat()


# the public assertions


def _pending_and_matching(wanted: list[Criterion]) -> tuple[list[JobRequest], list[JobRequest]]:
    from ..models import JobRequest

    pending = list(JobRequest.objects.order_by("id"))
    return pending, [request for request in pending if all(c.holds(request) for c in wanted)]


def enqueued(
    job: JobSpec | None = None,
    *,
    args: Sequence[Any] | None = None,
    kwargs: Mapping[str, Any] | None = None,
    queue: str | None = None,
    priority: int | None = None,
    unique_key: str | None = None,
    retry_attempt: int | None = None,
    delay: Seconds | DelayWindow | None = None,
    start_at: datetime.datetime | StartWindow | None = None,
) -> list[JobRequest]:
    """The pending JobRequests matching every given filter, in the order they were enqueued."""
    wanted = criteria(
        job,
        args=args,
        kwargs=kwargs,
        queue=queue,
        priority=priority,
        unique_key=unique_key,
        retry_attempt=retry_attempt,
        delay=delay,
        start_at=start_at,
    )
    return _pending_and_matching(wanted)[1]


def assert_enqueued(
    job: JobSpec | None = None,
    *,
    count: int | None = None,
    args: Sequence[Any] | None = None,
    kwargs: Mapping[str, Any] | None = None,
    queue: str | None = None,
    priority: int | None = None,
    unique_key: str | None = None,
    retry_attempt: int | None = None,
    delay: Seconds | DelayWindow | None = None,
    start_at: datetime.datetime | StartWindow | None = None,
) -> list[JobRequest]:
    """Fail unless a pending job matches (exactly ``count`` of them, if given); return the matches."""
    wanted = criteria(
        job,
        args=args,
        kwargs=kwargs,
        queue=queue,
        priority=priority,
        unique_key=unique_key,
        retry_attempt=retry_attempt,
        delay=delay,
        start_at=start_at,
    )
    pending, matching = _pending_and_matching(wanted)
    if (matching and count is None) or len(matching) == count:
        return matching
    expected = "a pending job" if count is None else f"{count} pending job{'' if count == 1 else 's'}"
    raise AssertionError(
        f"Expected {expected} matching {_describe_wanted(wanted)}, found {len(matching) or 'none'}.\n"
        + _listing(pending, wanted)
    )


def assert_not_enqueued(
    job: JobSpec | None = None,
    *,
    args: Sequence[Any] | None = None,
    kwargs: Mapping[str, Any] | None = None,
    queue: str | None = None,
    priority: int | None = None,
    unique_key: str | None = None,
    retry_attempt: int | None = None,
    delay: Seconds | DelayWindow | None = None,
    start_at: datetime.datetime | StartWindow | None = None,
) -> None:
    """Fail if any pending job matches the given filters (with none given: if anything is pending)."""
    wanted = criteria(
        job,
        args=args,
        kwargs=kwargs,
        queue=queue,
        priority=priority,
        unique_key=unique_key,
        retry_attempt=retry_attempt,
        delay=delay,
        start_at=start_at,
    )
    pending, matching = _pending_and_matching(wanted)
    if matching:
        raise AssertionError(
            f"Expected no pending job matching {_describe_wanted(wanted)}, found {len(matching)}.\n"
            + _listing(pending, wanted)
        )


# failure messages


def _describe_wanted(wanted: list[Criterion]) -> str:
    return " ".join(c.wanted for c in wanted) if wanted else "anything"


def _listing(pending: list[JobRequest], wanted: list[Criterion]) -> str:
    if not pending:
        return f"No jobs are pending.{_elsewhere()}"
    lines = [f"Pending jobs ({len(pending)}):"]
    for request in pending[:LISTED]:
        misses = [c.miss(request) for c in wanted if not c.holds(request)]
        lines.append(f"  - {describe(request)}")
        lines.append(f"      {'differs: ' + ', '.join(misses) if misses else 'matches'}")
    if len(pending) > LISTED:
        lines.append(f"  ... and {len(pending) - LISTED} more")
    return "\n".join(lines)


def _elsewhere() -> str:
    """Point at jobs that left the queue already, the usual reason it is empty."""
    from ..models import Job as JobRow
    from ..models import JobResult

    running, finished = JobRow.objects.count(), JobResult.objects.count()
    if not running and not finished:
        return ""
    return f" ({running} running in Job, {finished} finished in JobResult.)"


def describe(request: JobRequest) -> str:
    """One line with everything a test can assert on a pending request."""
    stored = _stored(request)
    source = request.source or "?"
    path, _, line = source.rpartition(":")
    if path and os.path.isabs(path) and path.startswith(os.getcwd() + os.sep):
        source = f"{os.path.relpath(path)}:{line}"
    return (
        f"{request.job_class} args={stored['args']!r} kwargs={stored['kwargs']!r} queue={request.queue!r} "
        f"priority={request.priority} delay={delay_of(request)}s "
        f"start_at={_iso(request.start_at or request.created_at)} unique_key={request.unique_key!r} "
        f"retry_attempt={request.retry_attempt} (enqueued at {source})"
    )
