"""Jobs the tests enqueue, including deliberately bad ones."""

import os
import time

from plain.worker import Job, register_job

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


@register_job
class LoggingJob(Job):
    """Logs through the app logger and records the logger context it saw."""

    def __init__(self, key):
        self.key = key

    def run(self):
        from plain.logs import app_logger

        app_logger.kv.info("logging job ran", key=self.key)
        record(self, self.key, dict(app_logger.kv.context))
