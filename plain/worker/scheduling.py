"""Cron schedules for jobs.

``Schedule.from_cron("0 9 * * *")`` wraps croniter. Schedules come from a
``schedule`` class attribute on registered jobs and from WORKER_JOBS_SCHEDULE.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING

from croniter import croniter
from plain.utils import timezone

if TYPE_CHECKING:
    from .maintenance import Duty


class Schedule:
    """A cron expression (5 fields or an @alias) and its next occurrence."""

    def __init__(self, expression: str) -> None:
        if not isinstance(expression, str) or not croniter.is_valid(expression):
            raise ValueError(f"Invalid cron expression {expression!r}")
        self.expression = expression

    @classmethod
    def from_cron(cls, expression: str) -> Schedule:
        return cls(expression)

    def next(self, now: datetime.datetime | None = None) -> datetime.datetime:
        start = timezone.localtime(now or timezone.now())
        return croniter(self.expression, start).get_next(datetime.datetime)

    def __str__(self) -> str:
        return self.expression

    def __repr__(self) -> str:
        return f"Schedule.from_cron({self.expression!r})"


def schedule_duties(queues: list[str]) -> list[Duty]:
    """Maintenance duties that enqueue scheduled jobs for these queues."""
    return []
