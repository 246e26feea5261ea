"""Queue statistics: `plain worker stats`, the --stats-every line and admin cards."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from plain.models import Count, Min, Q
from plain.runtime import settings


@dataclass
class QueueStats:
    waiting: int = 0
    delayed: int = 0
    running: int = 0
    results: dict[str, int] = field(default_factory=dict)


@dataclass
class Stats:
    queues: dict[str, QueueStats]
    oldest_waiting: datetime.datetime | None
    live_workers: int

    def total(self, attribute: str) -> int:
        return sum(getattr(queue, attribute) for queue in self.queues.values())

    def results(self, status: str) -> int:
        return sum(queue.results.get(status, 0) for queue in self.queues.values())


def collect(now: datetime.datetime, queues: list[str] | None = None) -> Stats:
    """Counts per queue from the three tables, plus live workers."""
    from .models import Job, JobRequest, JobResult, Worker

    def scoped(queryset):
        return queryset.filter(queue__in=queues) if queues else queryset

    per_queue: dict[str, QueueStats] = {name: QueueStats() for name in queues or []}
    runnable = Q(start_at__isnull=True) | Q(start_at__lte=now)
    for row in scoped(JobRequest.objects.all()).values("queue").annotate(
        waiting=Count("id", filter=runnable), delayed=Count("id", filter=~runnable)
    ):
        stats = per_queue.setdefault(row["queue"], QueueStats())
        stats.waiting, stats.delayed = row["waiting"], row["delayed"]
    for row in scoped(Job.objects.all()).values("queue").annotate(n=Count("id")):
        per_queue.setdefault(row["queue"], QueueStats()).running = row["n"]
    for row in scoped(JobResult.objects.all()).values("queue", "status").annotate(n=Count("id")):
        per_queue.setdefault(row["queue"], QueueStats()).results[row["status"]] = row["n"]
    oldest = scoped(JobRequest.objects.filter(runnable)).aggregate(oldest=Min("created_at"))["oldest"]
    live = Worker.live(now=now, timeout=settings.WORKER_HEARTBEAT_TIMEOUT).count()
    return Stats(queues=dict(sorted(per_queue.items())), oldest_waiting=oldest, live_workers=live)


def age(oldest: datetime.datetime | None, now: datetime.datetime) -> str:
    if oldest is None:
        return "-"
    return f"{max(0.0, (now - oldest).total_seconds()):.1f}s"


def summary_line(*, queues: list[str], now: datetime.datetime, running_here: int, processes: int) -> str:
    stats = collect(now, queues)
    return (
        f"waiting={stats.total('waiting')} delayed={stats.total('delayed')} "
        f"running={stats.total('running')} held_here={running_here} processes={processes} "
        f"oldest_waiting={age(stats.oldest_waiting, now)} live_workers={stats.live_workers}"
    )


def known_queues() -> set[str]:
    """Every queue name that appears in any of the three tables."""
    from .models import Job, JobRequest, JobResult

    names: set[str] = set()
    for model in (JobRequest, Job, JobResult):
        names.update(model.objects.values_list("queue", flat=True).distinct())
    return names
