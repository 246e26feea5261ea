"""Job arguments: the stored format, refusals at enqueue, and the trip through a real worker."""

from __future__ import annotations

import datetime

import pytest
from conftest import wait_until

from plain.worker import parameters


def test_stored_format_matches_the_published_one(db):
    from app.users.models import User

    user = User.objects.create(email="a@example.com")
    encoded = parameters.encode(
        (user, datetime.date(2024, 2, 29)),
        {"when": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC), "n": [1, 2.5, None, True, {"x": "y"}]},
    )
    assert encoded == {
        "args": [f"__plain://model/users/user/{user.id}", "__plain://date/2024-02-29"],
        "kwargs": {
            "when": "__plain://datetime/2024-01-02T03:04:05+00:00",
            "n": [1, 2.5, None, True, {"x": "y"}],
        },
    }


def test_decode_reads_the_legacy_gid_format(db):
    from app.users.models import User

    user = User.objects.create(email="legacy@example.com")
    args, kwargs = parameters.decode({"args": [f"gid://users/user/{user.id}"], "kwargs": {}})
    assert args == [user]


@pytest.mark.parametrize(
    "args, kwargs, where",
    [
        ((object(),), {}, "args[0]"),
        ((), {"when": {1, 2}}, "kwargs['when']"),
        ((), {"nested": {"a": [1, b"bytes"]}}, "kwargs['nested']['a'][1]"),
        ((), {"amount": __import__("decimal").Decimal("1.5")}, "kwargs['amount']"),
        ((float("nan"),), {}, "args[0]"),
        ((), {"d": {1: "int key"}}, "kwargs['d']"),
        (("__plain://model/users/user/1",), {}, "args[0]"),
    ],
)
def test_unstorable_arguments_raise_type_error_naming_them(args, kwargs, where):
    with pytest.raises(TypeError) as error:
        parameters.encode(args, kwargs)
    assert f"Job argument {where} " in str(error.value)


def test_unsaved_model_instance_is_refused():
    from app.users.models import User

    with pytest.raises(TypeError, match=r"args\[0\] is an unsaved User"):
        parameters.encode((User(email="x@example.com"),), {})


def test_every_parameter_type_round_trips_through_a_worker(worker):
    from app.jobs import EchoJob
    from app.records.models import Execution
    from app.users.models import User

    user = User.objects.create(email="echo@example.com")
    moment = datetime.datetime(2025, 6, 30, 23, 59, 59, 123456, tzinfo=datetime.UTC)
    EchoJob(
        "echo",
        user,
        datetime.date(2000, 1, 1),
        moment,
        [1, "two", None],
        # jsonb (PostgreSQL) does not keep dict key order; these keys are already in its order.
        nested={"dates": {"d": datetime.date(2024, 2, 29)}, "users": [user]},
        flag=False,
        number=3.25,
        text="unicode ✓",
    ).run_in_worker()
    worker()
    execution = wait_until(lambda: Execution.objects.filter(key="echo").first(), message="EchoJob to run")
    assert execution.value == {
        "args": [
            {"type": "User", "repr": "<User: echo@example.com>"},
            {"type": "date", "repr": "datetime.date(2000, 1, 1)"},
            {"type": "datetime", "repr": repr(moment)},
            {"type": "list", "repr": "[1, 'two', None]"},
        ],
        "kwargs": {
            "nested": {
                "type": "dict",
                "repr": "{'dates': {'d': datetime.date(2024, 2, 29)}, 'users': [<User: echo@example.com>]}",
            },
            "flag": {"type": "bool", "repr": "False"},
            "number": {"type": "float", "repr": "3.25"},
            "text": {"type": "str", "repr": "'unicode ✓'"},
        },
    }


def test_deleted_model_argument_ends_errored_with_the_reason(worker):
    from app.jobs import EchoJob, RecordJob
    from app.records.models import Execution
    from app.users.models import User

    from plain.worker.models import JobResult

    user = User.objects.create(email="gone@example.com")
    user_id = user.id
    EchoJob("never", user).run_in_worker()
    user.delete()
    RecordJob("after").run_in_worker(priority=-1)
    worker(processes=1)

    wait_until(lambda: JobResult.objects.count() == 2, message="both jobs to finish")
    result = JobResult.objects.get(job_class="app.jobs.EchoJob")
    assert result.status == "ERRORED"
    assert f"ParameterNotFound: The model instance __plain://model/users/user/{user_id}" in result.error
    assert "no longer exists" in result.error
    assert not Execution.objects.filter(key="never").exists()
    assert JobResult.objects.get(job_class="app.jobs.RecordJob").status == "SUCCESSFUL"
