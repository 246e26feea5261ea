"""The demo's jobs: what a small app might run in the background."""

from __future__ import annotations

from plain.worker import Job, register_job

from .users.models import Outbox, User


@register_job
class WelcomeUserJob(Job):
    """Send a welcome email (here: write it to the outbox)."""

    def __init__(self, user: User):
        self.user = user

    def run(self) -> None:
        Outbox.objects.create(user=self.user, subject=f"Welcome, {self.user.name}!")


@register_job
class ChargeCardJob(Job):
    """A payment provider that times out twice before it answers: retried with backoff."""

    def __init__(self, user: User, cents: int):
        self.user = user
        self.cents = cents

    def get_retries(self) -> int:
        return 3

    def get_retry_delay(self, attempt: int) -> int:
        return 2 ** (attempt - 1)  # 1s, 2s, 4s

    def run(self) -> None:
        attempts = Outbox.objects.filter(user=self.user, subject__startswith="Charge attempt").count()
        Outbox.objects.create(user=self.user, subject=f"Charge attempt {attempts + 1}")
        if attempts < 2:
            raise TimeoutError("payment provider did not answer in time")
        Outbox.objects.create(user=self.user, subject=f"Receipt for ${self.cents / 100:.2f}")


@register_job
class RebuildSearchIndexJob(Job):
    """Expensive and idempotent: one at a time is enough, so it has a unique key."""

    def get_unique_key(self) -> str:
        return "rebuild-search-index"

    def run(self) -> None:
        import time

        time.sleep(0.5)


@register_job
class ReminderJob(Job):
    """Sent a little later (enqueued with a delay)."""

    def __init__(self, user: User):
        self.user = user

    def run(self) -> None:
        Outbox.objects.create(user=self.user, subject="Don't forget to finish your profile")


@register_job
class ImportContactsJob(Job):
    """Always fails: its traceback is kept in the job history."""

    def __init__(self, user: User, source_url: str):
        self.user = user
        self.source_url = source_url

    def run(self) -> None:
        raise ConnectionError(f"could not reach {self.source_url}")
