"""History retention: the ``worker.clear_completed`` chore (``plain chores run``)."""

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
    """Delete JobResults older than the history window; return how many."""
    from .models import JobResult

    cutoff = history_cutoff(now or timezone.now())
    deleted, _ = JobResult.objects.older_than(cutoff).delete()
    return deleted


@register_chore("worker")
def clear_completed() -> str:
    """Delete JobResults older than WORKER_JOB_HISTORY_DAYS."""
    return f"{delete_old_results()} job results deleted"
