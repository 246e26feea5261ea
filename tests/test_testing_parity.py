"""drain() records what a real `plain worker run` records for the same jobs.

The same set of jobs (success, failure with a retry, a flaky job, a bad
return value, a deleted model argument, an unregistered class) runs once
through a worker subprocess and once through drain(); the results must agree
on everything but the clock, the pid and the row ids, error text included.
"""

from __future__ import annotations

import re
import socket

from conftest import assert_each_job_in_one_table, wait_until

from plain.worker.models import JobRequest, JobResult
from plain.worker.testing import drain

#: Results the scenario produces: FailingJob x2 (a retry), FlakyJob x2, and one each for the rest.
RESULTS_PER_RUN = 8


def enqueue_scenario(tag: str) -> None:
    from app.jobs import BadReturnJob, EchoJob, FailingJob, FlakyJob, RecordJob
    from app.users.models import User

    gone = User.objects.create(email=f"{tag}@example.com")
    FailingJob(f"{tag}-fail", retries=1).run_in_worker()
    FlakyJob(f"{tag}-flaky", failures=1).run_in_worker()
    RecordJob(f"{tag}-ok").run_in_worker(priority=3)
    BadReturnJob(f"{tag}-lambda").run_in_worker(queue="default")
    EchoJob(f"{tag}-gone", gone).run_in_worker()
    gone.delete()
    JobRequest(job_class="app.jobs.DeletedJob", parameters={"args": [f"{tag}-deleted"], "kwargs": {}}).enqueue()


def snapshot(tag: str) -> list[tuple]:
    """What a test could assert on the results of one run, minus clock, pid and ids."""
    rows = []
    for result in JobResult.objects.all():
        key = result.parameters["args"][0]
        if not key.startswith(f"{tag}-"):
            continue
        rows.append(
            (
                key.removeprefix(f"{tag}-"),
                result.job_class,
                result.status,
                result.retry_attempt,
                result.retries,
                result.queue,
                result.priority,
                re.sub(r"model/users/user/\d+", "model/users/user/<id>", result.error.replace(f"{tag}-", "<tag>-")),
                result.retry_job_request_uuid is not None,
                result.worker_hostname,
                result.worker_pid is not None and result.worker_uuid is not None,
                result.started_at <= result.ended_at,
            )
        )
    return sorted(rows)


def test_drain_records_what_a_worker_records(worker):
    enqueue_scenario("worker")
    process = worker()
    wait_until(lambda: JobResult.objects.count() == RESULTS_PER_RUN, message="the worker to run the scenario")
    assert process.stop() == 0
    by_worker = snapshot("worker")

    enqueue_scenario("drain")
    drain()
    by_drain = snapshot("drain")

    assert len(by_worker) == RESULTS_PER_RUN
    assert {row[2] for row in by_worker} == {"SUCCESSFUL", "ERRORED"}
    assert all(row[9] == socket.gethostname() for row in by_worker)
    assert by_drain == by_worker
    assert not JobRequest.objects.exists()
    assert_each_job_in_one_table()
