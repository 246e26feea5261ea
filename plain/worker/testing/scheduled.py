"""Scheduled jobs in tests: enqueue the occurrences of a time window without waiting for it."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..models import JobRequest

#: Bound on the occurrences one call enqueues (a per-second schedule over a day would be 86,400).
MAX_OCCURRENCES = 1000


def enqueue_scheduled(
    *, since: datetime.datetime, until: datetime.datetime, queues: list[str] | None = None
) -> list[JobRequest]:
    """Enqueue what workers would have enqueued had they run from ``since`` to ``until``.

    Every occurrence in (since, until] of every scheduled job (class attributes
    and WORKER_JOBS_SCHEDULE), in time order, through the workers' own
    exactly-once path; ``queues`` limits it to those queues. Follow with
    ``drain(now=until)`` to run them.
    """
    from ..scheduler import enqueue_occurrence, load_schedule

    due = []
    for entry in load_schedule():
        if queues is not None and entry.queue not in queues:
            continue
        moment = entry.schedule.next(since)
        while moment <= until:
            due.append((moment, entry))
            if len(due) > MAX_OCCURRENCES:
                raise ValueError(
                    f"More than {MAX_OCCURRENCES} scheduled occurrences between {since} and {until}; "
                    "use a shorter window"
                )
            moment = entry.schedule.next(moment)
    due.sort(key=lambda pair: pair[0])
    return [request for moment, entry in due if (request := enqueue_occurrence(entry, moment)) is not None]
