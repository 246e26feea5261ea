"""Worker: a running `plain worker run` and its heartbeat."""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass
from typing import Any

from plain import models


@dataclass(frozen=True, slots=True)
class WorkerIdentity:
    uuid: uuid.UUID
    hostname: str
    pid: int


@models.register_model
class Worker(models.Model):
    """A running ``plain worker run`` process and its last heartbeat."""

    uuid = models.UUIDField(default=uuid.uuid4)
    hostname = models.CharField(max_length=255)
    pid = models.IntegerField()
    queues = models.JSONField(default=list, required=False)
    max_processes = models.IntegerField(default=1)
    started_at = models.DateTimeField(auto_now_add=True)
    heartbeat_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["heartbeat_at"], name="plainworker_worker_heartbeat")]
        constraints = [models.UniqueConstraint(fields=["uuid"], name="plainworker_worker_unique_uuid")]

    def __str__(self) -> str:
        return f"{self.hostname}:{self.pid} [{self.uuid}]"

    @classmethod
    def beat(cls, identity: WorkerIdentity, *, queues: list[str], max_processes: int, now: datetime.datetime) -> bool:
        """Record a heartbeat; re-register (returning False) if others had declared us dead."""
        if cls.objects.filter(uuid=identity.uuid).update(heartbeat_at=now):
            return True
        cls.register(identity, queues=queues, max_processes=max_processes, now=now)
        return False

    @classmethod
    def register(
        cls, identity: WorkerIdentity, *, queues: list[str], max_processes: int, now: datetime.datetime
    ) -> None:
        cls.objects.create(
            uuid=identity.uuid,
            hostname=identity.hostname,
            pid=identity.pid,
            queues=queues,
            max_processes=max_processes,
            heartbeat_at=now,
        )

    @classmethod
    def leave(cls, identity: WorkerIdentity) -> None:
        cls.objects.filter(uuid=identity.uuid).delete()

    @classmethod
    def live(cls, *, now: datetime.datetime, timeout: float) -> Any:
        return cls.objects.filter(heartbeat_at__gte=now - datetime.timedelta(seconds=timeout))
