"""`plain worker run` end to end: real worker processes against the session database."""

from __future__ import annotations

import datetime
import signal
import time

import pytest
from conftest import assert_each_job_in_one_table, table_counts, wait_until
from plain.utils import timezone


def executed_keys() -> list[str]:
    from app.records.models import Execution

    return list(Execution.objects.order_by("id").values_list("key", flat=True))


def test_two_workers_drain_1000_jobs_each_exactly_once(worker):
    from app.jobs import RecordJob
    from app.records.models import Execution
    from plain.models import Count

    from plain.worker import Job
    from plain.worker.models import JobResult

    total = 1000
    Job.run_in_worker_bulk([RecordJob(f"drain-{i}") for i in range(total)])
    first, second = worker(), worker()

    wait_until(lambda: JobResult.objects.count() >= total, timeout=120, message="all jobs to finish")
    time.sleep(0.5)  # anything run twice would show up now

    per_key = dict(Execution.objects.values("key").annotate(n=Count("id")).values_list("key", "n"))
    assert len(per_key) == total
    assert set(per_key.values()) == {1}, {k: n for k, n in per_key.items() if n != 1}
    assert table_counts() == {"requests": 0, "jobs": 0, "results": total}
    assert set(JobResult.objects.values_list("status", flat=True)) == {"SUCCESSFUL"}
    workers_used = set(JobResult.objects.values_list("worker_uuid", flat=True))
    assert len(workers_used) == 2, "both workers should have taken jobs"
    assert first.stop() == 0 and second.stop() == 0


@pytest.mark.parametrize(
    "pending",
    [
        "0",  # one job per claim: the claim statement's ORDER BY decides
        "10",  # every job in one claim: the order within a claimed batch decides
    ],
)
def test_priority_order_then_fifo_with_one_process(worker, pending):
    from app.jobs import PriorityJob

    plan = [("a", 0), ("b", 5), ("c", 0), ("d", 10), ("e", 5), ("f", -1), ("g", 0)]
    for key, priority in plan:
        PriorityJob(key, priority=priority).run_in_worker()
    # Runnable an hour ago: ahead of every priority-0 job enqueued since.
    PriorityJob("early", priority=0).run_in_worker(delay=timezone.now() - datetime.timedelta(hours=1))

    worker(processes=1, env={"PLAIN_WORKER_MAX_PENDING_PER_PROCESS": pending})
    wait_until(lambda: len(executed_keys()) == len(plan) + 1, message="all jobs to run")
    assert executed_keys() == ["d", "b", "e", "early", "a", "c", "g", "f"]


def test_queue_isolation(worker):
    from app.jobs import RecordJob

    from plain.worker.models import JobRequest

    RecordJob("default-1").run_in_worker()
    RecordJob("slow-1").run_in_worker(queue="slow")
    RecordJob("other-1").run_in_worker(queue="other")
    RecordJob("slow-2").run_in_worker(queue="slow")

    slow = worker("--queue", "slow")
    wait_until(lambda: len(executed_keys()) == 2, message="slow jobs")
    time.sleep(0.5)
    assert sorted(executed_keys()) == ["slow-1", "slow-2"]
    assert sorted(JobRequest.objects.values_list("queue", flat=True)) == ["default", "other"]

    both = worker("--queue", "default", "--queue", "other")
    wait_until(lambda: len(executed_keys()) == 4, message="the other queues")
    assert slow.stop() == 0 and both.stop() == 0


def test_delayed_job_waits_for_its_start_time(worker):
    from app.jobs import RecordJob
    from app.records.models import Execution

    from plain.worker.models import Worker

    worker()
    wait_until(lambda: Worker.objects.exists(), message="the worker to start")
    request = RecordJob("later").run_in_worker(delay=2)
    RecordJob("now").run_in_worker()

    wait_until(lambda: "now" in executed_keys(), message="the immediate job")
    if timezone.now() < request.start_at:
        assert "later" not in executed_keys()
    execution = wait_until(lambda: Execution.objects.filter(key="later").first(), timeout=10, message="delayed job")
    assert execution.created_at >= request.start_at
    assert execution.created_at - request.start_at < datetime.timedelta(seconds=2)


def test_retries_are_counted_delayed_and_linked(worker):
    from app.jobs import FailingJob

    from plain.worker.models import JobRequest, JobResult

    FailingJob("fails", retries=2, delay=1).run_in_worker()
    worker()

    wait_until(lambda: JobResult.objects.count() == 3, timeout=20, message="three attempts")
    time.sleep(0.3)
    results = list(JobResult.objects.order_by("retry_attempt"))
    assert [(r.status, r.retry_attempt, r.retries) for r in results] == [
        ("ERRORED", 0, 2),
        ("ERRORED", 1, 2),
        ("ERRORED", 2, 2),
    ]
    for result in results:
        assert result.error.startswith("Traceback (most recent call last):")
        assert "ValueError: deliberate failure for fails" in result.error
    # Each result points at the request of the next attempt; the last one is final.
    assert results[0].retry_job_request_uuid == results[1].job_request_uuid
    assert results[1].retry_job_request_uuid == results[2].job_request_uuid
    assert results[2].retry_job_request_uuid is None
    for previous, following in zip(results, results[1:], strict=False):
        assert following.started_at - previous.ended_at >= datetime.timedelta(seconds=1)
    assert JobRequest.objects.count() == 0
    assert JobResult.objects.retried().count() == 2
    assert JobResult.objects.retryable().count() == 1


def test_a_flaky_job_succeeds_on_retry(worker):
    from app.jobs import FlakyJob

    from plain.worker.models import JobResult

    FlakyJob("flaky", failures=2).run_in_worker()
    worker()
    wait_until(lambda: JobResult.objects.successful().exists(), timeout=20, message="a successful attempt")
    assert list(JobResult.objects.order_by("retry_attempt").values_list("status", flat=True)) == [
        "ERRORED",
        "ERRORED",
        "SUCCESSFUL",
    ]


def test_unique_key_is_deduplicated_while_the_job_runs(worker):
    from app.jobs import UniqueJob

    from plain.worker.models import Job, JobRequest, JobResult

    UniqueJob("slow", seconds=2).run_in_worker()
    worker()
    wait_until(lambda: "slow:start" in executed_keys(), message="the job to start")

    again = UniqueJob("slow").run_in_worker()
    assert isinstance(again, list) and len(again) == 1 and isinstance(again[0], Job)
    assert JobRequest.objects.count() == 0

    wait_until(lambda: JobResult.objects.count() == 1, message="the job to finish")
    assert not isinstance(UniqueJob("slow").run_in_worker(), list)


def test_unregistered_job_class_in_a_row_errors_and_the_worker_goes_on(worker):
    from app.jobs import RecordJob

    from plain.worker.models import JobRequest, JobResult

    JobRequest.objects.create(job_class="app.jobs.DeletedJob", parameters={"args": [], "kwargs": {}})
    RecordJob("after").run_in_worker(priority=-1)
    process = worker(processes=1)

    wait_until(lambda: JobResult.objects.count() == 2, message="both rows handled")
    failed = JobResult.objects.get(job_class="app.jobs.DeletedJob")
    assert failed.status == "ERRORED"
    assert "JobNotRegistered: Job class 'app.jobs.DeletedJob' is not registered" in failed.error
    assert JobResult.objects.get(job_class="app.jobs.RecordJob").status == "SUCCESSFUL"
    assert process.alive()


def test_rows_stored_under_an_alias_still_run(worker):
    from app.records.models import Execution

    from plain.worker.models import JobRequest

    JobRequest.objects.create(job_class="app.jobs.OldRenamedJob", parameters={"args": ["renamed"], "kwargs": {}})
    worker()
    execution = wait_until(lambda: Execution.objects.filter(key="renamed").first(), message="aliased job")
    assert execution.job_class == "RenamedJob"


def test_return_values_are_ignored(worker):
    from app.jobs import BadReturnJob

    from plain.worker.models import JobResult

    BadReturnJob("lambda").run_in_worker()
    worker()
    result = wait_until(lambda: JobResult.objects.first(), message="the job")
    assert result.status == "SUCCESSFUL", result.error


def test_a_job_that_kills_its_process_is_lost_and_the_worker_goes_on(worker):
    from app.jobs import ExitJob, RecordJob

    from plain.worker.models import JobResult

    ExitJob("exit").run_in_worker()
    RecordJob("after").run_in_worker(priority=-1)
    process = worker(processes=1)

    wait_until(lambda: JobResult.objects.count() == 2, message="both jobs recorded")
    lost = JobResult.objects.get(job_class="app.jobs.ExitJob")
    assert lost.status == "LOST"
    assert "died abruptly" in lost.error
    assert JobResult.objects.get(job_class="app.jobs.RecordJob").status == "SUCCESSFUL"
    assert process.alive()


def test_max_jobs_per_process_replaces_processes(worker):
    from app.jobs import RecordJob
    from app.records.models import Execution

    from plain.worker import Job

    Job.run_in_worker_bulk([RecordJob(f"recycle-{i}") for i in range(6)])
    worker("--max-jobs-per-process", "2", processes=1)
    wait_until(lambda: Execution.objects.count() == 6, message="all jobs")
    assert len(set(Execution.objects.values_list("pid", flat=True))) >= 3


def test_sigterm_stops_cleanly(worker):
    from app.jobs import SleepJob

    from plain.worker.models import JobResult, Worker

    SleepJob("sleepy", 1).run_in_worker()
    process = worker()
    wait_until(lambda: Worker.objects.exists(), message="the worker to register")
    wait_until(lambda: "sleepy:start" in executed_keys(), message="the job to start")

    assert process.stop(signal.SIGTERM) == 0
    assert JobResult.objects.get().status == "SUCCESSFUL"
    assert not Worker.objects.exists()
    assert table_counts() == {"requests": 0, "jobs": 0, "results": 1}
    assert_each_job_in_one_table()
