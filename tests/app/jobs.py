"""Jobs the tests enqueue, including deliberately bad ones."""

import os
import time

from plain.worker import Job, register_job
from plain.worker.scheduling import Schedule

from .records.models import Execution


def record(job, key, value=None):
    Execution.objects.create(key=key, job_class=type(job).__name__, pid=os.getpid(), value=value or {})


@register_job
class RecordJob(Job):
    def __init__(self, key):
        self.key = key

    def run(self):
        record(self, self.key)


@register_job
class PriorityJob(Job):
    def __init__(self, key, priority=0):
        self.key = key
        self.priority = priority

    def get_priority(self):
        return self.priority

    def run(self):
        record(self, self.key)


@register_job
class FailingJob(Job):
    """Records every attempt, then raises."""

    def __init__(self, key, retries=0, delay=0):
        self.key = key
        self.retries = retries
        self.delay = delay

    def get_retries(self):
        return self.retries

    def get_retry_delay(self, attempt):
        return self.delay

    def run(self):
        record(self, self.key)
        raise ValueError(f"deliberate failure for {self.key}")


@register_job
class FlakyJob(Job):
    """Fails until it has run ``failures`` times, then succeeds."""

    def __init__(self, key, failures):
        self.key = key
        self.failures = failures

    def get_retries(self):
        return 5

    def run(self):
        attempts = Execution.objects.filter(key=self.key).count()
        record(self, self.key)
        if attempts < self.failures:
            raise RuntimeError(f"flaky attempt {attempts + 1}")


@register_job
class ExitJob(Job):
    """Kills its own process, like a segfault would."""

    def __init__(self, key, retries=0):
        self.key = key
        self.retries = retries

    def get_retries(self):
        return self.retries

    def run(self):
        record(self, self.key)
        os._exit(13)


@register_job
class SleepJob(Job):
    def __init__(self, key, seconds):
        self.key = key
        self.seconds = seconds

    def run(self):
        record(self, f"{self.key}:start")
        time.sleep(self.seconds)
        record(self, self.key)


@register_job
class UniqueJob(Job):
    def __init__(self, key, seconds=0):
        self.key = key
        self.seconds = seconds

    def get_unique_key(self):
        return f"unique-{self.key}"

    def run(self):
        record(self, f"{self.key}:start")
        time.sleep(self.seconds)
        record(self, self.key)


@register_job
class EchoJob(Job):
    """Records the types and values it was built with."""

    def __init__(self, key, *args, **kwargs):
        self.key = key
        self.args = args
        self.kwargs = kwargs

    def run(self):
        def describe(value):
            return {"type": type(value).__name__, "repr": repr(value)}

        record(
            self,
            self.key,
            {
                "args": [describe(v) for v in self.args],
                "kwargs": {k: describe(v) for k, v in self.kwargs.items()},
            },
        )


@register_job
class BadReturnJob(Job):
    def __init__(self, key):
        self.key = key

    def run(self):
        record(self, self.key)
        return lambda: None


@register_job
class NoopJob(Job):
    def run(self):
        pass


@register_job(alias="app.jobs.OldRenamedJob")
class RenamedJob(Job):
    """Stored rows may still carry its old name."""

    def __init__(self, key):
        self.key = key

    def run(self):
        record(self, self.key)


@register_job
class CrashJob(Job):
    """Dies the way real jobs die: os._exit, SIGKILL or a segmentation fault."""

    def __init__(self, key, how, retries=0):
        self.key = key
        self.how = how
        self.retries = retries

    def get_retries(self):
        return self.retries

    def run(self):
        import ctypes
        import signal

        record(self, self.key)
        if self.how == "exit":
            os._exit(3)
        elif self.how == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif self.how == "segfault":
            ctypes.string_at(0)


@register_job
class HangOnceJob(Job):
    """Hangs on its first attempt only (until killed or cut off); later attempts finish at once."""

    def __init__(self, key, seconds=60, retries=1):
        self.key = key
        self.seconds = seconds
        self.retries = retries

    def get_retries(self):
        return self.retries

    def run(self):
        first = not Execution.objects.filter(key=f"{self.key}:start").exists()
        record(self, f"{self.key}:start")
        if first:
            time.sleep(self.seconds)
        record(self, self.key)


@register_job
class CpuHogJob(Job):
    """Keeps a CPU busy without sleeping or touching the database."""

    def __init__(self, key, seconds):
        self.key = key
        self.seconds = seconds

    def run(self):
        deadline = time.monotonic() + self.seconds
        while time.monotonic() < deadline:
            sum(range(1000))
        record(self, self.key)


@register_job
class ChainJob(Job):
    """Records, then enqueues itself with ``remaining - 1`` until 0 (never, from a negative start)."""

    def __init__(self, key, remaining):
        self.key = key
        self.remaining = remaining

    def run(self):
        record(self, self.key, {"remaining": self.remaining})
        if self.remaining != 0:
            ChainJob(self.key, self.remaining - 1).run_in_worker()


@register_job
class BadSQLJob(Job):
    """Fails on a database error (which aborts an enclosing PostgreSQL transaction)."""

    def run(self):
        from plain.models import db_connection

        with db_connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table_for_bad_sql_job")


# Scheduled jobs (tests/test_scheduling.py).


@register_job
class EverySecondJob(Job):
    """Scheduled by its class attribute, on a queue only the scheduling tests' workers serve."""

    schedule = Schedule.from_cron("* * * * * *")

    def get_queue(self):
        return "scheduled"

    def run(self):
        record(self, "every-second")


@register_job
class ScheduledRecordJob(Job):
    """Scheduled by the tests through WORKER_JOBS_SCHEDULE; records each run."""

    def run(self):
        record(self, "scheduled")


@register_job
class UniqueScheduledJob(Job):
    """A scheduled job with a unique key: an occurrence is skipped while the last one is pending."""

    def get_unique_key(self):
        return "scheduled-unique"

    def run(self):
        record(self, "scheduled-unique")


@register_job
class ChaosJob(Job):
    """Works for a few milliseconds, then records its one side effect."""

    def __init__(self, key, millis):
        self.key = key
        self.millis = millis

    def get_retries(self):
        return 10

    def run(self):
        time.sleep(self.millis / 1000)
        record(self, self.key)


@register_job
class LoggingJob(Job):
    """Logs through the app logger and records the logger context it saw."""

    def __init__(self, key):
        self.key = key

    def run(self):
        from plain.logs import app_logger

        app_logger.kv.info("logging job ran", key=self.key)
        record(self, self.key, dict(app_logger.kv.context))
