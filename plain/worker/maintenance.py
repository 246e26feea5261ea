"""Periodic duties of a running worker, each on its own interval.

- heartbeat: tell other workers this one is alive (main process only, so a
  busy job can never make its worker look dead);
- rescue: record as LOST (and retry) the jobs of workers whose heartbeat is
  older than WORKER_HEARTBEAT_TIMEOUT;
- expire: record as LOST the jobs running longer than WORKER_JOBS_LOST_AFTER;
- stats: log one summary line every --stats-every seconds.

Every duty takes ``now`` so tests can drive it without sleeping.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from plain.runtime import settings

if TYPE_CHECKING:
    from .models import WorkerIdentity

logger = logging.getLogger("plain.worker")


@dataclass
class Duty:
    name: str
    interval: float
    action: Callable[[datetime.datetime], None]
    due: float = field(default=0.0)  # time.monotonic() of the next run


class Maintenance:
    def __init__(self, duties: list[Duty]) -> None:
        self.duties = [duty for duty in duties if duty.interval > 0]

    def run_due(self, now: datetime.datetime, clock: float | None = None) -> None:
        """Run every duty whose time has come (a failing duty is retried next time)."""
        clock = time.monotonic() if clock is None else clock
        for duty in self.duties:
            if duty.due <= clock:
                duty.due = clock + duty.interval
                duty.action(now)

    def seconds_until_due(self, clock: float | None = None) -> float:
        clock = time.monotonic() if clock is None else clock
        if not self.duties:
            return 60.0
        return max(0.0, min(duty.due for duty in self.duties) - clock)


def heartbeat(identity: WorkerIdentity, queues: list[str], max_processes: int) -> Callable[[datetime.datetime], None]:
    def beat(now: datetime.datetime) -> None:
        from .models import Worker

        if not Worker.beat(identity, queues=queues, max_processes=max_processes, now=now):
            logger.warning(
                "Worker was presumed dead by others (missed heartbeats) and has re-registered; "
                "its jobs at the time were recorded as LOST",
                extra={"event": "worker_reregistered", "worker_id": str(identity.uuid)},
            )

    return beat


OnLost = Callable[[list[Any]], None]


def rescue(on_lost: OnLost) -> Callable[[datetime.datetime], None]:
    def rescue_dead(now: datetime.datetime) -> None:
        from .models import Job

        on_lost(Job.rescue_dead_workers(now=now, timeout=settings.WORKER_HEARTBEAT_TIMEOUT))

    return rescue_dead


def expire(on_lost: OnLost) -> Callable[[datetime.datetime], None]:
    def expire_overdue(now: datetime.datetime) -> None:
        from .models import Job

        on_lost(Job.expire(now=now, lost_after=settings.WORKER_JOBS_LOST_AFTER))

    return expire_overdue


def log_lost(result: Any) -> None:
    logger.warning(
        "Job lost: %s",
        result.error,
        extra={
            "event": "job_lost",
            "job_uuid": str(result.job_uuid),
            "job_class": result.job_class,
            "queue": result.queue,
            "worker_id": str(result.worker_uuid),
        },
    )


def stats_line(queues: list[str], running: Callable[[], int], processes: int) -> Callable[[datetime.datetime], None]:
    def log_stats(now: datetime.datetime) -> None:
        from .stats import summary_line

        logger.info(
            "Stats: %s",
            summary_line(queues=queues, now=now, running_here=running(), processes=processes),
            extra={"event": "worker_stats"},
        )

    return log_stats


def duties(
    *,
    identity: WorkerIdentity,
    queues: list[str],
    max_processes: int,
    stats_every: float,
    running: Callable[[], int],
    on_lost: OnLost,
    extra: list[Duty] | None = None,
) -> Maintenance:
    """The worker's duties; ``on_lost`` receives the results of every rescue and expiry."""
    interval = settings.WORKER_HEARTBEAT_INTERVAL
    return Maintenance(
        [
            Duty("heartbeat", interval, heartbeat(identity, queues, max_processes)),
            Duty("rescue", interval, rescue(on_lost)),
            Duty("expire", min(60.0, max(1.0, settings.WORKER_JOBS_LOST_AFTER / 10)), expire(on_lost)),
            Duty("stats", stats_every, stats_line(queues, running, max_processes)),
            *(extra or []),
        ]
    )
