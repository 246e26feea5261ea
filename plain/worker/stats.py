"""Queue statistics: `plain worker stats`, the --stats-every line and the admin cards.

Every figure is a count over the job tables at one ``now``:

- waiting: requests that may run now (no start time, or one that has passed);
- delayed: requests whose start time is still ahead;
- running: Job rows, i.e. jobs claimed by a worker (started or about to);
- results: JobResult rows per status, plus how many of them were retried;
- oldest waiting: how long the longest-waiting runnable request has been
  runnable (since its start time; since it was created for rows without one);
- live workers: workers whose heartbeat is within WORKER_HEARTBEAT_TIMEOUT.

The periodic line counts results of the last minute only (over the ``ended_at``
index), so it stays cheap however long the history is.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from plain.models import Count, Min, Q
from plain.models.functions import Coalesce
from plain.runtime import settings

STATUSES = ["SUCCESSFUL", "ERRORED", "CANCELLED", "LOST"]

#: Window of the result counts in the --stats-every line.
RECENT = datetime.timedelta(minutes=1)


def runnable(now: datetime.datetime) -> Q:
    """JobRequests that may run at ``now`` (the claim's own condition)."""
    return Q(start_at__isnull=True) | Q(start_at__lte=now)


@dataclass
class QueueStats:
    waiting: int = 0
    delayed: int = 0
    running: int = 0
    results: dict[str, int] = field(default_factory=dict)
    retried: int = 0


@dataclass
class Stats:
    queues: dict[str, QueueStats]
    oldest_waiting: datetime.datetime | None
    live_workers: int

    def total(self, attribute: str) -> int:
        return sum(getattr(queue, attribute) for queue in self.queues.values())

    def results(self, status: str) -> int:
        return sum(queue.results.get(status, 0) for queue in self.queues.values())

    def as_json(self, now: datetime.datetime) -> dict[str, Any]:
        return {
            "queues": {
                name: {
                    "waiting": q.waiting,
                    "delayed": q.delayed,
                    "running": q.running,
                    "results": {status: q.results.get(status, 0) for status in STATUSES},
                    "retried": q.retried,
                }
                for name, q in self.queues.items()
            },
            "oldest_waiting_seconds": waited_seconds(self.oldest_waiting, now),
            "live_workers": self.live_workers,
        }


def collect(
    now: datetime.datetime,
    queues: list[str] | None = None,
    *,
    results_since: datetime.datetime | None = None,
) -> Stats:
    """Counts per queue from the three tables, plus live workers.

    ``queues`` limits every count to those queues (each listed one appears,
    even when empty); ``results_since`` counts only results that ended since.
    """
    from .models import Job, JobRequest, JobResult, Worker

    def scoped(queryset: Any) -> Any:
        return queryset.filter(queue__in=queues) if queues else queryset

    per_queue: dict[str, QueueStats] = {name: QueueStats() for name in queues or []}
    ready = runnable(now)
    for row in (
        scoped(JobRequest.objects.all())
        .values("queue")
        .annotate(waiting=Count("id", filter=ready), delayed=Count("id", filter=~ready))
    ):
        stats = per_queue.setdefault(row["queue"], QueueStats())
        stats.waiting, stats.delayed = row["waiting"], row["delayed"]
    for row in scoped(Job.objects.all()).values("queue").annotate(n=Count("id")):
        per_queue.setdefault(row["queue"], QueueStats()).running = row["n"]
    results = scoped(JobResult.objects.all())
    if results_since is not None:
        results = results.filter(ended_at__gte=results_since)
    for row in results.values("queue", "status").annotate(
        n=Count("id"), retried=Count("id", filter=Q(retry_job_request_uuid__isnull=False))
    ):
        stats = per_queue.setdefault(row["queue"], QueueStats())
        stats.results[row["status"]] = row["n"]
        stats.retried += row["retried"]
    oldest = scoped(JobRequest.objects.filter(ready)).aggregate(oldest=Min(Coalesce("start_at", "created_at")))[
        "oldest"
    ]
    live = Worker.live(now=now, timeout=settings.WORKER_HEARTBEAT_TIMEOUT).count()
    return Stats(queues=dict(sorted(per_queue.items())), oldest_waiting=oldest, live_workers=live)


def waited_seconds(oldest: datetime.datetime | None, now: datetime.datetime) -> float | None:
    if oldest is None:
        return None
    return round(max(0.0, (now - oldest).total_seconds()), 3)


def age(oldest: datetime.datetime | None, now: datetime.datetime) -> str:
    """The oldest waiting job's age for people: ``-`` when nothing waits."""
    seconds = waited_seconds(oldest, now)
    return "-" if seconds is None else f"{seconds:.1f}s"


def summary_line(*, queues: list[str], now: datetime.datetime, running_here: int, processes: int) -> str:
    """The one-line summary a worker logs every --stats-every seconds, for its own queues."""
    stats = collect(now, queues, results_since=now - RECENT)
    finished = " ".join(f"{status.lower()}={stats.results(status)}" for status in STATUSES)
    line = (
        f"waiting={stats.total('waiting')} delayed={stats.total('delayed')} "
        f"running={stats.total('running')} oldest_waiting={age(stats.oldest_waiting, now)} "
        f"| last minute: {finished} retried={stats.total('retried')} "
        f"| this worker: held={running_here} processes={processes} "
        f"| live_workers={stats.live_workers}"
    )
    if len(stats.queues) > 1:
        line += " | " + "; ".join(
            f"{name}: waiting={q.waiting} delayed={q.delayed} running={q.running}" for name, q in stats.queues.items()
        )
    return line


def known_queues() -> set[str]:
    """Every queue name that appears in any of the three tables."""
    from .models import Job, JobRequest, JobResult

    names: set[str] = set()
    for model in (JobRequest, Job, JobResult):
        names.update(model.objects.values_list("queue", flat=True).distinct())
    return names
