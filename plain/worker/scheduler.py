"""The scheduler: which scheduled jobs a worker enqueues, and when.

Declaring
    A registered job with a ``schedule = Schedule.from_cron("0 9 * * *")``
    class attribute, or an entry of WORKER_JOBS_SCHEDULE: a ``(job, schedule)``
    pair where job is a dotted job class name or ``"cmd:<shell command>"`` and
    schedule is a cron string or a Schedule. A scheduled job is built with no
    arguments (``"cmd:"`` entries become ``ShellCommandJob(command)``, which
    fails when the command exits non-zero) and goes to the queue its
    ``get_queue()`` names. Every entry is checked when a worker starts: an
    unknown job, a job that cannot be built without arguments or a bad cron
    expression stops the worker with a message naming the entry.

Enqueuing, exactly once
    Each worker schedules the entries whose queue it serves. It sleeps until
    the next occurrence (the supervisor's wait is bounded by the next due
    duty), then enqueues it in one transaction with a ScheduleRun row whose
    (schedule key, occurrence) pair is unique. However many workers race for an
    occurrence, the database lets one insert win; the others skip it. The key
    is the job's dotted name (or ``cmd:...`` text) and the expression, so
    changing an expression starts a new schedule. Workers' clocks must agree
    to well within the shortest period (NTP). A job whose get_unique_key() is
    not empty is skipped at an occurrence while an earlier run is still
    pending or running (the usual unique-key rule), and that is logged.

Missed occurrences
    Occurrences that pass while no worker serving the queue is running are
    not enqueued later: a worker starting up schedules the first occurrence
    after its start and never catches up. If a running worker gets to an
    occurrence late (the database was unreachable, the machine stalled), it
    enqueues only the most recent occurrence that has passed, once, and
    resumes with the next one after now: no flood of missed runs.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plain.runtime import settings

from .exceptions import JobNotRegistered
from .jobs import Job
from .maintenance import Duty
from .registry import job_class_name, jobs_registry
from .scheduling import Schedule, ShellCommandJob

if TYPE_CHECKING:
    from .models import JobRequest

logger = logging.getLogger("plain.worker")

#: Longest a worker sleeps before looking at the wall clock again (seconds), so a
#: clock correction cannot make it oversleep an occurrence by more than this.
MAX_SLEEP_SECONDS = 60.0

#: Seconds before a worker retries an occurrence it failed to enqueue.
RETRY_SECONDS = 1.0


@dataclass(frozen=True)
class ScheduledJob:
    """One scheduled job: what to enqueue (``build()``), when, and to which queue."""

    label: str  # dotted job class name, or "cmd:<command>"
    schedule: Schedule
    queue: str
    build: Callable[[], Job]

    @property
    def key(self) -> str:
        """What ScheduleRun rows are unique on, with the occurrence (at most 255 characters)."""
        key = f"{self.label} {' '.join(str(self.schedule).split())}"
        if len(key) <= 255:
            return key
        return f"{key[:230]}~{hashlib.sha256(key.encode()).hexdigest()[:24]}"


def load_schedule() -> list[ScheduledJob]:
    """Every scheduled job, from class attributes then WORKER_JOBS_SCHEDULE, checked.

    Raises ValueError naming the first bad entry. The same job on the same
    expression declared twice is scheduled once.
    """
    entries = []
    for name, cls in sorted(jobs_registry.jobs.items()):
        schedule = getattr(cls, "schedule", None)
        if isinstance(schedule, str):
            raise ValueError(f"{name}.schedule is a string: write schedule = Schedule.from_cron({schedule!r})")
        if isinstance(schedule, Schedule):
            entries.append(checked_entry(name, schedule, cls, where=f"{name}.schedule ({schedule})"))
    for index, item in enumerate(settings.WORKER_JOBS_SCHEDULE):
        entries.append(setting_entry(item, where=f"WORKER_JOBS_SCHEDULE entry {index} {item!r}"))
    return list({entry.key: entry for entry in entries}.values())


def setting_entry(item: Any, where: str) -> ScheduledJob:
    if not isinstance(item, list | tuple) or len(item) != 2:
        raise ValueError(f"{where}: expected a (job, schedule) pair such as ('app.jobs.ReportJob', '0 9 * * *')")
    job, when = item
    try:
        schedule = when if isinstance(when, Schedule) else Schedule.from_cron(when)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None
    if isinstance(job, str) and job.startswith("cmd:"):
        command = job.removeprefix("cmd:").strip()
        if not command:
            raise ValueError(f"{where}: 'cmd:' must be followed by a shell command")
        return checked_entry(f"cmd:{command}", schedule, lambda: ShellCommandJob(command), where)
    if isinstance(job, type) and issubclass(job, Job):
        job = job_class_name(job)
    if not isinstance(job, str):
        raise ValueError(f"{where}: the job must be a dotted job class name or 'cmd:<shell command>'")
    try:
        cls = jobs_registry.get_class(job)
    except JobNotRegistered as error:
        raise ValueError(f"{where}: {error}") from None
    return checked_entry(job_class_name(cls), schedule, cls, where)


def checked_entry(label: str, schedule: Schedule, build: Callable[[], Job], where: str) -> ScheduledJob:
    """Build the job once now, so a job that cannot be built fails at start-up, not at 9 AM."""
    try:
        queue = build().get_queue()
    except Exception as error:  # Misconfiguration boundary: reported at start-up, naming the entry.
        raise ValueError(
            f"{where}: building the job failed ({type(error).__name__}: {error}); "
            "a scheduled job is built with no arguments"
        ) from None
    return ScheduledJob(label, schedule, queue, build)


class Scheduler:
    """What one worker schedules: the entries for its queues and each one's next occurrence."""

    def __init__(self, entries: list[ScheduledJob], queues: list[str], now: datetime.datetime) -> None:
        self.entries = entries
        self.served = [entry for entry in entries if entry.queue in queues]
        self.targets = {entry.key: entry.schedule.next(now) for entry in self.served}
        self.duty = Duty("schedule", RETRY_SECONDS, self.tick)

    @classmethod
    def load(cls, queues: list[str], now: datetime.datetime) -> Scheduler:
        """The schedule of a worker starting at ``now``; ValueError for a bad entry."""
        return cls(load_schedule(), queues, now)

    def duties(self) -> list[Duty]:
        return [self.duty] if self.served else []

    def tick(self, now: datetime.datetime) -> None:
        """The duty: enqueue what is due, then sleep until the next occurrence."""
        self.enqueue_due(now)
        self.duty.due = time.monotonic() + self.seconds_until_next(now)

    def enqueue_due(self, now: datetime.datetime) -> list[JobRequest]:
        """Enqueue every served entry whose occurrence has come; return the new requests.

        An entry that is late by several occurrences enqueues only the latest.
        A database error propagates and leaves the rest due for the retry.
        """
        enqueued = []
        for entry in self.served:
            if now < self.targets[entry.key]:
                continue
            occurrence = max(self.targets[entry.key], entry.schedule.latest(now))
            request = enqueue_occurrence(entry, occurrence)
            self.targets[entry.key] = entry.schedule.next(now)
            if request is not None:
                enqueued.append(request)
        return enqueued

    def seconds_until_next(self, now: datetime.datetime) -> float:
        soonest = min(self.targets.values())
        return min(MAX_SLEEP_SECONDS, max(0.0, (soonest - now).total_seconds()))

    def describe(self) -> list[str]:
        """The start-up printout: every scheduled job and when this worker will next enqueue it."""
        if not self.entries:
            return ["Schedule: no scheduled jobs"]
        rows = [
            (
                str(entry.schedule),
                entry.label,
                f"queue {entry.queue}",
                f"next {self.targets[entry.key]:%Y-%m-%d %H:%M:%S %Z}"
                if entry in self.served
                else "not scheduled here (queue not served)",
            )
            for entry in self.entries
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        lines = [f"Schedule ({len(self.served)} of {len(self.entries)} scheduled jobs run from this worker):"]
        lines += [
            "  " + "  ".join([*(c.ljust(w) for c, w in zip(row[:3], widths, strict=True)), row[3]]) for row in rows
        ]
        return lines


def enqueue_occurrence(entry: ScheduledJob, occurrence: datetime.datetime) -> JobRequest | None:
    """Enqueue one occurrence unless a worker already has; return the new request, if any.

    A job that fails to build or enqueue (a job error, not a database error) is
    logged and this occurrence skipped.
    """
    from plain.models import DatabaseError, transaction

    from .models import JobRequest, ScheduleRun

    log = {"job_class": entry.label, "queue": entry.queue, "occurrence": occurrence.isoformat()}
    try:
        with transaction.atomic():
            run = ScheduleRun.take(entry.key, occurrence)
            if run is None:
                return None
            result = entry.build().run_in_worker()
            run.record(result.uuid if isinstance(result, JobRequest) else None)
    except DatabaseError:
        raise
    except Exception:  # Job-failure boundary: a job that breaks on enqueue loses this occurrence only.
        logger.exception(
            "Could not enqueue scheduled job %s for %s",
            entry.label,
            occurrence,
            extra={"event": "schedule_failed", **log},
        )
        return None
    if not isinstance(result, JobRequest):
        logger.info(
            "Skipped scheduled job %s for %s: an earlier run with its unique key is still in progress",
            entry.label,
            occurrence,
            extra={"event": "schedule_skipped", **log},
        )
        return None
    logger.info(
        "Enqueued scheduled job %s for %s",
        entry.label,
        occurrence,
        extra={"event": "job_scheduled", "job_request_uuid": str(result.uuid), **log},
    )
    return result
