"""Scheduled jobs: cron maths against hand-computed times, exactly-once enqueuing, real workers.

Times are passed in (``next(now)``, ``enqueue_due(now)``); only the real-worker
tests wait, on schedules with a seconds field.
"""

from __future__ import annotations

import datetime
import json
import re
import signal
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from conftest import assert_each_job_in_one_table, plain_command, wait_until
from plain.runtime import settings
from plain.utils import timezone

from plain.worker.scheduler import Scheduler, load_schedule, setting_entry
from plain.worker.scheduling import Schedule, ShellCommandJob

UTC = datetime.UTC


def utc(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=UTC)


def occurrences(expression: str, start: datetime.datetime, count: int) -> list[str]:
    """The next ``count`` occurrences, each computed from the one before (as a worker does)."""
    schedule = Schedule.from_cron(expression)
    found = []
    for _ in range(count):
        start = schedule.next(start)
        found.append(start.isoformat())
    return found


@pytest.fixture
def schedule_setting():
    """Set WORKER_JOBS_SCHEDULE for one test."""
    original = settings.WORKER_JOBS_SCHEDULE

    def use(value: list) -> None:
        settings.WORKER_JOBS_SCHEDULE = value

    yield use
    use(original)


@pytest.fixture
def app_time_zone():
    """Switch the app's TIME_ZONE for one test."""
    original = settings.TIME_ZONE

    def use(name: str) -> None:
        settings.TIME_ZONE = name
        timezone.get_default_timezone.cache_clear()

    yield use
    use(original)


# Expressions and their next times, computed by hand (times in UTC, the test app's zone).


@pytest.mark.parametrize(
    ("expression", "start", "expected"),
    [
        ("0 9 * * *", "2024-06-15 10:00", ["2024-06-16 09:00", "2024-06-17 09:00"]),
        (
            "*/15 * * * *",
            "2024-06-15 12:07",
            ["2024-06-15 12:15", "2024-06-15 12:30", "2024-06-15 12:45", "2024-06-15 13:00"],
        ),
        # Friday afternoon -> Monday morning; lists and ranges.
        ("15,45 9-10 * * MON-FRI", "2024-06-14 10:50", ["2024-06-17 09:15", "2024-06-17 09:45", "2024-06-17 10:15"]),
        # Month ends: the 31st skips the short months, the 30th skips February.
        (
            "0 0 31 * *",
            "2024-01-31 00:00",
            ["2024-03-31 00:00", "2024-05-31 00:00", "2024-07-31 00:00", "2024-08-31 00:00"],
        ),
        ("0 12 30 * *", "2024-01-30 12:00", ["2024-03-30 12:00", "2024-04-30 12:00"]),
        ("59 23 31 12 *", "2024-12-31 23:59", ["2025-12-31 23:59"]),
        # Leap years.
        ("0 0 29 2 *", "2023-01-01 00:00", ["2024-02-29 00:00", "2028-02-29 00:00"]),
        ("0 0 29 2 *", "2024-03-01 00:00", ["2028-02-29 00:00"]),
        # Month names.
        ("0 0 1 JAN-MAR *", "2024-02-15 00:00", ["2024-03-01 00:00", "2025-01-01 00:00", "2025-02-01 00:00"]),
        # Sunday is 0, 7 or SUN (2024-01-03 is a Wednesday).
        ("0 8 * * 0", "2024-01-03 00:00", ["2024-01-07 08:00", "2024-01-14 08:00"]),
        ("0 8 * * 7", "2024-01-03 00:00", ["2024-01-07 08:00", "2024-01-14 08:00"]),
        ("0 8 * * SUN", "2024-01-03 00:00", ["2024-01-07 08:00", "2024-01-14 08:00"]),
        (
            "0 0 * * 5-7",
            "2024-01-04 00:00",
            ["2024-01-05 00:00", "2024-01-06 00:00", "2024-01-07 00:00", "2024-01-12 00:00"],
        ),
        # Both day fields restricted: the 13th OR a Friday (2024-10-13 is a Sunday).
        (
            "0 9 13 * FRI",
            "2024-09-01 00:00",
            [
                "2024-09-06 09:00",
                "2024-09-13 09:00",
                "2024-09-20 09:00",
                "2024-09-27 09:00",
                "2024-10-04 09:00",
                "2024-10-11 09:00",
                "2024-10-13 09:00",
                "2024-10-18 09:00",
            ],
        ),
        # A day field starting with * is unrestricted: odd days AND Mondays.
        (
            "0 0 */2 * MON",
            "2024-01-01 00:00",
            ["2024-01-15 00:00", "2024-01-29 00:00", "2024-02-05 00:00", "2024-02-19 00:00"],
        ),
        # Aliases (2024-06-15 is a Saturday).
        ("@yearly", "2024-06-15 12:34", ["2025-01-01 00:00", "2026-01-01 00:00"]),
        ("@annually", "2024-06-15 12:34", ["2025-01-01 00:00"]),
        ("@monthly", "2024-06-15 12:34", ["2024-07-01 00:00", "2024-08-01 00:00"]),
        ("@weekly", "2024-06-15 12:34", ["2024-06-16 00:00", "2024-06-23 00:00"]),
        ("@daily", "2024-06-15 12:34", ["2024-06-16 00:00", "2024-06-17 00:00"]),
        ("@midnight", "2024-06-15 12:34", ["2024-06-16 00:00"]),
        ("@hourly", "2024-06-15 12:34", ["2024-06-15 13:00", "2024-06-15 14:00"]),
        # The optional seconds field comes last.
        (
            "* * * * * */20",
            "2024-06-15 12:00:05",
            ["2024-06-15 12:00:20", "2024-06-15 12:00:40", "2024-06-15 12:01:00"],
        ),
    ],
)
def test_next_occurrences(expression, start, expected):
    assert occurrences(expression, utc(start), len(expected)) == [utc(t).isoformat() for t in expected]


def test_next_is_strictly_after_now_and_aware():
    schedule = Schedule.from_cron("0 9 * * *")
    assert schedule.next(utc("2024-06-15 09:00")) == utc("2024-06-16 09:00")
    assert schedule.next(utc("2024-06-15 08:59:59.999")) == utc("2024-06-15 09:00")
    upcoming = schedule.next()
    assert upcoming.tzinfo is not None
    assert timezone.now() < upcoming <= timezone.now() + datetime.timedelta(days=1)


def test_times_are_in_the_app_time_zone(app_time_zone):
    app_time_zone("America/New_York")
    upcoming = Schedule.from_cron("0 9 * * *").next(utc("2024-06-15 12:00"))  # 08:00 in New York
    assert upcoming.isoformat() == "2024-06-15T09:00:00-04:00"
    assert upcoming.tzinfo == ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("zone", "expression", "start", "expected"),
    [
        # Clocks go forward at 02:00 on 2024-03-10: 02:30 does not exist and runs at 03:00.
        (
            "America/New_York",
            "30 2 * * *",
            "2024-03-09T12:00:00-05:00",
            ["2024-03-10T03:00:00-04:00", "2024-03-11T02:30:00-04:00"],
        ),
        (
            "America/New_York",
            "0 * * * *",
            "2024-03-10T00:30:00-05:00",
            ["2024-03-10T01:00:00-05:00", "2024-03-10T03:00:00-04:00", "2024-03-10T04:00:00-04:00"],
        ),
        # Clocks go back at 02:00 on 2024-11-03: a fixed-time job runs once...
        (
            "America/New_York",
            "30 1 * * *",
            "2024-11-02T12:00:00-04:00",
            ["2024-11-03T01:30:00-04:00", "2024-11-04T01:30:00-05:00"],
        ),
        # ...and hourly or */30 jobs run in both passes through 01:xx.
        (
            "America/New_York",
            "0 * * * *",
            "2024-11-03T00:30:00-04:00",
            ["2024-11-03T01:00:00-04:00", "2024-11-03T01:00:00-05:00", "2024-11-03T02:00:00-05:00"],
        ),
        (
            "America/New_York",
            "*/30 * * * *",
            "2024-11-03T00:50:00-04:00",
            [
                "2024-11-03T01:00:00-04:00",
                "2024-11-03T01:30:00-04:00",
                "2024-11-03T01:00:00-05:00",
                "2024-11-03T01:30:00-05:00",
                "2024-11-03T02:00:00-05:00",
            ],
        ),
        # Europe: forward at 02:00 on 2024-03-31, back at 03:00 on 2024-10-27.
        (
            "Europe/Berlin",
            "0 2 * * *",
            "2024-03-30T12:00:00+01:00",
            ["2024-03-31T03:00:00+02:00", "2024-04-01T02:00:00+02:00"],
        ),
        (
            "Europe/Berlin",
            "0 2 * * *",
            "2024-10-26T12:00:00+02:00",
            ["2024-10-27T02:00:00+02:00", "2024-10-28T02:00:00+01:00"],
        ),
    ],
)
def test_daylight_saving_changes(app_time_zone, zone, expression, start, expected):
    app_time_zone(zone)
    assert occurrences(expression, datetime.datetime.fromisoformat(start), len(expected)) == expected


def test_latest_occurrence(app_time_zone):
    daily = Schedule.from_cron("0 9 * * *")
    assert daily.latest(utc("2024-06-15 09:00")) == utc("2024-06-15 09:00")
    assert daily.latest(utc("2024-06-15 08:59:59")) == utc("2024-06-14 09:00")
    app_time_zone("America/New_York")
    during_second_pass = datetime.datetime.fromisoformat("2024-11-03T01:45:00-05:00")
    assert Schedule.from_cron("30 1 * * *").latest(during_second_pass).isoformat() == "2024-11-03T01:30:00-04:00"
    assert Schedule.from_cron("0 * * * *").latest(during_second_pass).isoformat() == "2024-11-03T01:00:00-05:00"
    after_the_jump = datetime.datetime.fromisoformat("2024-03-10T03:10:00-04:00")
    assert Schedule.from_cron("30 2 * * *").latest(after_the_jump).isoformat() == "2024-03-10T03:00:00-04:00"


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("61 * * * *", "minute field '61'"),
        ("0 24 * * *", "hour field '24'"),
        ("0 0 0 * *", "day-of-month field '0'"),
        ("0 0 * 13 *", "month field '13'"),
        ("0 0 * * 8", "day-of-week field '8'"),
        ("0 9 * * FOO", "day-of-week field 'FOO'"),
        ("*/0 * * * *", "minute field '*/0'"),
        ("* * * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 4"),
        ("0 0 * * * * *", "got 7"),
        ("", "got 0"),
        ("@reboot", "use one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly"),
        ("0 0 30 2 *", "it never matches a date"),
        ("0 0 31 4,6,9,11 *", "it never matches a date"),
        (42, "expected a string"),
        (None, "expected a string"),
    ],
)
def test_invalid_expressions(expression, problem):
    with pytest.raises(ValueError) as error:
        Schedule.from_cron(expression)
    assert f"Invalid cron expression {expression!r}: " in str(error.value)
    assert problem in str(error.value)


def test_schedule_shows_its_expression():
    schedule = Schedule.from_cron("0 9 * * MON-FRI")
    assert str(schedule) == "0 9 * * MON-FRI"
    assert repr(schedule) == "Schedule.from_cron('0 9 * * MON-FRI')"
    assert schedule == Schedule.from_cron("0 9 * * MON-FRI") != Schedule.from_cron("0 9 * * *")


# Declaring scheduled jobs.


def test_load_schedule_reads_class_attributes_and_the_setting(schedule_setting):
    from app.jobs import ScheduledRecordJob

    schedule_setting(
        [
            ("app.jobs.ScheduledRecordJob", "0 9 * * *"),
            (ScheduledRecordJob, Schedule.from_cron("@hourly")),
            ["cmd:  echo hi", "@daily"],
            ("app.jobs.ScheduledRecordJob", "0 9 * * *"),  # the same twice is scheduled once
        ]
    )
    entries = {(entry.label, str(entry.schedule), entry.queue) for entry in load_schedule()}
    assert entries == {
        ("app.jobs.EverySecondJob", "* * * * * *", "scheduled"),
        ("app.jobs.ScheduledRecordJob", "0 9 * * *", "default"),
        ("app.jobs.ScheduledRecordJob", "@hourly", "default"),
        ("cmd:echo hi", "@daily", "default"),
    }


@pytest.mark.parametrize(
    ("item", "problem"),
    [
        (("app.jobs.Missing", "0 9 * * *"), "Job class 'app.jobs.Missing' is not registered"),
        (("app.jobs.ScheduledRecordJob", "0 9 * *"), "Invalid cron expression '0 9 * *'"),
        (("cmd:", "0 9 * * *"), "'cmd:' must be followed by a shell command"),
        (("app.jobs.RecordJob", "0 9 * * *"), "building the job failed (TypeError"),
        (("app.jobs.ScheduledRecordJob",), "expected a (job, schedule) pair"),
        ((42, "0 9 * * *"), "the job must be a dotted job class name or 'cmd:<shell command>'"),
    ],
)
def test_bad_setting_entries_name_the_entry(schedule_setting, item, problem):
    schedule_setting([("app.jobs.ScheduledRecordJob", "@daily"), item])
    with pytest.raises(ValueError) as error:
        load_schedule()
    assert str(error.value).startswith(f"WORKER_JOBS_SCHEDULE entry 1 {item!r}: ")
    assert problem in str(error.value)


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        (["app.jobs.Missing", "0 9 * * *"], "app.jobs.Missing' is not registered"),
        (["app.jobs.ScheduledRecordJob", "0 9 * * MONDAY"], "day-of-week field 'MONDAY'"),
    ],
)
def test_worker_refuses_to_start_with_a_bad_entry(db, entry, problem):
    result = plain_command("worker", "run", env={"PLAIN_WORKER_JOBS_SCHEDULE": json.dumps([entry])}, timeout=60)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"Error: WORKER_JOBS_SCHEDULE entry 0 {entry!r}: ")
    assert problem in line


def test_shell_command_job(tmp_path):
    target = tmp_path / "out"
    ShellCommandJob(f"echo ran > {target}").run()
    assert target.read_text() == "ran\n"
    with pytest.raises(RuntimeError) as error:
        ShellCommandJob("echo about to fail; exit 3").run()
    assert str(error.value) == "Command 'echo about to fail; exit 3' exited with status 3; last output:\nabout to fail"


# Enqueuing occurrences: time is passed in, workers are Scheduler objects.


def hourly(job: str = "app.jobs.ScheduledRecordJob"):
    return setting_entry((job, "0 * * * *"), where="test")


def requests_of(job_class: str) -> list:
    from plain.worker.models import JobRequest

    return list(JobRequest.objects.filter(job_class=job_class).order_by("id"))


def test_each_occurrence_is_enqueued_once_by_any_number_of_workers(db):
    from plain.worker.models import ScheduleRun

    entry = hourly()
    workers = [Scheduler([entry], ["default"], utc("2024-06-15 09:10")) for _ in range(3)]
    assert all(worker.targets == {entry.key: utc("2024-06-15 10:00")} for worker in workers)
    for worker in workers:
        assert worker.enqueue_due(utc("2024-06-15 09:59:59.9")) == []
    enqueued = [worker.enqueue_due(utc("2024-06-15 10:00:00.2")) for worker in workers]
    assert [len(requests) for requests in enqueued] == [1, 0, 0]
    for worker in reversed(workers):
        worker.enqueue_due(utc("2024-06-15 10:00:03"))
        worker.enqueue_due(utc("2024-06-15 11:00:01"))
    requests = requests_of("app.jobs.ScheduledRecordJob")
    runs = list(ScheduleRun.objects.order_by("occurrence"))
    assert [run.occurrence for run in runs] == [utc("2024-06-15 10:00"), utc("2024-06-15 11:00")]
    assert [run.job_request_uuid for run in runs] == [request.uuid for request in requests]
    assert all(worker.targets == {entry.key: utc("2024-06-15 12:00")} for worker in workers)


def test_missed_occurrences_are_skipped_not_caught_up(db):
    from plain.worker.models import ScheduleRun

    entry = hourly()
    # No worker ran at 09:00 or 10:00; one starts at 10:30.
    worker = Scheduler([entry], ["default"], utc("2024-06-15 10:30"))
    assert worker.enqueue_due(utc("2024-06-15 10:59:59")) == []
    assert len(worker.enqueue_due(utc("2024-06-15 11:00:00.5"))) == 1
    # The worker is held up from 11:00 to 15:20: only 15:00 is enqueued, once.
    assert len(worker.enqueue_due(utc("2024-06-15 15:20"))) == 1
    assert worker.enqueue_due(utc("2024-06-15 15:21")) == []
    assert worker.targets[entry.key] == utc("2024-06-15 16:00")
    occurrences = list(ScheduleRun.objects.order_by("occurrence").values_list("occurrence", flat=True))
    assert occurrences == [utc("2024-06-15 11:00"), utc("2024-06-15 15:00")]
    assert len(requests_of("app.jobs.ScheduledRecordJob")) == 2


def test_a_restarted_worker_does_not_repeat_an_occurrence(db):
    entry = hourly()
    before = Scheduler([entry], ["default"], utc("2024-06-15 10:59:59.9"))
    assert len(before.enqueue_due(utc("2024-06-15 11:00:00.1"))) == 1
    restarted = Scheduler([entry], ["default"], utc("2024-06-15 11:00:00.5"))
    assert restarted.targets[entry.key] == utc("2024-06-15 12:00")
    slow = Scheduler([entry], ["default"], utc("2024-06-15 10:59:59.9"))
    assert slow.enqueue_due(utc("2024-06-15 11:00:02")) == []
    assert len(requests_of("app.jobs.ScheduledRecordJob")) == 1


def test_an_occurrence_is_skipped_while_the_unique_key_is_in_progress(db):
    from plain.worker.models import ScheduleRun

    worker = Scheduler([hourly("app.jobs.UniqueScheduledJob")], ["default"], utc("2024-06-15 09:30"))
    assert len(worker.enqueue_due(utc("2024-06-15 10:00"))) == 1
    assert worker.enqueue_due(utc("2024-06-15 11:00")) == []
    [request] = requests_of("app.jobs.UniqueScheduledJob")
    assert request.unique_key == "scheduled-unique"
    runs = list(ScheduleRun.objects.order_by("occurrence").values_list("occurrence", "job_request_uuid"))
    assert runs == [(utc("2024-06-15 10:00"), request.uuid), (utc("2024-06-15 11:00"), None)]


def test_a_worker_schedules_only_the_queues_it_serves(db):
    entries = load_schedule()  # app.jobs.EverySecondJob, on the "scheduled" queue
    now = utc("2024-06-15 09:00")
    elsewhere = Scheduler(entries, ["default"], now)
    assert elsewhere.duties() == []
    assert elsewhere.enqueue_due(now + datetime.timedelta(seconds=5)) == []
    assert "not scheduled here (queue not served)" in "\n".join(elsewhere.describe())
    here = Scheduler(entries, ["default", "scheduled"], now)
    assert [duty.name for duty in here.duties()] == ["schedule"]
    assert "next 2024-06-15 09:00:01 UTC" in "\n".join(here.describe())
    assert len(here.enqueue_due(now + datetime.timedelta(seconds=5))) == 1


def test_the_duty_sleeps_until_the_next_occurrence(db):
    now = utc("2024-06-15 09:59:30")
    scheduler = Scheduler([hourly()], ["default"], now)
    assert scheduler.seconds_until_next(now) == 30
    assert scheduler.seconds_until_next(utc("2024-06-15 09:00")) == 60  # capped: the clock is re-read
    assert scheduler.seconds_until_next(utc("2024-06-15 10:00:01")) == 0


# Real workers.


def scheduled_requests(job_class: str) -> set[str]:
    """Request uuids of a job class wherever the job is now: waiting, running or finished."""
    from plain.worker.models import Job, JobRequest, JobResult

    return (
        {str(u) for u in JobRequest.objects.filter(job_class=job_class).values_list("uuid", flat=True)}
        | {str(u) for u in Job.objects.filter(job_class=job_class).values_list("job_request_uuid", flat=True)}
        | {str(u) for u in JobResult.objects.filter(job_class=job_class).values_list("job_request_uuid", flat=True)}
    )


def assert_on_time(runs) -> None:
    lateness = [(run.created_at - run.occurrence).total_seconds() for run in runs]
    assert max(lateness) < 3, f"enqueued late (seconds): {lateness}"


def test_a_real_worker_runs_scheduled_jobs(worker, tmp_path):
    from app.records.models import Execution

    from plain.worker.models import JobResult, ScheduleRun

    out = tmp_path / "out"
    schedule = [[f"cmd:echo ran >> {out}", "* * * * * *"], ["cmd:echo failing; exit 3", "* * * * * */2"]]
    started = timezone.now()
    process = worker(
        "--queue", "scheduled", "--queue", "default", env={"PLAIN_WORKER_JOBS_SCHEDULE": json.dumps(schedule)}
    )
    wait_until(lambda: Execution.objects.filter(key="every-second").count() >= 2, message="class-attribute schedule")
    wait_until(lambda: out.exists() and out.read_text().count("ran") >= 2, message="cmd: schedule")
    wait_until(lambda: JobResult.objects.errored().exists(), message="failing command")
    assert process.stop() == 0
    startup = process.log_path.read_text().split("[INFO] Worker started")[0]
    assert "Schedule (3 of 3 scheduled jobs run from this worker):" in startup
    next_time = r"next \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"
    assert re.search(rf"\n  \* \* \* \* \* \*\s+app\.jobs\.EverySecondJob\s+queue scheduled\s+{next_time}\n", startup)
    assert re.search(rf"\n  \* \* \* \* \* \*/2\s+cmd:echo failing; exit 3\s+queue default\s+{next_time}\n", startup)
    assert f"cmd:echo ran >> {out}" in startup
    errored = JobResult.objects.errored().first()
    assert errored.job_class == "plain.worker.scheduling.ShellCommandJob"
    assert "RuntimeError: Command 'echo failing; exit 3' exited with status 3; last output:\nfailing" in errored.error
    assert not JobResult.objects.successful().filter(error__gt="").exists()
    runs = list(ScheduleRun.objects.all())
    assert {str(run.job_request_uuid) for run in runs} == (
        scheduled_requests("app.jobs.EverySecondJob") | scheduled_requests("plain.worker.scheduling.ShellCommandJob")
    )
    assert_on_time(runs)
    assert min(run.occurrence for run in runs) > started  # nothing from before the worker started
    assert_each_job_in_one_table()


def test_three_workers_enqueue_each_occurrence_exactly_once(worker):
    """Every 2 seconds, so that only a database stalled for 2 s (not one slow worker) could miss one."""
    from plain.worker.models import ScheduleRun

    env = {"PLAIN_WORKER_JOBS_SCHEDULE": json.dumps([["app.jobs.ScheduledRecordJob", "* * * * * */2"]])}
    workers = [worker(env=env, processes=1) for _ in range(3)]
    wait_until(lambda: ScheduleRun.objects.count() >= 3, message="three occurrences")
    workers[0].stop(signal.SIGTERM)
    workers[0] = worker(env=env, processes=1)
    seen = ScheduleRun.objects.count()
    wait_until(lambda: ScheduleRun.objects.count() >= seen + 3, message="three more occurrences after a restart")
    for process in workers:
        assert process.stop() == 0
    runs = list(ScheduleRun.objects.order_by("occurrence"))
    gaps = [(b.occurrence - a.occurrence).total_seconds() for a, b in pairwise(runs)]
    assert gaps == [2.0] * len(gaps), f"missed or repeated occurrences: {gaps}"
    requests = scheduled_requests("app.jobs.ScheduledRecordJob")
    assert len(requests) == len(runs), f"{len(requests)} requests for {len(runs)} occurrences"
    assert sorted(str(run.job_request_uuid) for run in runs) == sorted(requests)
    assert_on_time(runs)
    assert_each_job_in_one_table()
