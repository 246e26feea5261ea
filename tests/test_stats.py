"""Queue statistics: stats.collect(), `plain worker stats` and the --stats-every line."""

from __future__ import annotations

import datetime
import json
import re
import uuid

from conftest import plain_command, wait_until


def identity(name: str = "stats-host"):
    from plain.worker.models import WorkerIdentity

    return WorkerIdentity(uuid=uuid.uuid4(), hostname=name, pid=1)


def make_queues(now: datetime.datetime) -> None:
    """default: 2 waiting, 1 delayed, 1 successful, 1 errored (retried); mail: 1 running, 1 lost.

    The jobs are claimed and finished through the model transitions by a
    registered worker that is not running (its heartbeat is ``now``).
    """
    from app.jobs import FailingJob, RecordJob
    from plain.utils import timezone

    from plain.worker.models import Job, JobRequest, JobResultStatuses, Outcome, Worker

    holder = identity()
    Worker.register(holder, queues=["default", "mail"], max_processes=1, now=now)
    RecordJob("ok").run_in_worker()
    FailingJob("fail", retries=1).run_in_worker()
    RecordJob("mail-1").run_in_worker(queue="mail")
    RecordJob("mail-2").run_in_worker(queue="mail")
    claimed = JobRequest.claim(queues=["default"], limit=2, worker=holder, now=timezone.now())
    outcomes = [
        (
            job,
            Outcome(
                status=JobResultStatuses.SUCCESSFUL
                if job.job_class.endswith("RecordJob")
                else JobResultStatuses.ERRORED,
                started_at=now,
                ended_at=now,
            ),
        )
        for job in claimed
    ]
    Job.finish(outcomes, holder)  # the failure's retry is a new waiting request
    mail = JobRequest.claim(queues=["mail"], limit=2, worker=holder, now=timezone.now())
    assert len(claimed) == 2 and len(mail) == 2
    Job.finish([(mail[0], Outcome(status=JobResultStatuses.LOST, started_at=now, ended_at=now))], holder)
    RecordJob("waiting").run_in_worker()
    RecordJob("later").run_in_worker(delay=3600)


def test_collect_counts_per_queue_and_status(db):
    from plain.utils import timezone

    from plain.worker.models import JobRequest, Worker
    from plain.worker.stats import collect

    now = timezone.now()
    make_queues(now)
    Worker.register(identity("another"), queues=["default"], max_processes=1, now=now)

    stats = collect(now + datetime.timedelta(seconds=1))
    assert set(stats.queues) == {"default", "mail"}
    default, mail = stats.queues["default"], stats.queues["mail"]
    assert (default.waiting, default.delayed, default.running) == (2, 1, 0)
    assert default.results == {"SUCCESSFUL": 1, "ERRORED": 1}
    assert default.retried == 1
    assert (mail.waiting, mail.delayed, mail.running) == (0, 0, 1)
    assert mail.results == {"LOST": 1}
    assert stats.live_workers == 2

    # The oldest waiting job has waited since it became runnable (its start time).
    oldest = JobRequest.objects.filter(queue="default", start_at__lte=now + datetime.timedelta(seconds=1))
    first_runnable = min(request.start_at for request in oldest)
    later = first_runnable + datetime.timedelta(seconds=90)
    assert collect(later).oldest_waiting == first_runnable
    assert collect(later).as_json(later)["oldest_waiting_seconds"] == 90.0

    # Scoped to a queue, and past the heartbeat timeout.
    only_mail = collect(now, ["mail", "empty"])
    assert set(only_mail.queues) == {"empty", "mail"}
    assert only_mail.oldest_waiting is None
    assert collect(now + datetime.timedelta(hours=1)).live_workers == 0


def test_the_delayed_job_counts_as_waiting_once_its_time_comes(db):
    from app.jobs import RecordJob
    from plain.utils import timezone

    from plain.worker.stats import collect

    now = timezone.now()
    request = RecordJob("soon").run_in_worker(delay=60)
    assert collect(now).queues["default"].delayed == 1
    later = collect(now + datetime.timedelta(seconds=61))
    assert (later.queues["default"].waiting, later.queues["default"].delayed) == (1, 0)
    assert later.oldest_waiting == request.start_at


def stats_table(output: str) -> dict[str, dict[str, int]]:
    lines = [line.split() for line in output.splitlines() if line.strip()]
    header = lines[0]
    assert header[0] == "queue"
    rows = {}
    for cells in lines[1:]:
        if len(cells) != len(header):
            break
        rows[cells[0]] = dict(zip(header[1:], map(int, cells[1:]), strict=True))
    return rows


def test_stats_command(db):
    from plain.utils import timezone

    make_queues(timezone.now())
    result = plain_command("worker", "stats")
    assert result.returncode == 0, result.stderr
    table = stats_table(result.stdout)
    assert table["default"] == {
        "waiting": 2,
        "delayed": 1,
        "running": 0,
        "successful": 1,
        "errored": 1,
        "cancelled": 0,
        "lost": 0,
        "retried": 1,
    }
    assert table["mail"] == {
        "waiting": 0,
        "delayed": 0,
        "running": 1,
        "successful": 0,
        "errored": 0,
        "cancelled": 0,
        "lost": 1,
        "retried": 0,
    }
    assert table["(all)"]["waiting"] == 2 and table["(all)"]["lost"] == 1
    age = re.search(r"Oldest waiting job: ([\d.]+)s", result.stdout)
    assert age and 0 <= float(age.group(1)) < 120

    as_json = json.loads(plain_command("worker", "stats", "--json", "--queue", "mail").stdout)
    assert as_json["queues"] == {
        "mail": {
            "waiting": 0,
            "delayed": 0,
            "running": 1,
            "results": {"SUCCESSFUL": 0, "ERRORED": 0, "CANCELLED": 0, "LOST": 1},
            "retried": 0,
        }
    }
    assert as_json["oldest_waiting_seconds"] is None
    assert as_json["live_workers"] == 1
    assert "Live workers: 1" in result.stdout

    bad = plain_command("worker", "stats", "--queue", "no spaces")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr


def test_stats_every_logs_a_summary_line(worker):
    from app.jobs import FailingJob, RecordJob

    from plain.worker.models import JobResult

    RecordJob("one").run_in_worker()
    FailingJob("two").run_in_worker()
    RecordJob("later").run_in_worker(delay=3600)
    process = worker("--stats-every", "0.2", "--queue", "default", "--queue", "other", processes=1)
    wait_until(lambda: JobResult.objects.count() == 2)

    def summary() -> str | None:
        lines = [line for line in process.log_path.read_text().splitlines() if "Stats: " in line]
        return next((line for line in lines if "successful=1 errored=1" in line), None)

    line = wait_until(summary, message="a stats line that counts both results")
    assert process.stop() == 0
    assert "waiting=0 delayed=1 running=0 oldest_waiting=-" in line
    assert "last minute: successful=1 errored=1 cancelled=0 lost=0 retried=0" in line
    assert "this worker: held=0 processes=1" in line
    assert "live_workers=1" in line
    assert "default: waiting=0 delayed=1 running=0; other: waiting=0 delayed=0 running=0" in line


def test_summary_line_counts_only_the_last_minute_of_results(db):
    from plain.utils import timezone

    from plain.worker.stats import summary_line

    now = timezone.now()
    make_queues(now)
    fresh = summary_line(queues=["default", "mail"], now=now, running_here=3, processes=4)
    assert "last minute: successful=1 errored=1 cancelled=0 lost=1 retried=1" in fresh
    assert "this worker: held=3 processes=4" in fresh
    later = summary_line(queues=["default"], now=now + datetime.timedelta(minutes=2), running_here=0, processes=1)
    assert "last minute: successful=0 errored=0 cancelled=0 lost=0 retried=0" in later
    assert "waiting=2 delayed=1" in later
