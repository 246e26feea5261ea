"""run_in_worker() and run_in_worker_bulk(): what lands in JobRequest."""

from __future__ import annotations

import datetime
import inspect
import multiprocessing
import sys

import pytest
from conftest import TESTS_DIR
from plain.utils import timezone


def test_run_in_worker_stores_a_request_with_defaults(db):
    from app.jobs import RecordJob

    from plain.worker.models import JobRequest

    before = timezone.now()
    request = RecordJob("k").run_in_worker()

    assert isinstance(request, JobRequest)
    stored = JobRequest.objects.get(id=request.id)
    assert stored.job_class == "app.jobs.RecordJob"
    assert stored.parameters == {"args": ["k"], "kwargs": {}}
    assert (stored.queue, stored.priority, stored.retries, stored.retry_attempt, stored.unique_key) == (
        "default",
        0,
        0,
        0,
        "",
    )
    assert before <= stored.start_at <= timezone.now()
    lines, first = inspect.getsourcelines(test_run_in_worker_stores_a_request_with_defaults)
    enqueue_line = first + next(i for i, line in enumerate(lines) if ".run_in_worker()" in line)
    assert stored.source == f"{__file__}:{enqueue_line}"


def test_options_override_job_methods(db):
    from app.jobs import FailingJob

    request = FailingJob("k", retries=1).run_in_worker(
        queue="slow", priority=10, retries=3, unique_key="key-1", delay=60
    )
    assert (request.queue, request.priority, request.retries, request.unique_key) == ("slow", 10, 3, "key-1")
    assert request.start_at - request.created_at == datetime.timedelta(seconds=60)


def test_job_methods_give_the_defaults(db):
    from app.jobs import FailingJob, PriorityJob, UniqueJob

    assert FailingJob("k", retries=4).run_in_worker().retries == 4
    assert PriorityJob("k", priority=7).run_in_worker().priority == 7
    assert UniqueJob("u").run_in_worker().unique_key == "unique-u"


@pytest.mark.parametrize(
    "delay, expected",
    [
        (30, datetime.timedelta(seconds=30)),
        (datetime.timedelta(minutes=2), datetime.timedelta(minutes=2)),
    ],
)
def test_relative_delays(db, delay, expected):
    from app.jobs import RecordJob

    request = RecordJob("k").run_in_worker(delay=delay)
    assert request.start_at - request.created_at == expected


def test_absolute_delay_is_the_start_time(db):
    from app.jobs import RecordJob

    when = timezone.now() + datetime.timedelta(hours=3)
    assert RecordJob("k").run_in_worker(delay=when).start_at == when


@pytest.mark.parametrize(
    "delay, error, message",
    [
        ("60", TypeError, "delay must be seconds (int), a timedelta or an aware datetime, not str '60'"),
        (True, TypeError, "not bool True"),
        (datetime.datetime(2030, 1, 1), ValueError, "must be timezone-aware"),
    ],
)
def test_invalid_delay_is_refused_and_nothing_is_stored(db, delay, error, message):
    from app.jobs import RecordJob

    from plain.worker.models import JobRequest

    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        RecordJob("k").run_in_worker(delay=delay)
    assert JobRequest.objects.count() == 0


@pytest.mark.parametrize(
    "options, message",
    [
        ({"queue": ""}, "queue must be a non-empty string"),
        ({"priority": "high"}, "priority must be an int"),
        ({"retries": -1}, "retries must be at least 0"),
        ({"unique_key": 5}, "unique_key must be a string"),
    ],
)
def test_invalid_options_are_refused(db, options, message):
    from app.jobs import RecordJob

    from plain.worker.models import JobRequest

    with pytest.raises((TypeError, ValueError), match=message):
        RecordJob("k").run_in_worker(**options)
    assert JobRequest.objects.count() == 0


def test_unregistered_job_class_is_refused_at_enqueue(db):
    from plain.worker import Job
    from plain.worker.exceptions import JobNotRegistered
    from plain.worker.models import JobRequest

    class NotDecorated(Job):
        def run(self):
            pass

    with pytest.raises(JobNotRegistered, match="is not registered"):
        NotDecorated().run_in_worker()
    assert JobRequest.objects.count() == 0


def test_unique_key_returns_the_pending_request(db):
    from app.jobs import UniqueJob

    from plain.worker.models import JobRequest

    first = UniqueJob("a").run_in_worker()
    second = UniqueJob("a").run_in_worker()

    assert isinstance(second, list)
    assert [row.uuid for row in second] == [first.uuid]
    assert JobRequest.objects.count() == 1
    # A different key, or another class with the same key, is not a duplicate.
    assert not isinstance(UniqueJob("b").run_in_worker(), list)
    assert JobRequest.objects.count() == 2


def test_unique_key_returns_the_running_job(db):
    from app.jobs import UniqueJob

    from plain.worker.models import Job, JobRequest, WorkerIdentity

    UniqueJob("a").run_in_worker()
    identity = WorkerIdentity(uuid=__import__("uuid").uuid4(), hostname="test", pid=1)
    [running] = JobRequest.claim(queues=["default"], limit=10, worker=identity, now=timezone.now())

    again = UniqueJob("a").run_in_worker()

    assert isinstance(again, list) and len(again) == 1
    assert isinstance(again[0], Job) and again[0].uuid == running.uuid
    assert JobRequest.objects.count() == 0


def _enqueue_unique_in_subprocess(barrier, results):
    import os

    os.chdir(TESTS_DIR)
    import plain.runtime

    plain.runtime.setup()
    from app.jobs import UniqueJob

    barrier.wait()
    outcome = UniqueJob("race").run_in_worker()
    results.put("duplicate" if isinstance(outcome, list) else "created")


def test_racing_enqueues_of_one_unique_key_create_one_request(db):
    from plain.worker.models import JobRequest

    racers = 6
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(racers)
    results = context.Queue()
    processes = [context.Process(target=_enqueue_unique_in_subprocess, args=(barrier, results)) for _ in range(racers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    outcomes = sorted(results.get(timeout=5) for _ in range(racers))

    assert outcomes == ["created"] + ["duplicate"] * (racers - 1)
    assert JobRequest.objects.filter(unique_key="unique-race").count() == 1


def test_bulk_enqueue_inserts_all_in_order(db):
    from app.jobs import PriorityJob, RecordJob

    from plain.worker import Job
    from plain.worker.models import JobRequest

    jobs = [RecordJob(f"bulk-{i}") for i in range(50)] + [PriorityJob("p", priority=3)]
    results = Job.run_in_worker_bulk(jobs, queue="bulk", delay=5)

    assert [r.parameters["args"][0] for r in results] == [f"bulk-{i}" for i in range(50)] + ["p"]
    stored = JobRequest.objects.filter(queue="bulk")
    assert stored.count() == 51
    assert stored.get(job_class="app.jobs.PriorityJob").priority == 3
    assert all(r.start_at - r.created_at == datetime.timedelta(seconds=5) for r in stored)


def test_bulk_enqueue_honours_unique_keys(db):
    from app.jobs import RecordJob, UniqueJob

    from plain.worker import Job
    from plain.worker.models import JobRequest

    existing = UniqueJob("x").run_in_worker()
    results = Job.run_in_worker_bulk([UniqueJob("x"), RecordJob("plain"), UniqueJob("y"), UniqueJob("y")])

    assert isinstance(results[0], list) and results[0][0].uuid == existing.uuid
    assert results[1].id and results[2].id
    assert isinstance(results[3], list) and results[3][0].uuid == results[2].uuid
    assert JobRequest.objects.count() == 3


def test_bulk_enqueue_refuses_bad_arguments_before_inserting_anything(db):
    from app.jobs import EchoJob, RecordJob

    from plain.worker import Job
    from plain.worker.models import JobRequest

    with pytest.raises(TypeError, match=r"args\[1\]"):
        Job.run_in_worker_bulk([RecordJob("ok"), EchoJob("bad", object())])
    assert JobRequest.objects.count() == 0


def test_enqueue_on_an_unmigrated_database_says_to_migrate(tmp_path):
    script = (
        "import plain.runtime; plain.runtime.setup()\nfrom app.jobs import RecordJob\nRecordJob('x').run_in_worker()\n"
    )
    result = _run_python(script, {"DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}"})
    assert result.returncode != 0
    assert "plain.worker's database tables are missing or out of date: run `plain migrate`" in result.stderr


def _run_python(script: str, env: dict[str, str]):
    import os
    import subprocess

    return subprocess.run(
        [sys.executable, "-c", script], cwd=TESTS_DIR, env={**os.environ, **env}, capture_output=True, text=True
    )
