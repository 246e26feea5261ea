"""WORKER_MIDDLEWARE: the default app-logger context, and custom middleware around a job."""

from __future__ import annotations

import json

import pytest
from conftest import wait_until


def middleware_env(*paths: str) -> dict[str, str]:
    return {"PLAIN_WORKER_MIDDLEWARE": json.dumps(list(paths))}


def test_the_app_logger_carries_the_job_ids_while_it_runs(worker):
    from app.jobs import LoggingJob
    from app.records.models import Execution

    from plain.worker.models import JobResult

    request = LoggingJob("logged").run_in_worker()
    process = worker()
    result = wait_until(lambda: JobResult.objects.filter(job_request_uuid=request.uuid).first())
    assert result.status == "SUCCESSFUL", result.error
    assert process.stop() == 0

    seen = Execution.objects.get(key="logged").value
    assert seen == {
        "job_uuid": str(result.job_uuid),
        "job_request_uuid": str(request.uuid),
        "job_class": "app.jobs.LoggingJob",
    }
    [line] = [line for line in process.log_path.read_text().splitlines() if "logging job ran" in line]
    assert f"job_uuid={result.job_uuid}" in line
    assert f"job_request_uuid={request.uuid}" in line
    assert 'job_class="app.jobs.LoggingJob"' in line


def test_app_logger_context_is_restored_after_the_job_even_when_it_fails():
    from plain.logs import app_logger

    from plain.worker.middleware import AppLoggerMiddleware, RunningJob

    seen = {}

    def failing_run(running: RunningJob) -> None:
        seen.update(app_logger.kv.context)
        raise RuntimeError("job failed")

    running = RunningJob(
        job=None,
        job_class="app.jobs.Anything",
        job_uuid="j-1",
        job_request_uuid="r-1",
        queue="default",
        priority=0,
        retries=0,
        retry_attempt=0,
        unique_key="",
    )
    app_logger.kv.context.clear()
    app_logger.kv.context["request_id"] = "outside"
    try:
        with pytest.raises(RuntimeError):
            AppLoggerMiddleware(failing_run)(running)
        assert seen == {
            "request_id": "outside",
            "job_uuid": "j-1",
            "job_request_uuid": "r-1",
            "job_class": "app.jobs.Anything",
        }
        assert app_logger.kv.context == {"request_id": "outside"}
    finally:
        app_logger.kv.context.clear()


def test_custom_middleware_wraps_each_job_in_listed_order(worker):
    from app.jobs import RecordJob
    from app.records.models import Execution

    from plain.worker.models import JobResult

    request = RecordJob("wrapped").run_in_worker(queue="default")
    process = worker(
        env=middleware_env(
            "app.middleware.OuterMiddleware",
            "app.middleware.InnerMiddleware",
            "plain.worker.middleware.AppLoggerMiddleware",
        )
    )
    result = wait_until(lambda: JobResult.objects.filter(job_request_uuid=request.uuid).first())
    assert process.stop() == 0
    assert result.status == "SUCCESSFUL", result.error

    keys = list(Execution.objects.filter(key__startswith="wrapped").order_by("id").values_list("key", flat=True))
    assert keys == [
        "wrapped:outer:before",
        "wrapped:inner:before",
        "wrapped",
        "wrapped:inner:after",
        "wrapped:outer:after",
    ]
    notes = Execution.objects.filter(key__startswith="wrapped:")
    assert {tuple(sorted(note.value.items())) for note in notes} == {
        tuple(
            sorted(
                {
                    "job_uuid": str(result.job_uuid),
                    "job_request_uuid": str(request.uuid),
                    "queue": "default",
                    "retry_attempt": 0,
                }.items()
            )
        )
    }
    assert len({note.pid for note in Execution.objects.filter(key__startswith="wrapped")}) == 1


def test_middleware_that_raises_fails_the_job_and_sees_the_retry(worker):
    from app.jobs import RecordJob
    from app.records.models import Execution

    from plain.worker.models import JobResult

    allowed = RecordJob("allowed").run_in_worker()
    forbidden = RecordJob("forbidden-1").run_in_worker(retries=1)
    process = worker(env=middleware_env("app.middleware.OuterMiddleware", "app.middleware.GuardMiddleware"))
    wait_until(lambda: JobResult.objects.count() == 3, message="one success and two refused attempts")
    assert process.stop() == 0

    assert JobResult.objects.get(job_request_uuid=allowed.uuid).status == "SUCCESSFUL"
    refused = list(
        JobResult.objects.filter(job_class="app.jobs.RecordJob")
        .exclude(job_request_uuid=allowed.uuid)
        .order_by("retry_attempt")
    )
    assert [(r.status, r.retry_attempt) for r in refused] == [("ERRORED", 0), ("ERRORED", 1)]
    assert refused[0].job_request_uuid == forbidden.uuid
    assert "PermissionError: forbidden-1 may not run here" in refused[0].error
    assert not Execution.objects.filter(key="forbidden-1").exists(), "run() never ran"
    outer_after = Execution.objects.filter(key="forbidden-1:outer:after").order_by("id")
    assert [note.value["retry_attempt"] for note in outer_after] == [0, 1]
