"""The examples of the published plain.worker documentation, as written.

Each test holds one example of the user documentation our users already know
(shared/plain-worker-docs.txt) and checks it does what the docs say. The
WelcomeUserJob example sends email with plain.email, which is not a
dependency here; it runs with `send_mail` standing in as a recorder.
"""

from __future__ import annotations

import datetime

import pytest
from conftest import plain_command, wait_until
from plain.utils import timezone

from plain.worker import Job, register_job
from plain.worker.scheduling import Schedule

sent: list[dict] = []


def send_mail(**kwargs):
    sent.append(kwargs)


@register_job
class WelcomeUserJob(Job):
    def __init__(self, user):
        self.user = user

    def run(self):
        send_mail(
            subject="Welcome!",
            message=f"Hello from Plain, {self.user}",
            from_email="[email protected]",
            recipient_list=[self.user.email],
        )


class MyJob(Job):
    def run(self):
        # Required: The main job logic
        pass

    def get_queue(self) -> str:
        # Specify the default queue for this job type
        return "default"

    def get_priority(self) -> int:
        # Set the default priority (higher runs first)
        return 0

    def get_retries(self) -> int:
        # Number of retry attempts on failure
        return 0

    def get_retry_delay(self, attempt: int) -> int:
        # Delay in seconds before retry (attempt starts at 1)
        return 0

    def get_unique_key(self) -> str:
        # Return a key to prevent duplicate jobs
        return ""


MyJob = register_job(MyJob)


@register_job
class ProcessUserDataJob(Job):
    def __init__(self, user_id):
        self.user_id = user_id

    def get_unique_key(self):
        return f"process-user-{self.user_id}"

    def run(self):
        pass


@register_job
class RetryingJob(Job):
    def get_retries(self):
        return 3

    def get_retry_delay(self, attempt):
        # Exponential backoff: 1s, 2s, 4s
        return 2 ** (attempt - 1)

    def run(self):
        raise RuntimeError("fails every time")


def test_welcome_user_job_runs_in_process(db):
    from app.users.models import User

    from plain.worker.execution import Task, execute

    user = User.objects.create(email="welcome@example.com")
    request = WelcomeUserJob(user).run_in_worker()
    outcome = execute(
        Task(
            str(request.uuid),
            str(request.uuid),
            request.job_class,
            request.parameters,
            "default",
            0,
            0,
            0,
            "",
            None,
            None,
        )
    )
    assert outcome.status == "SUCCESSFUL", outcome.error
    assert sent[-1]["recipient_list"] == ["welcome@example.com"]


def test_job_parameters_example(db):
    job = MyJob()
    request = job.run_in_worker(
        queue="slow",  # Target a specific queue (default: "default")
        delay=60,  # Delay in seconds (or timedelta/datetime)
        priority=10,  # Higher priority jobs run first (default: 0)
        retries=3,  # Number of retry attempts (default: 0)
        unique_key="user-123-welcome",  # Prevent duplicate jobs
    )
    assert (request.queue, request.priority, request.retries, request.unique_key) == ("slow", 10, 3, "user-123-welcome")
    assert request.start_at - request.created_at >= datetime.timedelta(seconds=59)
    assert isinstance(job.run_in_worker(unique_key="user-123-welcome"), list)


def test_job_methods_defaults(db):
    request = MyJob().run_in_worker()
    assert (request.queue, request.priority, request.retries, request.unique_key) == ("default", 0, 0, "")
    assert MyJob().get_retry_delay(1) == 0


@pytest.fixture
def registry_snapshot():
    """Registering a scheduled job would make every later worker schedule it; undo that."""
    from plain.worker.registry import jobs_registry

    jobs, aliases = dict(jobs_registry.jobs), dict(jobs_registry.aliases)
    yield
    jobs_registry.jobs, jobs_registry.aliases = jobs, aliases


def test_daily_report_schedule(registry_snapshot):
    @register_job
    class DailyReportJob(Job):
        schedule = Schedule.from_cron("0 9 * * *")  # Every day at 9 AM

        def run(self):
            # Generate daily report
            pass

    now = datetime.datetime(2025, 3, 10, 8, 0, tzinfo=datetime.UTC)
    assert DailyReportJob.schedule.next(now) == datetime.datetime(2025, 3, 10, 9, 0, tzinfo=datetime.UTC)
    for expression in ["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"]:
        assert Schedule.from_cron(expression).next(now) > now


def test_unique_key_faq(db):
    first = ProcessUserDataJob(7).run_in_worker()
    again = ProcessUserDataJob(7).run_in_worker()
    assert [row.uuid for row in again] == [first.uuid]


def test_retry_faq_backoff(worker):
    from plain.worker.models import JobResult

    RetryingJob().run_in_worker()
    # The job lives in this test module, which the worker imports by its dotted name.
    worker()
    wait_until(lambda: JobResult.objects.count() == 4, timeout=30, message="four attempts")
    results = list(JobResult.objects.order_by("retry_attempt"))
    assert [r.status for r in results] == ["ERRORED"] * 4
    for expected, (previous, following) in zip([1, 2, 4], zip(results, results[1:], strict=False), strict=True):
        assert (following.started_at - previous.ended_at).total_seconds() >= expected


def test_documented_commands_start(worker):
    from plain.worker.models import Worker

    for args in (
        ["--stats-every", "0", "--max-processes", "2"],
        ["--queue", "slow", "--max-processes", "2"],
        ["--stats-every", "60"],
    ):
        process = worker(*args)
        wait_until(lambda: Worker.objects.exists(), message=f"plain worker run {' '.join(args)}")
        assert process.stop() == 0
        assert not Worker.objects.exists()


def test_history_setting_from_settings_module(db):
    from app.jobs import RecordJob

    from plain.worker.models import JobResult

    RecordJob("x").run_in_worker()
    old = JobResult.objects.create(
        job_uuid=__import__("uuid").uuid4(),
        job_request_uuid=__import__("uuid").uuid4(),
        job_class="app.jobs.RecordJob",
        status="SUCCESSFUL",
        error="",
    )
    JobResult.objects.filter(id=old.id).update(created_at=timezone.now() - datetime.timedelta(days=20))
    # WORKER_JOB_HISTORY_DAYS = 30 keeps a 20-day-old result; the default 7 would not.
    kept = plain_command("worker", "clear-completed", env={"PLAIN_WORKER_JOB_HISTORY_DAYS": "30"})
    assert "Deleted 0 job results" in kept.stdout
    assert "Deleted 1 job results" in plain_command("worker", "clear-completed").stdout
