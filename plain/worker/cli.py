"""`plain worker ...`: parse and check options, then call the modules that do the work."""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any

import click
from plain.cli import register_cli
from plain.utils import timezone

QUEUE_NAME = re.compile(r"^[^\s,]{1,255}$")


class UsageErrorOneLine(click.ClickException):
    exit_code = 2


class Command(click.Command):
    """Bad arguments print one line and exit 2 (no usage dump, no traceback)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as error:
            raise UsageErrorOneLine(f"{error.format_message()} (see `plain worker {self.name} --help`)") from None

    def invoke(self, ctx: click.Context) -> Any:
        from plain.models import DatabaseError

        from .exceptions import DatabaseNotMigrated, ProcessStartError

        try:
            return super().invoke(ctx)
        except (DatabaseNotMigrated, ProcessStartError) as error:
            raise click.ClickException(str(error)) from None
        except DatabaseError as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise click.ClickException(f"Database error: {first_line}") from None


@register_cli("worker")
@click.group()
def cli() -> None:
    """Background jobs: run workers and inspect the queue."""


def default_processes() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def check_queues(queues: tuple[str, ...]) -> list[str]:
    for queue in queues:
        if not QUEUE_NAME.match(queue):
            raise UsageErrorOneLine(
                f"Invalid queue name {queue!r}: use 1-255 characters without spaces or commas, "
                "and repeat --queue for several queues."
            )
    return list(dict.fromkeys(queues))


def check_heartbeat_settings() -> None:
    from plain.runtime import settings

    interval, timeout = settings.WORKER_HEARTBEAT_INTERVAL, settings.WORKER_HEARTBEAT_TIMEOUT
    if interval <= 0 or timeout <= interval:
        raise click.ClickException(
            f"WORKER_HEARTBEAT_TIMEOUT ({timeout}s) must be longer than WORKER_HEARTBEAT_INTERVAL ({interval}s), "
            "or live workers would be taken for dead; a few intervals is typical."
        )


def check_migrated() -> None:
    from plain.models import db_connection
    from plain.models.migrations.executor import MigrationExecutor

    from .exceptions import DatabaseNotMigrated

    executor = MigrationExecutor(db_connection)
    targets = [node for node in executor.loader.graph.leaf_nodes() if node[0] == "plainworker"]
    pending = [migration.name for migration in executor.migration_plan(targets)]
    if pending:
        raise DatabaseNotMigrated(f"unapplied: {', '.join(pending)}")


def warn_unknown_queues(queues: list[str]) -> None:
    from .stats import known_queues

    known = known_queues()
    unknown = [queue for queue in queues if queue not in known]
    if unknown and known:
        click.secho(
            f"Note: no job has been enqueued to {', '.join(map(repr, unknown))} yet "
            f"(queues seen so far: {', '.join(sorted(known))}). Listening anyway.",
            fg="yellow",
            err=True,
        )


@cli.command(cls=Command)
@click.option(
    "--queue",
    "queues",
    multiple=True,
    default=["default"],
    show_default=True,
    envvar="PLAIN_WORKER_QUEUE",
    help="Queue to take jobs from; repeat for several.",
)
@click.option(
    "--max-processes",
    type=click.IntRange(min=1),
    default=None,
    envvar="PLAIN_WORKER_MAX_PROCESSES",
    help="Job processes to run side by side [default: number of CPUs].",
)
@click.option(
    "--max-jobs-per-process",
    type=click.IntRange(min=1),
    default=None,
    envvar="PLAIN_WORKER_MAX_JOBS_PER_PROCESS",
    help="Replace a job process after this many jobs [default: never].",
)
@click.option(
    "--max-pending-per-process",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    envvar="PLAIN_WORKER_MAX_PENDING_PER_PROCESS",
    help="Jobs claimed ahead per process, waiting behind the running one.",
)
@click.option(
    "--stats-every",
    type=click.FloatRange(min=0),
    default=60,
    show_default=True,
    envvar="PLAIN_WORKER_STATS_EVERY",
    help="Log queue statistics every N seconds (0 = off).",
)
@click.option(
    "--shutdown-timeout",
    type=click.FloatRange(min=0),
    default=None,
    envvar="PLAIN_WORKER_SHUTDOWN_TIMEOUT",
    help="Seconds to let running jobs finish on SIGTERM/SIGINT [default: WORKER_SHUTDOWN_TIMEOUT].",
)
def run(
    queues: tuple[str, ...],
    max_processes: int | None,
    max_jobs_per_process: int | None,
    max_pending_per_process: int,
    stats_every: float,
    shutdown_timeout: float | None,
) -> None:
    """Run a worker until SIGTERM or SIGINT."""
    from .scheduler import Scheduler
    from .workers import Supervisor

    queue_list = check_queues(queues)
    check_heartbeat_settings()
    check_migrated()
    warn_unknown_queues(queue_list)
    try:
        scheduler = Scheduler.load(queue_list, timezone.now())
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    for line in scheduler.describe():
        click.echo(line)
    Supervisor(
        queues=queue_list,
        max_processes=max_processes or default_processes(),
        max_jobs_per_process=max_jobs_per_process,
        max_pending_per_process=max_pending_per_process,
        stats_every=stats_every,
        shutdown_timeout=shutdown_timeout,
        extra_duties=scheduler.duties(),
    ).run()


@cli.command(cls=Command)
@click.option("--queue", "queues", multiple=True, help="Only these queues; repeat for several.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def stats(queues: tuple[str, ...], as_json: bool) -> None:
    """Counts per queue and status, the oldest waiting job and live workers."""
    from .stats import STATUSES, age, collect

    check_migrated()
    now = timezone.now()
    result = collect(now, check_queues(queues) if queues else None)
    if as_json:
        click.echo(json.dumps(result.as_json(now)))
        return
    header = ["queue", "waiting", "delayed", "running", *(s.lower() for s in STATUSES), "retried"]
    rows: list[list[Any]] = [
        [name, q.waiting, q.delayed, q.running, *(q.results.get(s, 0) for s in STATUSES), q.retried]
        for name, q in result.queues.items()
    ]
    rows.append(
        [
            "(all)",
            result.total("waiting"),
            result.total("delayed"),
            result.total("running"),
            *(result.results(s) for s in STATUSES),
            result.total("retried"),
        ]
    )
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    click.echo(f"\nOldest waiting job: {age(result.oldest_waiting, now)}")
    click.echo(f"Live workers: {result.live_workers}")


@cli.command("clear-completed", cls=Command)
def clear_completed() -> None:
    """Delete job results older than WORKER_JOB_HISTORY_DAYS."""
    from .chores import delete_old_results

    check_migrated()
    click.echo(f"Deleted {delete_old_results()} job results")


@cli.command("purge-processing", cls=Command)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def purge_processing(yes: bool) -> None:
    """Record every claimed or running job as CANCELLED (for jobs stuck after a crash)."""
    from .models import Job

    check_migrated()
    count = Job.objects.count()
    if not count:
        click.echo("No jobs are processing")
        return
    if not yes and not click.confirm(
        f"Record {count} processing jobs as CANCELLED? Workers still running them will not record their results",
    ):
        raise click.ClickException("Aborted")
    cancelled = Job.cancel(None, reason="Cancelled by `plain worker purge-processing`.")
    click.echo(f"Cancelled {len(cancelled)} processing jobs")


@cli.command("run-job", cls=Command)
@click.argument("job_class")
@click.option("--args", "args_json", default="[]", help="Positional arguments as a JSON list.")
@click.option("--kwargs", "kwargs_json", default="{}", help="Keyword arguments as a JSON object.")
def run_job(job_class: str, args_json: str, kwargs_json: str) -> None:
    """Run one job inline, in this process, without touching the queue."""
    from .execution import Task, execute
    from .registry import jobs_registry

    try:
        jobs_registry.get_class(job_class)
    except LookupError as error:
        raise UsageErrorOneLine(str(error)) from None
    try:
        args, kwargs = json.loads(args_json), json.loads(kwargs_json)
    except json.JSONDecodeError as error:
        raise UsageErrorOneLine(f"--args/--kwargs must be JSON: {error}") from None
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise UsageErrorOneLine("--args must be a JSON list and --kwargs a JSON object")
    task = Task("(inline)", "(inline)", job_class, {"args": args, "kwargs": kwargs}, "default", 0, 0, 0, "", None, None)
    outcome = execute(task)
    if outcome.error:
        click.echo(outcome.error, err=True)
    click.echo(f"{job_class}: {outcome.status}")
    sys.exit(0 if outcome.status == "SUCCESSFUL" else 1)


@cli.command("registered-jobs", cls=Command)
def registered_jobs() -> None:
    """List the job classes workers can run."""
    from .registry import jobs_registry

    aliases: dict[str, list[str]] = {}
    for alias, name in jobs_registry.aliases.items():
        aliases.setdefault(name, []).append(alias)
    for name in jobs_registry.names():
        suffix = f"  (alias: {', '.join(aliases[name])})" if name in aliases else ""
        schedule = getattr(jobs_registry.jobs[name], "schedule", None)
        suffix += f"  schedule: {schedule}" if schedule is not None else ""
        click.echo(f"{name}{suffix}")
