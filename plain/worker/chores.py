"""History retention: the ``worker.clear_completed`` chore (``plain chores run``).

JobResults older than WORKER_JOB_HISTORY_DAYS are deleted, by this chore and by
``plain worker clear-completed``. The records of past schedule occurrences
(ScheduleRun) go with them: a worker only looks at occurrences that just came.
"""

from __future__ import annotations

import datetime

from plain.chores import register_chore
from plain.runtime import settings
from plain.utils import timezone


def history_cutoff(now: datetime.datetime) -> datetime.datetime:
    """JobResults created before this are past WORKER_JOB_HISTORY_DAYS."""
    legacy_seconds = settings.WORKER_JOBS_CLEARABLE_AFTER
    if legacy_seconds is not None:
        return now - datetime.timedelta(seconds=legacy_seconds)
    return now - datetime.timedelta(days=settings.WORKER_JOB_HISTORY_DAYS)


def delete_old_results(now: datetime.datetime | None = None) -> int:
    """Delete JobResults (and schedule occurrence records) older than the history window.

    Returns how many JobResults were deleted.
    """
    from .models import JobResult, ScheduleRun

    cutoff = history_cutoff(timezone.now() if now is None else now)
    deleted, _ = JobResult.objects.older_than(cutoff).delete()
    ScheduleRun.delete_older_than(cutoff)
    return deleted


@register_chore("worker")
def clear_completed() -> str:
    """Delete JobResults older than WORKER_JOB_HISTORY_DAYS."""
    return f"{delete_old_results()} job results deleted"
