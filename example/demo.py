"""The plain.worker demo: enqueue some jobs, run a real worker, show what happened.

Run it with `bash scripts/demo` from the repository root (it installs
everything first), or `../.venv/bin/python demo.py` from this directory.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
PLAIN = [sys.executable, "-m", "plain"]


def step(title: str) -> None:
    print(f"\n== {title}")


def fresh_database() -> None:
    (HERE / "demo.sqlite3").unlink(missing_ok=True)
    subprocess.run([*PLAIN, "migrate", "--no-input", "-v", "0"], cwd=HERE, check=True)


def enqueue() -> None:
    from app.jobs import ChargeCardJob, ImportContactsJob, RebuildSearchIndexJob, ReminderJob, WelcomeUserJob
    from app.users.models import User

    from plain.worker import Job

    ada = User.objects.create(name="Ada", email="ada@example.com")
    grace = User.objects.create(name="Grace", email="grace@example.com")
    linus = User.objects.create(name="Linus", email="linus@example.com")

    for user in (ada, grace, linus):
        request = WelcomeUserJob(user).run_in_worker()
        print(f"  WelcomeUserJob({user.name}) -> request {request.uuid}")
    ChargeCardJob(ada, 1999).run_in_worker(priority=10)
    print("  ChargeCardJob(Ada, 1999) -> priority 10, 3 retries with 1s/2s/4s backoff")
    first = RebuildSearchIndexJob().run_in_worker()
    second = RebuildSearchIndexJob().run_in_worker()
    print(f"  RebuildSearchIndexJob() -> request {first.uuid}")
    print(f"  RebuildSearchIndexJob() again -> not enqueued, already pending: {[str(r.uuid) for r in second]}")
    ReminderJob(grace).run_in_worker(delay=3)
    print("  ReminderJob(Grace) -> delayed by 3 seconds")
    ImportContactsJob(linus, "https://contacts.example.com").run_in_worker(queue="imports")
    print("  ImportContactsJob(Linus) -> queue 'imports' (fails on purpose)")
    Job.run_in_worker_bulk([WelcomeUserJob(user) for user in (ada, grace, linus) * 10], queue="newsletter")
    print("  30 WelcomeUserJobs in one bulk insert -> queue 'newsletter'")


def run_worker_until_done(timeout: float = 90) -> None:
    from plain.worker.models import Job, JobRequest

    worker = subprocess.Popen(
        [
            *PLAIN,
            "worker",
            "run",
            "--queue",
            "default",
            "--queue",
            "imports",
            "--queue",
            "newsletter",
            "--max-processes",
            "2",
            "--stats-every",
            "0",
        ],
        cwd=HERE,
        env={**os.environ, "PLAIN_WORKER_POLL_INTERVAL": "0.1"},
    )
    deadline = time.monotonic() + timeout
    try:
        while JobRequest.objects.exists() or Job.objects.exists():
            if time.monotonic() > deadline or worker.poll() is not None:
                raise SystemExit("The demo worker did not finish in time")
            time.sleep(0.2)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)


def report() -> None:
    from app.users.models import Outbox

    from plain.worker.models import JobResult

    print(f"  {'job':<28} {'queue':<11} {'status':<11} {'attempt':<8} {'took':>7}  error")
    for result in JobResult.objects.exclude(queue="newsletter").order_by("ended_at"):
        took = (result.ended_at - result.started_at).total_seconds() if result.started_at else 0
        error = result.error.strip().splitlines()[-1] if result.error.strip() else ""
        print(
            f"  {result.job_class.rsplit('.', 1)[-1]:<28} {result.queue:<11} {result.status:<11} "
            f"{result.retry_attempt:<8} {took:>6.3f}s  {error}"
        )
    newsletter = JobResult.objects.filter(queue="newsletter")
    print(f"  ... and {newsletter.successful().count()} of {newsletter.count()} newsletter jobs SUCCESSFUL")
    step("The outbox (what the jobs did)")
    for message in Outbox.objects.exclude(subject__startswith="Welcome").order_by("id"):
        print(f"  to {message.user.name:<6} {message.subject}")
    print(f"  ... and {Outbox.objects.filter(subject__startswith='Welcome').count()} welcome emails")
    step("plain worker stats")
    subprocess.run([*PLAIN, "worker", "stats"], cwd=HERE, check=True)


def main() -> None:
    os.chdir(HERE)
    step("Migrating a fresh SQLite database")
    fresh_database()
    import plain.runtime

    plain.runtime.setup()
    step("Enqueuing jobs")
    enqueue()
    step("Running `plain worker run` until the queues are empty")
    run_worker_until_done()
    step("Job history (JobResult)")
    report()


if __name__ == "__main__":
    main()
