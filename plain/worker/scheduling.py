"""Cron schedules, and the job that runs a scheduled shell command.

``Schedule`` is what a job declares (``schedule = Schedule.from_cron(...)``);
``scheduler.py`` is the worker duty that enqueues its occurrences.

Cron expressions
    Five fields (minute hour day-of-month month day-of-week) with numbers,
    ``JAN``-``DEC``, ``SUN``-``SAT`` (Sunday is 0 or 7), ranges, lists and
    steps, or one of @yearly, @annually, @monthly, @weekly, @daily, @midnight,
    @hourly. A sixth field, seconds, is accepted after the other five
    (croniter's convention); it is meant for tests. Parsing is croniter's.
    When both day fields are restricted, a day matching either one runs the
    job; a field starting with ``*`` (``*/2``) counts as unrestricted, so then
    both must match (crontab(5) on Linux). Times are wall-clock times in the
    app's TIME_ZONE. On a day when clocks go forward, a time that does not
    exist runs at the first minute after the jump (02:30 -> 03:00); when clocks
    go back, a job with a fixed minute and hour runs once, in the first pass
    through the repeated hour, while a job whose minute or hour field starts
    with ``*`` runs in both passes, since real time keeps passing.
"""

from __future__ import annotations

import datetime
import logging
import subprocess
from typing import Any

from croniter import CroniterBadDateError, CroniterError, croniter
from plain.utils import timezone

from .jobs import Job
from .registry import register_job

logger = logging.getLogger("plain.worker")

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

#: Each field's name and what it accepts, in croniter's order (seconds last).
FIELDS = [
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day-of-month", "1-31"),
    ("month", "1-12 or JAN-DEC"),
    ("day-of-week", "0-7 or SUN-SAT"),
    ("second", "0-59"),
]


class Schedule:
    """A cron expression (5 fields or an @alias) and its occurrences in the app's time zone."""

    def __init__(self, expression: str) -> None:
        self.expression = expression
        self.cron = standard_form(expression)
        minute, hour = self.cron.split()[:2]
        self.runs_every_pass = minute.startswith("*") or hour.startswith("*")

    @classmethod
    def from_cron(cls, expression: str) -> Schedule:
        """Raises ValueError naming the expression and what is wrong with it."""
        return cls(expression)

    def next(self, now: datetime.datetime | None = None) -> datetime.datetime:
        """The first occurrence strictly after ``now`` (default: the current time)."""
        start = timezone.localtime(timezone.now() if now is None else now, timezone.get_default_timezone())
        times = croniter(self.cron, start, implement_cron_bug=True)
        while True:
            moment = times.get_next(datetime.datetime)
            if not self._skips(moment):
                return moment

    def latest(self, now: datetime.datetime) -> datetime.datetime:
        """The last occurrence at or before ``now``."""
        start = timezone.localtime(now, timezone.get_default_timezone())
        times = croniter(self.cron, start + datetime.timedelta(microseconds=1), implement_cron_bug=True)
        moment = times.get_prev(datetime.datetime)
        while self._skips(moment):
            moment = times.get_prev(datetime.datetime)
        # Going backwards, croniter can land one pass early in an hour repeated
        # when clocks go back; stepping forward with next() settles it.
        while (following := self.next(moment)) <= now:
            moment = following
        return moment

    def _skips(self, moment: datetime.datetime) -> bool:
        """A fixed-time job's second pass through an hour repeated when clocks go back."""
        repeated = moment.fold == 1 and moment.replace(fold=0).utcoffset() != moment.utcoffset()
        return repeated and not self.runs_every_pass

    def __str__(self) -> str:
        return self.expression

    def __repr__(self) -> str:
        return f"Schedule.from_cron({self.expression!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Schedule) and other.expression == self.expression

    def __hash__(self) -> int:
        return hash(self.expression)


def standard_form(expression: Any) -> str:
    """The expression as croniter should read it, or ValueError saying what is wrong."""
    if not isinstance(expression, str):
        raise ValueError(f"Invalid cron expression {expression!r}: expected a string such as '0 9 * * *'")
    text = " ".join(expression.split())
    if text.startswith("@"):
        if text.lower() not in ALIASES:
            raise ValueError(f"Invalid cron expression {expression!r}: use one of {', '.join(ALIASES)}")
        return ALIASES[text.lower()]
    fields = text.split()
    if len(fields) not in (5, 6):
        raise ValueError(
            f"Invalid cron expression {expression!r}: expected 5 fields "
            f"({' '.join(name for name, _ in FIELDS[:5])}), got {len(fields)}"
        )
    try:
        croniter(text, datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC), implement_cron_bug=True).get_next()
    except CroniterBadDateError:
        raise ValueError(f"Invalid cron expression {expression!r}: it never matches a date") from None
    except CroniterError as error:
        raise ValueError(f"Invalid cron expression {expression!r}: {field_problem(fields) or error}") from None
    return text


def field_problem(fields: list[str]) -> str:
    """Name the one field croniter rejects on its own, if there is one."""
    for index, field in enumerate(fields):
        alone = ["*"] * len(fields)
        alone[index] = field
        if not croniter.is_valid(" ".join(alone)):
            name, accepted = FIELDS[index]
            return f"{name} field {field!r} is not valid (it takes {accepted}, with ranges, lists and steps)"
    return ""


@register_job
class ShellCommandJob(Job):
    """Runs a ``"cmd:..."`` entry of WORKER_JOBS_SCHEDULE in a shell; a non-zero exit fails the job."""

    def __init__(self, command: str) -> None:
        self.command = command

    def run(self) -> None:
        completed = subprocess.run(
            self.command,
            shell=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            check=False,
        )
        output = completed.stdout.strip()
        if completed.returncode:
            status = (
                f"was killed by signal {-completed.returncode}"
                if completed.returncode < 0
                else f"exited with status {completed.returncode}"
            )
            tail = "\n".join(output.splitlines()[-20:])
            raise RuntimeError(f"Command {self.command!r} {status}" + (f"; last output:\n{tail}" if tail else ""))
        if output:
            logger.info("Command %r output:\n%s", self.command, output, extra={"event": "command_output"})
