"""`plain worker ...` commands, including their one-line errors."""

from __future__ import annotations

import datetime

import pytest
from conftest import plain_command, wait_until
from plain.utils import timezone


def test_help_lists_every_command():
    result = plain_command("worker", "--help")
    assert result.returncode == 0
    for command in ["run", "stats", "clear-completed", "purge-processing", "run-job", "registered-jobs"]:
        assert command in result.stdout


def test_run_help_explains_options_and_environment():
    result = plain_command("worker", "run", "--help")
    assert result.returncode == 0
    for option in [
        "--queue",
        "--max-processes",
        "--max-jobs-per-process",
        "--max-pending-per-process",
        "--stats-every",
        "--shutdown-timeout",
    ]:
        assert option in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["run", "--max-processes", "zero"],
            "Invalid value for '--max-processes': 'zero' is not a valid integer range.",
        ),
        (["run", "--max-processes", "0"], "Invalid value for '--max-processes'"),
        (["run", "--queue", "a b"], "Invalid queue name 'a b'"),
        (["run", "--queue", "default,slow"], "repeat --queue for several queues"),
        (["run", "--bogus"], "No such option '--bogus'"),
        (["run-job"], "Missing argument 'JOB_CLASS'"),
        (["run-job", "app.jobs.Nope"], "Job class 'app.jobs.Nope' is not registered"),
        (["run-job", "app.jobs.RecordJob", "--args", "not json"], "--args/--kwargs must be JSON"),
    ],
)
def test_bad_arguments_give_one_line_and_a_nonzero_exit(db, args, message):
    result = plain_command("worker", *args)
    assert result.returncode == 2
    assert message in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(error_lines) == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_a_heartbeat_timeout_shorter_than_the_interval_is_refused(db):
    result = plain_command(
        "worker", "run", env={"PLAIN_WORKER_HEARTBEAT_INTERVAL": "10", "PLAIN_WORKER_HEARTBEAT_TIMEOUT": "5"}
    )
    assert result.returncode == 1
    assert "WORKER_HEARTBEAT_TIMEOUT (5s) must be longer than WORKER_HEARTBEAT_INTERVAL (10s)" in result.stderr


def test_an_unknown_queue_is_reported_and_still_served(worker):
    """A mistyped --queue is named at start-up (SPEC 10), but jobs may be enqueued to any queue, so it is served."""
    from app.jobs import RecordJob

    from plain.worker.models import JobRequest, JobResult

    RecordJob("waiting").run_in_worker()
    process = worker("--queue", "emials")
    wait_until(lambda: "no job has been enqueued to 'emials' yet" in process.output(), message="the note")
    assert "queues seen so far: default" in process.output()

    RecordJob("typo").run_in_worker(queue="emials")
    wait_until(lambda: JobResult.objects.filter(queue="emials").exists(), message="the job on the new queue")
    assert process.alive()
    assert list(JobRequest.objects.values_list("queue", flat=True)) == ["default"]


def test_environment_variables_set_options(db):
    result = plain_command("worker", "run", env={"PLAIN_WORKER_MAX_PROCESSES": "nope"})
    assert result.returncode == 2
    assert "Invalid value for '--max-processes'" in result.stderr


def test_unmigrated_database_says_to_run_migrate(tmp_path):
    empty = {"DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}"}
    for args in (["run"], ["stats"], ["clear-completed"]):
        result = plain_command("worker", *args, env=empty, timeout=30)
        assert result.returncode == 1, result.stderr
        assert "run `plain migrate`" in result.stderr
        assert "Traceback" not in result.stderr


def test_stats_counts_per_queue_and_status(db):
    from app.jobs import FailingJob, RecordJob

    RecordJob("a").run_in_worker()
    RecordJob("b").run_in_worker(queue="slow")
    RecordJob("c").run_in_worker(queue="slow", delay=3600)
    FailingJob("d").run_in_worker(queue="slow")

    result = plain_command("worker", "stats")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "queue",
        "waiting",
        "delayed",
        "running",
        "successful",
        "errored",
        "cancelled",
        "lost",
        "retried",
    ]
    assert lines[1].split() == ["default", "1", "0", "0", "0", "0", "0", "0", "0"]
    assert lines[2].split() == ["slow", "2", "1", "0", "0", "0", "0", "0", "0"]
    assert "Live workers: 0" in result.stdout
    assert "Oldest waiting job:" in result.stdout


def test_clear_completed_deletes_results_older_than_the_history(db):
    from app.jobs import RecordJob

    from plain.worker.models import JobResult

    RecordJob("x").run_in_worker()
    for age_days in (1, 6, 8, 30):
        result = JobResult.objects.create(
            job_uuid=__import__("uuid").uuid4(),
            job_request_uuid=__import__("uuid").uuid4(),
            job_class="app.jobs.RecordJob",
            status="SUCCESSFUL",
            error="",
        )
        JobResult.objects.filter(id=result.id).update(created_at=timezone.now() - datetime.timedelta(days=age_days))

    out = plain_command("worker", "clear-completed")
    assert out.returncode == 0, out.stderr
    assert "Deleted 2 job results" in out.stdout
    assert JobResult.objects.count() == 2

    out = plain_command("worker", "clear-completed", env={"PLAIN_WORKER_JOB_HISTORY_DAYS": "3"})
    assert "Deleted 1 job results" in out.stdout


def test_purge_processing_asks_then_cancels_processing_jobs(db):
    from app.jobs import RecordJob

    from plain.worker.models import Job, JobRequest, JobResult, WorkerIdentity

    RecordJob("stuck").run_in_worker()
    identity = WorkerIdentity(uuid=__import__("uuid").uuid4(), hostname="gone", pid=1)
    JobRequest.claim(queues=["default"], limit=5, worker=identity, now=timezone.now())

    declined = plain_command("worker", "purge-processing")  # no input: the prompt is declined
    assert declined.returncode == 1
    assert "Record 1 processing jobs as CANCELLED?" in declined.stdout
    assert Job.objects.count() == 1

    confirmed = plain_command("worker", "purge-processing", "--yes")
    assert confirmed.returncode == 0, confirmed.stderr
    assert "Cancelled 1 processing jobs" in confirmed.stdout
    assert Job.objects.count() == 0
    result = JobResult.objects.get()
    assert (result.status, result.error) == ("CANCELLED", "Cancelled by `plain worker purge-processing`.")


def test_run_job_runs_inline_without_touching_the_queue(db):
    from app.records.models import Execution

    from plain.worker.models import JobRequest, JobResult

    ok = plain_command("worker", "run-job", "app.jobs.RecordJob", "--args", '["inline"]')
    assert ok.returncode == 0, ok.stderr
    assert "app.jobs.RecordJob: SUCCESSFUL" in ok.stdout
    assert Execution.objects.filter(key="inline").count() == 1

    failed = plain_command("worker", "run-job", "app.jobs.FailingJob", "--kwargs", '{"key": "boom"}')
    assert failed.returncode == 1
    assert "ValueError: deliberate failure for boom" in failed.stderr
    assert "app.jobs.FailingJob: ERRORED" in failed.stdout
    assert JobRequest.objects.count() == 0 and JobResult.objects.count() == 0


def test_registered_jobs_lists_classes_and_aliases(db):
    result = plain_command("worker", "registered-jobs")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "app.jobs.RecordJob" in lines
    assert "app.jobs.RenamedJob  (alias: app.jobs.OldRenamedJob)" in lines
