"""plain.worker.testing: assertions, drain(), perform() and eager mode.

These tests use only the `db` and `settings` fixtures and import nothing from
conftest.py, so they run twice: in this suite with its committed-data `db`,
and again (tests/test_testing_rolledback.py) in a session started with
--noconftest, where plain.models' own rolled-back `db` fixture is in force.
"""

from __future__ import annotations

import datetime
import os
import socket
import sys
from typing import ClassVar

import pytest
from plain.models import db_connection, transaction
from plain.utils import timezone

from plain.worker.exceptions import JobNotRegistered
from plain.worker.models import Job as JobRow
from plain.worker.models import JobRequest, JobResult
from plain.worker.testing import (
    DrainLimitReached,
    JobFailed,
    assert_enqueued,
    assert_not_enqueued,
    drain,
    enqueued,
    perform,
)
from plain.worker.testing.assertions import LISTED


def executions(key: str | None = None) -> list[str]:
    from app.records.models import Execution

    rows = Execution.objects.order_by("id")
    return [row.key for row in (rows.filter(key=key) if key else rows)]


def assert_each_job_in_one_table() -> None:
    pending = set(JobRequest.objects.values_list("uuid", flat=True))
    running = set(JobRow.objects.values_list("job_request_uuid", flat=True))
    finished = set(JobResult.objects.values_list("job_request_uuid", flat=True))
    assert not (pending & running or pending & finished or running & finished)


def failure(call, *args, **kwargs) -> str:
    with pytest.raises(AssertionError) as info:
        call(*args, **kwargs)
    return str(info.value)


# assert_enqueued / assert_not_enqueued / enqueued


def test_assert_enqueued_matches_each_filter(db):
    from app.jobs import FailingJob, RecordJob
    from app.users.models import User

    user = User.objects.create(email="ada@example.com")
    later = timezone.now() + datetime.timedelta(hours=2)
    RecordJob(user).run_in_worker(queue="emails", priority=7, delay=90, unique_key="welcome-ada")
    FailingJob("b", retries=3).run_in_worker(delay=later)

    [request] = assert_enqueued(RecordJob(user), queue="emails", priority=7, delay=90, unique_key="welcome-ada")
    assert request.job_class == "app.jobs.RecordJob"
    assert assert_enqueued(RecordJob) == [request]
    assert assert_enqueued("app.jobs.RecordJob", args=[user], kwargs={}) == [request]
    assert assert_enqueued(delay=datetime.timedelta(seconds=90)) == [request]
    assert assert_enqueued(delay=(60, 120)) == [request]
    assert assert_enqueued(delay=(None, 120)) == [request]
    assert assert_enqueued(FailingJob, kwargs={"retries": 3}, start_at=later, retry_attempt=0)
    assert assert_enqueued(start_at=(later - datetime.timedelta(seconds=1), None), count=1)
    assert len(assert_enqueued(count=2)) == 2
    assert enqueued(queue="emails") == [request]
    assert enqueued(queue="nope") == []
    assert_not_enqueued(RecordJob, queue="default")
    assert_not_enqueued(FailingJob("b"))  # its kwargs differ


def test_assert_enqueued_failure_lists_what_was_enqueued(db):
    from app.jobs import PriorityJob, RecordJob

    enqueue_line = sys._getframe().f_lineno + 1
    RecordJob("hello").run_in_worker(delay=60)
    PriorityJob("x", priority=3).run_in_worker(queue="slow", priority=3, unique_key="k")

    message = failure(assert_enqueued, RecordJob("hello"), queue="emails", delay=(120, None))
    lines = message.splitlines()
    assert lines[0] == (
        "Expected a pending job matching job_class=app.jobs.RecordJob args=['hello'] kwargs={} "
        "queue='emails' delay at least 120s, found none."
    )
    assert lines[1] == "Pending jobs (2):"
    assert lines[2].startswith(
        "  - app.jobs.RecordJob args=['hello'] kwargs={} queue='default' priority=0 delay=60s start_at="
    )
    assert lines[2].endswith(f"unique_key='' retry_attempt=0 (enqueued at test_testing_helpers.py:{enqueue_line})")
    assert lines[3] == "      differs: queue='default', delay=60s"
    assert lines[4].startswith(
        "  - app.jobs.PriorityJob args=['x'] kwargs={'priority': 3} queue='slow' priority=3 delay=0s"
    )
    assert "unique_key='k'" in lines[4]
    assert lines[5] == (
        "      differs: job_class=app.jobs.PriorityJob, args=['x'], kwargs={'priority': 3}, queue='slow', delay=0s"
    )
    assert len(lines) == 6


def test_assert_enqueued_count_failure_marks_the_matches(db):
    from app.jobs import RecordJob

    RecordJob("a").run_in_worker()
    RecordJob("b").run_in_worker()

    message = failure(assert_enqueued, RecordJob, count=1)
    assert message.startswith("Expected 1 pending job matching job_class=app.jobs.RecordJob, found 2.\n")
    assert message.count("      matches") == 2
    assert failure(assert_enqueued, RecordJob, count=3).startswith("Expected 3 pending jobs matching")


def test_assert_enqueued_with_nothing_pending_points_at_the_results(db):
    from app.jobs import RecordJob

    assert failure(assert_enqueued, RecordJob) == (
        "Expected a pending job matching job_class=app.jobs.RecordJob, found none.\nNo jobs are pending."
    )
    RecordJob("ran").run_in_worker()
    drain()
    assert failure(assert_enqueued) == (
        "Expected a pending job matching anything, found none.\n"
        "No jobs are pending. (0 running in Job, 1 finished in JobResult.)"
    )


def test_assert_not_enqueued_failure_lists_the_matches(db):
    from app.jobs import NoopJob, RecordJob

    RecordJob("a").run_in_worker(delay=datetime.timedelta(minutes=5))
    NoopJob().run_in_worker()
    assert_not_enqueued(RecordJob, delay=(0, 299))

    message = failure(assert_not_enqueued, RecordJob, delay=300)
    assert message.startswith("Expected no pending job matching job_class=app.jobs.RecordJob delay=300s, found 1.\n")
    assert "      matches" in message
    assert "differs: job_class=app.jobs.NoopJob, delay=0s" in message
    assert failure(assert_not_enqueued).startswith("Expected no pending job matching anything, found 2.")


def test_long_listings_are_cut(db):
    from app.jobs import NoopJob

    NoopJob.run_in_worker_bulk([NoopJob() for _ in range(LISTED + 5)])
    message = failure(assert_enqueued, queue="other")
    assert message.count("  - app.jobs.NoopJob") == LISTED
    assert message.endswith("  ... and 5 more")


def test_bad_filters_fail_like_run_in_worker(db):
    from app.jobs import RecordJob

    with pytest.raises(TypeError, match=r"args\[0\]"):
        assert_enqueued(RecordJob, args=[object()])
    with pytest.raises(TypeError, match="not both"):
        assert_enqueued(RecordJob("a"), args=["a"])
    with pytest.raises(JobNotRegistered):
        assert_enqueued("app.jobs.NoSuchJob")
    with pytest.raises(TypeError, match="Job class"):
        assert_enqueued(42)
    with pytest.raises(TypeError, match="use start_at="):
        assert_enqueued(delay=timezone.now())


# drain()


def test_drain_runs_in_claim_order_and_records_like_a_worker(db):
    from app.jobs import PriorityJob

    for key, priority in [("low", -1), ("first", 0), ("high", 5), ("second", 0), ("top", 9)]:
        PriorityJob(key, priority).run_in_worker(queue="other" if key == "second" else "default")

    before = timezone.now()
    results = drain()

    assert executions() == ["top", "high", "first", "second", "low"]
    assert [r.status for r in results] == ["SUCCESSFUL"] * 5
    assert [r.parameters["args"][0] for r in results] == ["top", "high", "first", "second", "low"]
    assert {(r.worker_pid, r.worker_hostname) for r in results} == {(os.getpid(), socket.gethostname())}
    assert all(before <= r.started_at <= r.ended_at <= timezone.now() for r in results)
    assert list(JobResult.objects.order_by("id")) == results
    assert not JobRequest.objects.exists() and not JobRow.objects.exists()
    assert drain() == []


def test_drain_records_errors_and_runs_due_retries(db):
    from app.jobs import FailingJob, FlakyJob

    FailingJob("fail", retries=2).run_in_worker()
    FlakyJob("flaky", failures=2).run_in_worker()

    results = drain()

    assert [(r.job_class, r.status, r.retry_attempt) for r in results] == [
        ("app.jobs.FailingJob", "ERRORED", 0),
        ("app.jobs.FlakyJob", "ERRORED", 0),
        ("app.jobs.FailingJob", "ERRORED", 1),
        ("app.jobs.FlakyJob", "ERRORED", 1),
        ("app.jobs.FailingJob", "ERRORED", 2),
        ("app.jobs.FlakyJob", "SUCCESSFUL", 2),
    ]
    failing = [r for r in results if r.job_class == "app.jobs.FailingJob"]
    assert failing[0].error.startswith("Traceback (most recent call last):\n")
    assert failing[0].error.endswith("ValueError: deliberate failure for fail\n")
    assert "plain/worker/middleware.py" in failing[0].error  # it went through the middleware chain
    assert [r.retry_job_request_uuid for r in failing[:2]] == [failing[1].job_request_uuid, failing[2].job_request_uuid]
    assert failing[2].retry_job_request_uuid is None
    assert JobResult.objects.retried().count() == 4
    assert_each_job_in_one_table()


def test_delayed_jobs_and_retries_wait_for_now(db):
    from app.jobs import FailingJob, RecordJob

    start = timezone.now()
    RecordJob("in-an-hour").run_in_worker(delay=datetime.timedelta(hours=1))
    FailingJob("slow-retry", retries=1, delay=600).run_in_worker()

    [first] = drain()
    assert (first.job_class, first.status) == ("app.jobs.FailingJob", "ERRORED")
    assert_enqueued(FailingJob, retry_attempt=1, delay=600)
    assert drain(now=start + datetime.timedelta(minutes=9)) == []

    results = drain(now=start + datetime.timedelta(hours=2))
    assert [(r.job_class, r.retry_attempt) for r in results] == [
        ("app.jobs.FailingJob", 1),  # due after 10 minutes, before the hour
        ("app.jobs.RecordJob", 0),
    ]
    assert_not_enqueued()
    with pytest.raises(ValueError, match="timezone-aware"):
        drain(now=datetime.datetime(2030, 1, 1))


def test_drain_runs_jobs_enqueued_by_jobs(db):
    from app.jobs import ChainJob

    ChainJob("chain", 3).run_in_worker()
    results = drain()
    assert len(results) == 4
    assert executions("chain") == ["chain"] * 4
    assert_not_enqueued()


def test_a_job_that_enqueues_itself_forever_fails_the_drain(db):
    from app.jobs import ChainJob

    ChainJob("forever", -1).run_in_worker()
    with pytest.raises(DrainLimitReached) as info:
        drain(max_jobs=5)

    assert str(info.value) == (
        "drain() ran max_jobs=5 jobs and more are still due, so a job may be enqueuing itself "
        "or failing forever (raise max_jobs if that many is expected).\n"
        "Ran: app.jobs.ChainJob x5.\n"
        "Next due, left pending: app.jobs.ChainJob (retry_attempt=0)."
    )
    assert len(executions("forever")) == 5
    assert JobResult.objects.count() == 5
    assert_enqueued(ChainJob("forever", -6), count=1)  # handed back unchanged, not lost
    assert not JobRow.objects.exists()
    assert_each_job_in_one_table()


def test_drain_limits_queues(db):
    from app.jobs import RecordJob

    RecordJob("default").run_in_worker()
    RecordJob("emails").run_in_worker(queue="emails")
    RecordJob("other").run_in_worker(queue="other")

    assert [r.queue for r in drain(queues="emails")] == ["emails"]
    assert [r.queue for r in drain(queues=["other", "nope"])] == ["other"]
    assert_enqueued(RecordJob("default"), count=1)
    assert_not_enqueued(queue="emails")


def test_drain_raise_errors_records_before_raising(db):
    from app.jobs import FailingJob, RecordJob

    FailingJob("boom", retries=1).run_in_worker(priority=1)
    RecordJob("after").run_in_worker()

    with pytest.raises(JobFailed) as info:
        drain(raise_errors=True)

    assert info.value.job_class == "app.jobs.FailingJob"
    assert info.value.status == "ERRORED"
    assert str(info.value).startswith("app.jobs.FailingJob finished ERRORED:\nTraceback")
    assert str(info.value).endswith("ValueError: deliberate failure for boom\n")
    assert JobResult.objects.get().error == info.value.error
    assert_enqueued(FailingJob, retry_attempt=1)
    assert_enqueued(RecordJob("after"))


def test_bad_rows_are_recorded_as_a_worker_records_them(db):
    from app.jobs import EchoJob
    from app.users.models import User

    gone = User.objects.create(email="gone@example.com")
    gone_id = gone.id
    EchoJob("echo", gone).run_in_worker()
    gone.delete()
    JobRequest(job_class="app.jobs.DeletedJob", parameters={"args": [], "kwargs": {}}).enqueue()

    results = {r.job_class: r for r in drain()}

    assert results["app.jobs.EchoJob"].status == "ERRORED"
    assert results["app.jobs.EchoJob"].error.endswith(
        f"plain.worker.exceptions.ParameterNotFound: The model instance __plain://model/users/user/{gone_id} "
        "passed to this job no longer exists (it was deleted after the job was enqueued).\n"
    )
    assert results["app.jobs.DeletedJob"].status == "ERRORED"
    assert (
        "JobNotRegistered: Job class 'app.jobs.DeletedJob' is not registered." in results["app.jobs.DeletedJob"].error
    )


def test_drain_inside_a_transaction_survives_a_database_error(db):
    from app.jobs import BadSQLJob, RecordJob
    from app.users.models import User

    with transaction.atomic():
        user = User.objects.create(email="kept@example.com")
        BadSQLJob().run_in_worker(priority=1)
        RecordJob("after").run_in_worker()

        results = drain()

        assert [r.status for r in results] == ["ERRORED", "SUCCESSFUL"]
        assert "no_such_table_for_bad_sql_job" in results[0].error
        assert User.objects.filter(id=user.id).exists()  # the caller's transaction is intact
        assert db_connection.in_atomic_block and not db_connection.needs_rollback
    assert executions() == ["after"]


class CountingMiddleware:
    """Counts the jobs it wraps (set by the tests through WORKER_MIDDLEWARE)."""

    seen: ClassVar[list[str]] = []

    def __init__(self, run_job):
        self.run_job = run_job

    def __call__(self, job):
        CountingMiddleware.seen.append(f"{job.job_class}@{job.queue}")
        self.run_job(job)


def test_drain_and_perform_use_the_middleware_setting(db, settings):
    from app.jobs import NoopJob

    CountingMiddleware.seen = []
    settings.WORKER_MIDDLEWARE = [f"{__name__}.CountingMiddleware"]
    NoopJob().run_in_worker()
    drain()
    perform(NoopJob(), queue="emails")
    assert CountingMiddleware.seen == ["app.jobs.NoopJob@default", "app.jobs.NoopJob@emails"]


# perform()


def test_perform_runs_the_job_rebuilt_from_its_stored_arguments(db):
    from app.jobs import EchoJob
    from app.records.models import Execution
    from app.users.models import User

    user = User.objects.create(email="ada@example.com")
    day = datetime.date(2024, 2, 29)
    moment = datetime.datetime(2024, 2, 29, 12, 30, tzinfo=datetime.UTC)

    outcome = perform(EchoJob("echo", user, (1, 2), day, when=moment, nested={"n": [None, 1.5]}))

    assert outcome.status == "SUCCESSFUL" and outcome.error == ""
    assert Execution.objects.get(key="echo").value == {
        "args": [
            {"type": "User", "repr": "<User: ada@example.com>"},
            {"type": "list", "repr": "[1, 2]"},  # a tuple comes back as a list, as in a worker
            {"type": "date", "repr": "datetime.date(2024, 2, 29)"},
        ],
        "kwargs": {
            "when": {"type": "datetime", "repr": repr(moment)},
            "nested": {"type": "dict", "repr": "{'n': [None, 1.5]}"},
        },
    }
    assert not JobRequest.objects.exists() and not JobRow.objects.exists() and not JobResult.objects.exists()


def test_perform_refuses_arguments_a_worker_could_not_get(db):
    from app.jobs import EchoJob
    from app.users.models import User

    with pytest.raises(TypeError, match=r"Job argument kwargs\['when'\] is a builtins.object"):
        perform(EchoJob("echo", when=object()))
    with pytest.raises(TypeError, match=r"args\[1\] is an unsaved User"):
        perform(EchoJob("echo", User(email="new@example.com")))
    with pytest.raises(TypeError, match="string keys"):
        perform(EchoJob("echo", {1: "one"}))
    assert executions() == []


def test_perform_raises_the_recorded_error(db):
    from app.jobs import FailingJob

    with pytest.raises(JobFailed) as info:
        perform(FailingJob("boom", retries=3))
    assert info.value.error.endswith("ValueError: deliberate failure for boom\n")
    assert "plain/worker/execution.py" in info.value.error

    outcome = perform(FailingJob("quiet"), raise_errors=False)
    assert outcome.status == "ERRORED"
    assert outcome.error.endswith("ValueError: deliberate failure for quiet\n")
    assert not JobResult.objects.exists() and not JobRequest.objects.exists()


# eager mode


def test_eager_mode_runs_jobs_when_enqueued(db, settings):
    from app.jobs import ChainJob, RecordJob

    settings.WORKER_EAGER = True
    request = RecordJob("now").run_in_worker()

    assert executions() == ["now"]
    assert JobResult.objects.get(job_request_uuid=request.uuid).status == "SUCCESSFUL"

    ChainJob("chain", 2).run_in_worker()  # jobs enqueued by a job run after it, not inside it
    assert [
        r.parameters["args"][1] for r in JobResult.objects.filter(job_class="app.jobs.ChainJob").order_by("id")
    ] == [2, 1, 0]

    RecordJob.run_in_worker_bulk([RecordJob("bulk-1"), RecordJob("bulk-2")])
    assert executions()[-2:] == ["bulk-1", "bulk-2"]
    assert_not_enqueued()


def test_eager_mode_leaves_delayed_work_pending(db, settings):
    from app.jobs import FailingJob, RecordJob

    settings.WORKER_EAGER = True
    RecordJob("later").run_in_worker(delay=60)
    FailingJob("fast", retries=2).run_in_worker()  # no retry delay: all attempts run now
    FailingJob("slow", retries=1, delay=30).run_in_worker()  # the retry waits

    assert executions() == ["fast", "fast", "fast", "slow"]
    assert JobResult.objects.errored().count() == 4
    assert_enqueued(RecordJob("later"), delay=60)
    assert_enqueued(FailingJob, retry_attempt=1, delay=30)
    assert [r.parameters["args"][0] for r in drain(now=timezone.now() + datetime.timedelta(minutes=2))] == [
        "slow",
        "later",
    ]


def test_eager_mode_finishes_unique_jobs_before_returning(db, settings):
    from app.jobs import UniqueJob

    settings.WORKER_EAGER = True
    first = UniqueJob("once").run_in_worker()
    second = UniqueJob("once").run_in_worker()  # the first is no longer in progress

    assert first.uuid != second.uuid
    assert executions("once") == ["once", "once"]


def test_eager_mode_runs_inside_the_callers_transaction(db, settings):
    from app.jobs import EchoJob
    from app.users.models import User

    settings.WORKER_EAGER = True
    with transaction.atomic():
        user = User.objects.create(email="uncommitted@example.com")
        EchoJob("sees-it", user).run_in_worker()  # a real worker could not load this user yet
        assert JobResult.objects.get().status == "SUCCESSFUL"
        assert not db_connection.needs_rollback


def test_eager_mode_is_off_by_default(db):
    from app.jobs import RecordJob

    RecordJob("queued").run_in_worker()
    assert executions() == []
    assert_enqueued(RecordJob("queued"))


def test_enqueue_scheduled_enqueues_each_occurrence_of_the_window_once(db, settings):
    import datetime

    from plain.worker.models import JobRequest
    from plain.worker.testing import enqueue_scheduled

    settings.WORKER_JOBS_SCHEDULE = [("app.jobs.NoopJob", "30 9 * * *")]
    start = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)

    first = enqueue_scheduled(since=start, until=start + datetime.timedelta(days=2), queues=["default"])
    again = enqueue_scheduled(since=start, until=start + datetime.timedelta(days=2), queues=["default"])

    assert len(first) == 2 and again == []
    assert JobRequest.objects.filter(job_class="app.jobs.NoopJob").count() == 2
    assert enqueue_scheduled(since=start, until=start + datetime.timedelta(days=2), queues=["other"]) == []
