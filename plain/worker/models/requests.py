"""JobRequest: a job waiting to run, and the moves that start from it."""

from __future__ import annotations

import datetime
import uuid
from typing import TYPE_CHECKING, Any
from uuid import UUID

from plain.models import IntegrityError, db_connection, transaction
from plain.utils import timezone

from plain import models

from .. import claims
from .columns import JobColumns
from .results import JobResult, JobResultStatuses

if TYPE_CHECKING:
    from .jobs import Job
    from .workers import WorkerIdentity


@models.register_model
class JobRequest(JobColumns, models.Model):
    """A job waiting to run."""

    # A default rather than auto_now_add, so a handed-back job keeps its original time.
    created_at = models.DateTimeField(default=timezone.now)
    uuid = models.UUIDField(default=uuid.uuid4)
    start_at = models.DateTimeField(required=False, allow_null=True)

    class Meta:
        indexes = [
            models.Index(fields=["priority"], name="plainworker_priorit_785e73_idx"),
            models.Index(fields=["created_at"], name="plainworker_created_c81fe5_idx"),
            models.Index(fields=["queue"], name="plainworker_queue_2614aa_idx"),
            models.Index(fields=["start_at"], name="plainworker_start_a_4d6020_idx"),
            models.Index(fields=["unique_key"], name="plainworker_unique__21a534_idx"),
            models.Index(fields=["job_class"], name="plainworker_job_cla_3e7dea_idx"),
            models.Index(fields=["job_class", "unique_key"], name="job_request_class_unique_key"),
            models.Index(fields=["trace_id"], name="plainworker_trace_i_e9dfc5_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["job_class", "unique_key"],
                condition=models.Q(unique_key__gt="", retry_attempt=0),
                name="plainworker_jobrequest_unique_job_class_key",
            ),
            models.UniqueConstraint(fields=["uuid"], name="plainworker_jobrequest_unique_uuid"),
        ]

    def __str__(self) -> str:
        return f"{self.job_class} [{self.uuid}]"

    @classmethod
    def new(cls, **values: Any) -> JobRequest:
        """A new, unsaved request from a value for every column but id.

        Built positionally, the ORM's fast path: bulk enqueue builds thousands.
        """
        names, required = _columns(cls)
        if values.keys() != required:
            raise TypeError(f"JobRequest.new() needs exactly {sorted(required)}, not {sorted(values)}")
        return cls(None, *(values[name] for name in names))

    # request (new)

    def enqueue(self) -> JobRequest | list[JobRequest | Job]:
        """Insert this request; with a unique key already in progress, return those rows instead."""
        if not self.unique_key:
            self.save(clean_and_validate=False, force_insert=True)
            return self
        for _ in range(3):
            with transaction.atomic():
                inserted = self._insert_unless_duplicate()
                others = self.in_progress(self.job_class, self.unique_key, exclude=self.uuid)
                if not others and inserted:
                    return self
                if others:
                    db_connection.set_rollback(True)
                    self.id = None
                    return others
            # The conflicting row finished between our insert and our look: try again.
        raise RuntimeError(f"Could not enqueue {self.job_class} with unique key {self.unique_key!r}")

    def _insert_unless_duplicate(self) -> bool:
        try:
            with transaction.atomic():
                self.save(clean_and_validate=False, force_insert=True)
        except IntegrityError:
            self.id = None
            return False
        return True

    @classmethod
    def enqueue_bulk(cls, requests: list[JobRequest]) -> list[JobRequest | list[JobRequest | Job]]:
        """Insert many requests in one transaction (one INSERT for those without a unique key)."""
        results: list[JobRequest | list[JobRequest | Job]] = []
        with transaction.atomic():
            plain = [request for request in requests if not request.unique_key]
            if plain:
                claims.insert_requests(plain)
            for request in requests:
                if not request.unique_key:
                    results.append(request)
                    continue
                inserted = request._insert_unless_duplicate()
                others = cls.in_progress(request.job_class, request.unique_key, exclude=request.uuid)
                if others and inserted:
                    request.delete()
                    request.id = None
                results.append(others if others else request)
        return results

    @staticmethod
    def in_progress(job_class: str, unique_key: str, exclude: UUID | None = None) -> list[JobRequest | Job]:
        """Pending and running rows with this class and key, read in one snapshot."""
        found = claims.in_progress_ids(job_class, unique_key)
        request_ids = [row_id for table, row_id in found if table == "request"]
        job_ids = [row_id for table, row_id in found if table == "job"]
        rows: list[JobRequest | Job] = []
        rows += JobRequest.objects.filter(id__in=request_ids).exclude(uuid=exclude) if request_ids else []
        if job_ids:
            from .jobs import Job

            rows += Job.objects.filter(id__in=job_ids)
        return rows

    # request -> result

    @classmethod
    def cancel(cls, ids: list[int], *, reason: str, now: datetime.datetime | None = None) -> list[JobResult]:
        """Record these waiting requests as CANCELLED (never run, never retried)."""
        now = now or timezone.now()
        with transaction.atomic():
            requests = claims.take_requests(ids)
            results = [request.as_cancelled(reason, now) for request in requests]
            JobResult.objects.bulk_create(results)
        return results

    def as_cancelled(self, reason: str, now: datetime.datetime) -> JobResult:
        return JobResult(
            uuid=uuid.uuid4(),
            job_uuid=uuid.uuid4(),
            started_at=None,
            ended_at=now,
            error=reason,
            status=JobResultStatuses.CANCELLED,
            job_request_uuid=self.uuid,
            **self.carried(),
        )

    # request -> job

    @classmethod
    def claim(cls, *, queues: list[str], limit: int, worker: WorkerIdentity, now: datetime.datetime) -> list[Job]:
        """Move up to ``limit`` runnable requests into Job for this worker, in claim order."""
        if limit <= 0:
            return []
        with transaction.atomic(savepoint=False):
            return claims.claim(queues=queues, limit=limit, worker_uuid=worker.uuid, now=now)

    @classmethod
    def next_start_at(cls, queues: list[str]) -> datetime.datetime | None:
        """When the earliest delayed request in these queues becomes runnable."""
        row = cls.objects.filter(queue__in=queues, start_at__isnull=False).order_by("start_at").first()
        return row.start_at if row else None


_COLUMNS: dict[Any, tuple[tuple[str, ...], frozenset[str]]] = {}


def _columns(model: Any) -> tuple[tuple[str, ...], frozenset[str]]:
    """Concrete field names after "id", in the ORM's positional order, and as a set."""
    if model not in _COLUMNS:
        names = tuple(field.attname for field in model._meta.concrete_fields)
        assert names[0] == "id"
        _COLUMNS[model] = names[1:], frozenset(names[1:])
    return _COLUMNS[model]
