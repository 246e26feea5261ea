"""What happens when job processes and whole workers die (real kills)."""

from __future__ import annotations

import time

import pytest
from conftest import assert_each_job_in_one_table, table_counts, wait_until


def results_by_key() -> dict[str, list[str]]:
    from plain.worker.models import JobResult

    found: dict[str, list[str]] = {}
    for result in JobResult.objects.order_by("retry_attempt", "id"):
        found.setdefault(result.parameters["args"][0], []).append(result.status)
    return found


@pytest.mark.parametrize("how", ["exit", "sigkill", "segfault"])
def test_a_dying_job_process_is_recorded_lost_and_retried(worker, how):
    from app.jobs import CrashJob, RecordJob

    from plain.worker.models import JobResult

    CrashJob("crash", how, retries=1).run_in_worker()
    RecordJob("after").run_in_worker(priority=-1)
    process = worker(processes=1)

    wait_until(lambda: JobResult.objects.count() == 3, message="two crashes and the next job")
    assert results_by_key() == {"crash": ["LOST", "LOST"], "after": ["SUCCESSFUL"]}
    lost = JobResult.objects.lost().first()
    assert "died abruptly" in lost.error
    assert process.alive()
    assert table_counts() == {"requests": 0, "jobs": 0, "results": 3}


def test_jobs_in_other_processes_keep_running_when_one_dies(worker):
    from app.jobs import CrashJob, SleepJob
    from app.records.models import Execution

    from plain.worker.models import JobResult

    SleepJob("sleeper", 2).run_in_worker(priority=5)
    worker(processes=2, env={"PLAIN_WORKER_MAX_PENDING_PER_PROCESS": "0"})
    wait_until(lambda: Execution.objects.filter(key="sleeper:start").exists(), message="the sleeper to start")
    CrashJob("crash", "sigkill").run_in_worker()

    wait_until(lambda: JobResult.objects.count() == 2, message="both outcomes")
    assert results_by_key() == {"sleeper": ["SUCCESSFUL"], "crash": ["LOST"]}


def test_jobs_queued_behind_a_dead_one_run_in_a_new_process(worker):
    from app.jobs import CrashJob, PriorityJob
    from app.records.models import Execution

    from plain.worker import Job

    CrashJob("crash", "exit").run_in_worker(priority=10)
    Job.run_in_worker_bulk([PriorityJob(f"queued-{i}") for i in range(4)])
    worker(processes=1)

    wait_until(lambda: len(results_by_key()) == 5, message="every job")
    assert results_by_key() == {"crash": ["LOST"], **{f"queued-{i}": ["SUCCESSFUL"] for i in range(4)}}
    pids = set(Execution.objects.exclude(key="crash").values_list("pid", flat=True))
    crash_pid = Execution.objects.get(key="crash").pid
    assert crash_pid not in pids


def test_jobs_of_a_killed_worker_are_rescued_by_another(worker):
    from app.jobs import HangOnceJob, RecordJob
    from app.records.models import Execution

    from plain.worker.models import JobResult, Worker

    HangOnceJob("hung", seconds=60, retries=1).run_in_worker()
    HangOnceJob("hung-no-retry", seconds=60, retries=0).run_in_worker()
    doomed = worker(processes=2)
    wait_until(lambda: Execution.objects.filter(key__endswith=":start").count() == 2, message="both to start")

    doomed.kill()
    killed_at = time.monotonic()
    RecordJob("later").run_in_worker()
    worker(processes=1)

    wait_until(lambda: results_by_key().get("hung") == ["LOST", "SUCCESSFUL"], timeout=30, message="rescue+retry")
    # Heartbeat timeout is 3s in the tests: noticed in seconds, not a day.
    assert time.monotonic() - killed_at < 15
    wait_until(lambda: results_by_key().get("later") == ["SUCCESSFUL"], message="new work")
    assert results_by_key()["hung-no-retry"] == ["LOST"]
    lost = JobResult.objects.lost().first()
    assert "stopped sending heartbeats" in lost.error
    assert Worker.objects.count() == 1
    assert table_counts()["jobs"] == 0
    assert_each_job_in_one_table()


def test_a_busy_job_never_makes_its_worker_look_dead(worker):
    from app.jobs import CpuHogJob

    from plain.worker.models import JobResult

    CpuHogJob("hog", 6).run_in_worker()  # twice the heartbeat timeout
    worker(processes=1)
    worker(processes=1, env={"PLAIN_WORKER_QUEUE": "other"})  # a watcher that would rescue it

    result = wait_until(lambda: JobResult.objects.first(), timeout=30, message="the hog to finish")
    assert result.status == "SUCCESSFUL"
    assert JobResult.objects.count() == 1


def test_a_late_result_never_overwrites_a_rescue(worker):
    import os
    import signal

    from app.jobs import SleepJob
    from app.records.models import Execution

    from plain.worker.models import JobResult

    SleepJob("slow", 2).run_in_worker()
    frozen = worker(processes=1)
    wait_until(lambda: Execution.objects.filter(key="slow:start").exists(), message="the job to start")
    os.kill(frozen.pid, signal.SIGSTOP)  # the main process freezes; its job process runs on
    try:
        worker(processes=1, env={"PLAIN_WORKER_QUEUE": "other"})
        wait_until(lambda: JobResult.objects.exists(), timeout=20, message="the rescue")
        wait_until(lambda: Execution.objects.filter(key="slow").exists(), timeout=20, message="the job to end")
    finally:
        os.kill(frozen.pid, signal.SIGCONT)
    wait_until(lambda: "presumed dead" in frozen.output(), timeout=10, message="the frozen worker to notice")
    time.sleep(1)  # it has tried to record its late result by now
    assert list(JobResult.objects.values_list("status", flat=True)) == ["LOST"]
    assert frozen.alive()


def test_jobs_running_past_lost_after_are_recorded_lost(worker):
    from app.jobs import HangOnceJob

    HangOnceJob("hung", seconds=60, retries=1).run_in_worker()
    worker(processes=1, env={"PLAIN_WORKER_JOBS_LOST_AFTER": "2"})

    wait_until(lambda: results_by_key().get("hung") == ["LOST", "SUCCESSFUL"], timeout=30, message="expiry + retry")
    from plain.worker.models import JobResult

    assert "still running after 2 seconds" in JobResult.objects.lost().get().error
