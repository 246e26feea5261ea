"""SIGTERM / SIGINT: stop claiming, hand back, wait, cut off — each step with real signals."""

from __future__ import annotations

import signal
import time

from conftest import assert_each_job_in_one_table, table_counts, wait_until


def test_sigterm_hands_unstarted_jobs_back_unchanged_and_finishes_running_ones(worker):
    from app.jobs import PriorityJob, SleepJob
    from app.records.models import Execution

    from plain.worker import Job
    from plain.worker.models import JobRequest, JobResult

    SleepJob("running", 2).run_in_worker(priority=10)
    originals = {
        request.uuid: request
        for request in Job.run_in_worker_bulk(
            [PriorityJob(f"queued-{i}", priority=i) for i in range(6)], retries=2, delay=0
        )
    }
    process = worker(processes=1, env={"PLAIN_WORKER_MAX_PENDING_PER_PROCESS": "10"})
    wait_until(lambda: Execution.objects.filter(key="running:start").exists(), message="the first job to start")

    assert process.stop(signal.SIGTERM) == 0
    assert "handed" in process.output()

    finished = {result.job_request_uuid: result for result in JobResult.objects.all()}
    assert finished.pop(JobResult.objects.get(job_class="app.jobs.SleepJob").job_request_uuid).status == "SUCCESSFUL"
    handed_back = {request.uuid: request for request in JobRequest.objects.all()}
    # Jobs already passed to the process ran; every other one is back, exactly as enqueued.
    assert set(finished) | set(handed_back) == set(originals)
    assert not set(finished) & set(handed_back)
    assert len(handed_back) >= 4
    for uuid, request in handed_back.items():
        original = originals[uuid]
        for field in (
            "job_class",
            "parameters",
            "priority",
            "queue",
            "retries",
            "retry_attempt",
            "unique_key",
            "start_at",
            "created_at",
            "source",
        ):
            assert getattr(request, field) == getattr(original, field), field
    assert all(result.status == "SUCCESSFUL" for result in finished.values())
    assert table_counts()["jobs"] == 0
    assert_each_job_in_one_table()


def test_jobs_still_running_after_the_shutdown_timeout_are_cancelled_and_retried(worker):
    from app.jobs import HangOnceJob
    from app.records.models import Execution

    from plain.worker.models import JobRequest, JobResult

    HangOnceJob("hung", seconds=60, retries=1).run_in_worker()
    process = worker(processes=1, env={"PLAIN_WORKER_SHUTDOWN_TIMEOUT": "1"})
    wait_until(lambda: Execution.objects.filter(key="hung:start").exists(), message="the job to start")

    started = time.monotonic()
    assert process.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 8

    result = JobResult.objects.get()
    assert result.status == "CANCELLED"
    assert "shutdown timeout (1s) ran out" in result.error
    retry = JobRequest.objects.get()
    assert (retry.retry_attempt, retry.uuid) == (1, result.retry_job_request_uuid)
    assert table_counts()["jobs"] == 0


def test_shutdown_timeout_option_overrides_the_setting(worker):
    from app.jobs import SleepJob

    from plain.worker.models import JobResult

    SleepJob("slow", 3).run_in_worker()
    process = worker("--shutdown-timeout", "0.5", processes=1, env={"PLAIN_WORKER_SHUTDOWN_TIMEOUT": "60"})
    wait_until(lambda: "slow:start" in _keys(), message="the job to start")
    assert process.stop(signal.SIGTERM) == 0
    assert JobResult.objects.get().status == "CANCELLED"


def test_a_second_sigint_stops_at_once(worker):
    from app.jobs import SleepJob

    from plain.worker.models import JobResult

    SleepJob("slow", 30).run_in_worker()
    process = worker(processes=1, env={"PLAIN_WORKER_SHUTDOWN_TIMEOUT": "60"})
    wait_until(lambda: "slow:start" in _keys(), message="the job to start")

    process.send(signal.SIGINT)
    time.sleep(1)
    assert process.alive(), "the first SIGINT waits for the running job"
    started = time.monotonic()
    assert process.stop(signal.SIGINT) == 0
    assert time.monotonic() - started < 8
    assert JobResult.objects.get().status == "CANCELLED"
    assert table_counts() == {"requests": 0, "jobs": 0, "results": 1}


def test_an_idle_worker_stops_promptly(worker):
    from plain.worker.models import Worker

    process = worker(processes=2)
    wait_until(lambda: Worker.objects.exists(), message="the worker to start")
    started = time.monotonic()
    assert process.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 3
    assert not Worker.objects.exists()


def _keys() -> list[str]:
    from app.records.models import Execution

    return list(Execution.objects.values_list("key", flat=True))
