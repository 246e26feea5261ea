"""History retention: WORKER_JOB_HISTORY_DAYS drives the chore and `plain worker clear-completed`."""

from __future__ import annotations

import datetime
import uuid

import pytest
from conftest import plain_command
from plain.runtime import settings
from plain.utils import timezone

from plain.worker.chores import delete_old_results

DAY = datetime.timedelta(days=1)


def result_at(created_at: datetime.datetime, name: str):
    from plain.worker.models import JobResult

    result = JobResult.objects.create(
        job_uuid=uuid.uuid4(),
        job_request_uuid=uuid.uuid4(),
        job_class=f"app.jobs.{name}",
        status="SUCCESSFUL",
    )
    JobResult.objects.filter(id=result.id).update(created_at=created_at)  # created_at is set on insert
    return result


def remaining() -> list[str]:
    from plain.worker.models import JobResult

    return sorted(name.removeprefix("app.jobs.") for name in JobResult.objects.values_list("job_class", flat=True))


def test_deletes_exactly_the_results_older_than_the_window(db):
    from plain.worker.models import Job, JobRequest, ScheduleRun

    now = datetime.datetime(2024, 6, 15, 12, 0, tzinfo=datetime.UTC)
    result_at(now - 30 * DAY, "month_old")
    result_at(now - 7 * DAY - datetime.timedelta(microseconds=1), "just_past")
    result_at(now - 7 * DAY, "at_the_cutoff")
    result_at(now - 6 * DAY, "six_days")
    result_at(now, "new")
    request = JobRequest.objects.create(job_class="app.jobs.RecordJob", parameters={"args": ["x"], "kwargs": {}})
    JobRequest.objects.filter(id=request.id).update(created_at=now - 30 * DAY)
    Job.objects.create(job_request_uuid=uuid.uuid4(), job_class="app.jobs.RecordJob")
    ScheduleRun.objects.create(schedule_key="old", occurrence=now - 8 * DAY)
    ScheduleRun.objects.create(schedule_key="recent", occurrence=now - DAY)

    assert delete_old_results(now) == 2
    assert remaining() == ["at_the_cutoff", "new", "six_days"]
    assert JobRequest.objects.count() == 1
    assert Job.objects.count() == 1
    assert list(ScheduleRun.objects.values_list("schedule_key", flat=True)) == ["recent"]
    assert delete_old_results(now) == 0


@pytest.fixture
def runtime_setting():
    """Set a setting for one test, restoring it afterwards."""
    originals = {}

    def use(name: str, value: object) -> None:
        originals.setdefault(name, getattr(settings, name))
        setattr(settings, name, value)

    yield use
    for name, value in originals.items():
        setattr(settings, name, value)


def test_the_window_follows_the_setting(db, runtime_setting):
    now = timezone.now()
    for days in (40, 20, 3):
        result_at(now - days * DAY, f"days_{days}")
    runtime_setting("WORKER_JOB_HISTORY_DAYS", 30)
    assert delete_old_results(now) == 1
    runtime_setting("WORKER_JOB_HISTORY_DAYS", 2)
    assert delete_old_results(now) == 2
    assert remaining() == []


def test_the_legacy_seconds_setting_still_applies(db, runtime_setting):
    now = timezone.now()
    result_at(now - datetime.timedelta(hours=2), "two_hours")
    result_at(now - datetime.timedelta(minutes=30), "half_an_hour")
    runtime_setting("WORKER_JOBS_CLEARABLE_AFTER", 3600)
    assert delete_old_results(now) == 1
    assert remaining() == ["half_an_hour"]


def test_the_chore_deletes_old_results_and_says_how_many(db):
    now = timezone.now()
    for days in (30, 8, 6):
        result_at(now - days * DAY, f"days_{days}")
    listed = plain_command("chores", "list", "--group", "worker")
    assert "worker.clear_completed: Delete JobResults older than WORKER_JOB_HISTORY_DAYS." in listed.stdout
    ran = plain_command("chores", "run", "--name", "worker.clear_completed")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "worker.clear_completed: 2 job results deleted" in ran.stdout
    assert remaining() == ["days_6"]


def test_clear_completed_uses_the_same_window(db):
    now = timezone.now()
    for days in (30, 8, 6):
        result_at(now - days * DAY, f"days_{days}")
    ran = plain_command("worker", "clear-completed", env={"PLAIN_WORKER_JOB_HISTORY_DAYS": "10"})
    assert (ran.returncode, ran.stdout) == (0, "Deleted 1 job results\n"), ran.stderr
    assert remaining() == ["days_6", "days_8"]
    ran = plain_command("worker", "clear-completed")
    assert (ran.returncode, ran.stdout) == (0, "Deleted 1 job results\n"), ran.stderr
    assert remaining() == ["days_6"]
