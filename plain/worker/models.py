"""The three job tables and the only moves between them.

A job is always in exactly one of JobRequest (waiting), Job (claimed by a
worker) or JobResult (history). The legal moves, each one method running one
transaction:

- request -> job      ``JobRequest.claim()``
- job -> request      ``Job.release()``           (handed back at shutdown)
- job -> result       ``Job.finish()``, ``Job.rescue_dead_workers()``,
                      ``Job.expire()``, ``Job.cancel()`` (finished, errored, lost, cancelled)
- request -> result   ``JobRequest.cancel()``     (deleted before it ran: CANCELLED)
- result -> request   inside the job -> result move when retries are left,
                      and ``JobResult.retry()`` for a manual retry

Deleting a waiting or running job (admin, purge-processing) is a cancel: the
job leaves a CANCELLED result, so nothing disappears without a trace.

Every move out of Job deletes the row only if it is still held by the worker
the caller expects (or is still overdue), so a rescue and a late result can
never both win. The statements themselves live in ``claims.py``.
"""

from __future__ import annotations

import datetime
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from plain.models import IntegrityError, db_connection, transaction
from plain.utils import timezone

from plain import models

from . import claims
from .registry import jobs_registry

logger = logging.getLogger("plain.worker")


class JobResultStatuses:
    """The final states of a job run (plain strings, so they compare and serialize as such)."""

    SUCCESSFUL = "SUCCESSFUL"
    ERRORED = "ERRORED"
    CANCELLED = "CANCELLED"
    LOST = "LOST"

    choices = [(SUCCESSFUL, "Successful"), (ERRORED, "Errored"), (CANCELLED, "Cancelled"), (LOST, "Lost")]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened when a worker process ran one job (sent back to the parent)."""

    status: str
    started_at: datetime.datetime | None
    ended_at: datetime.datetime
    error: str = ""
    retry_delay: int | None = None
    pid: int | None = None


@dataclass(frozen=True, slots=True)
class WorkerIdentity:
    uuid: uuid.UUID
    hostname: str
    pid: int


def retry_delay_for(job_class: str, attempt: int) -> int:
    """get_retry_delay() of a job class when no instance is at hand (a lost job).

    The method is called on an instance that skipped __init__, so a delay that
    depends on constructor state falls back to 0 instead of failing the rescue.
    """
    try:
        cls = jobs_registry.get_class(job_class)
        return int(cls.__new__(cls).get_retry_delay(attempt) or 0)
    except Exception:  # Misconfiguration boundary: a broken job class never blocks a rescue.
        return 0


@models.register_model
class JobRequest(models.Model):
    """A job waiting to run."""

    # A default rather than auto_now_add, so a handed-back job keeps its original time.
    created_at = models.DateTimeField(default=timezone.now)
    uuid = models.UUIDField(default=uuid.uuid4)
    job_class = models.CharField(max_length=255)
    parameters = models.JSONField(required=False, allow_null=True)
    priority = models.IntegerField(default=0)
    source = models.TextField(required=False)
    queue = models.CharField(default="default", max_length=255)
    retries = models.IntegerField(default=0)
    retry_attempt = models.IntegerField(default=0)
    unique_key = models.CharField(max_length=255, required=False)
    start_at = models.DateTimeField(required=False, allow_null=True)
    span_id = models.CharField(max_length=18, required=False, allow_null=True)
    trace_id = models.CharField(max_length=34, required=False, allow_null=True)

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
        rows += Job.objects.filter(id__in=job_ids) if job_ids else []
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
            job_class=self.job_class,
            parameters=self.parameters,
            priority=self.priority,
            source=self.source,
            queue=self.queue,
            retries=self.retries,
            retry_attempt=self.retry_attempt,
            unique_key=self.unique_key,
            span_id=self.span_id,
            trace_id=self.trace_id,
        )

    # request -> job

    @classmethod
    def claim(
        cls, *, queues: list[str], limit: int, worker: WorkerIdentity, now: datetime.datetime
    ) -> list[Job]:
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


@models.register_model
class Job(models.Model):
    """A job claimed by a worker: running, or about to."""

    uuid = models.UUIDField(default=uuid.uuid4)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(required=False, allow_null=True)
    job_request_uuid = models.UUIDField()
    job_class = models.CharField(max_length=255)
    parameters = models.JSONField(required=False, allow_null=True)
    priority = models.IntegerField(default=0)
    source = models.TextField(required=False)
    queue = models.CharField(default="default", max_length=255)
    retries = models.IntegerField(default=0)
    retry_attempt = models.IntegerField(default=0)
    unique_key = models.CharField(max_length=255, required=False)
    span_id = models.CharField(max_length=18, required=False, allow_null=True)
    trace_id = models.CharField(max_length=34, required=False, allow_null=True)
    # Added by this package (0003): who holds the job, and what to restore on hand-back.
    worker_uuid = models.UUIDField(required=False, allow_null=True)
    start_at = models.DateTimeField(required=False, allow_null=True)
    request_created_at = models.DateTimeField(required=False, allow_null=True)

    class Meta:
        indexes = [
            models.Index(fields=["created_at"], name="plainworker_created_a02317_idx"),
            models.Index(fields=["queue"], name="plainworker_queue_077806_idx"),
            models.Index(fields=["unique_key"], name="plainworker_unique__04d87b_idx"),
            models.Index(fields=["started_at"], name="plainworker_started_143df5_idx"),
            models.Index(fields=["job_class"], name="plainworker_job_cla_884b46_idx"),
            models.Index(fields=["job_request_uuid"], name="plainworker_job_req_db2681_idx"),
            models.Index(fields=["job_class", "unique_key"], name="job_class_unique_key"),
            models.Index(fields=["trace_id"], name="plainworker_trace_i_d2b645_idx"),
            models.Index(fields=["worker_uuid"], name="plainworker_job_worker_uuid"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["uuid"], name="plainworker_job_unique_uuid"),
        ]

    def __str__(self) -> str:
        return f"{self.job_class} [{self.uuid}]"

    def as_result(self, *, status: str, ended_at: datetime.datetime, started_at: datetime.datetime | None = None,
                  error: str = "", worker: WorkerIdentity | None = None, pid: int | None = None) -> JobResult:
        return JobResult(
            uuid=uuid.uuid4(),
            job_uuid=self.uuid,
            started_at=started_at or self.started_at,
            ended_at=ended_at,
            error=error,
            status=status,
            job_request_uuid=self.job_request_uuid,
            job_class=self.job_class,
            parameters=self.parameters,
            priority=self.priority,
            source=self.source,
            queue=self.queue,
            retries=self.retries,
            retry_attempt=self.retry_attempt,
            unique_key=self.unique_key,
            span_id=self.span_id,
            trace_id=self.trace_id,
            worker_uuid=worker.uuid if worker else self.worker_uuid,
            worker_hostname=worker.hostname if worker else None,
            worker_pid=pid,
        )

    def as_request(self) -> JobRequest:
        """The request this job was claimed from, unchanged (for hand-back)."""
        return JobRequest(
            created_at=self.request_created_at or self.created_at,
            uuid=self.job_request_uuid,
            job_class=self.job_class,
            parameters=self.parameters,
            priority=self.priority,
            source=self.source,
            queue=self.queue,
            retries=self.retries,
            retry_attempt=self.retry_attempt,
            unique_key=self.unique_key,
            start_at=self.start_at,
            span_id=self.span_id,
            trace_id=self.trace_id,
        )

    # job -> request

    @classmethod
    def release(cls, jobs: list[Job], worker: WorkerIdentity) -> list[JobRequest]:
        """Hand claimed-but-unstarted jobs back to the queue exactly as they were."""
        if not jobs:
            return []
        with transaction.atomic():
            held = claims.take_held([job.id for job in jobs], worker.uuid)
            requests = [job.as_request() for job in jobs if job.id in held]
            JobRequest.objects.bulk_create(requests)
        return requests

    @classmethod
    def release_unknown(cls, worker: WorkerIdentity, known_ids: list[int]) -> list[JobRequest]:
        """Hand back jobs held by this worker that it has no record of (a lost claim reply)."""
        with transaction.atomic():
            jobs = claims.take_unknown(worker.uuid, known_ids)
            requests = [job.as_request() for job in jobs]
            JobRequest.objects.bulk_create(requests)
        return requests

    # job -> result (and result -> request for retries)

    @classmethod
    def finish(
        cls, outcomes: list[tuple[Job, Outcome]], worker: WorkerIdentity
    ) -> list[JobResult]:
        """Record outcomes of jobs this worker still holds; rescued ones are skipped."""
        if not outcomes:
            return []
        with transaction.atomic(savepoint=False):
            held = claims.take_held([job.id for job, _ in outcomes], worker.uuid)
            pairs = [
                (
                    job.as_result(
                        status=outcome.status,
                        started_at=outcome.started_at,
                        ended_at=outcome.ended_at,
                        error=outcome.error,
                        worker=worker,
                        pid=outcome.pid,
                    ),
                    outcome.retry_delay,
                )
                for job, outcome in outcomes
                if job.id in held
            ]
            return _store_results(pairs)

    @classmethod
    def rescue_dead_workers(cls, *, now: datetime.datetime, timeout: float) -> list[JobResult]:
        """Mark LOST the jobs of workers silent for ``timeout`` seconds (or gone)."""
        with transaction.atomic():
            dead = claims.delete_dead_workers(now - datetime.timedelta(seconds=timeout))
            jobs = claims.take_orphaned()
            return _store_lost(jobs, now, f"Lost: its worker {_worker_list(dead)} stopped sending heartbeats.")

    @classmethod
    def expire(cls, *, now: datetime.datetime, lost_after: float) -> list[JobResult]:
        """Mark LOST the jobs that have been running longer than ``lost_after`` seconds."""
        with transaction.atomic():
            jobs = claims.take_overdue(now - datetime.timedelta(seconds=lost_after))
            return _store_lost(
                jobs, now, f"Lost: still running after {lost_after:g} seconds (WORKER_JOBS_LOST_AFTER)."
            )

    @classmethod
    def cancel(
        cls, ids: list[int] | None, *, reason: str, now: datetime.datetime | None = None
    ) -> list[JobResult]:
        """Record these claimed jobs (None: all of them) as CANCELLED, without retries.

        A worker still running one finds it gone and discards its outcome.
        """
        now = now or timezone.now()
        with transaction.atomic():
            jobs = claims.take_jobs(ids)
            results = [job.as_result(status=JobResultStatuses.CANCELLED, ended_at=now, error=reason) for job in jobs]
            JobResult.objects.bulk_create(results)
        return results


def _worker_list(dead: list[str]) -> str:
    return ", ".join(dead) if dead else "(already removed)"


def _store_lost(jobs: list[Job], now: datetime.datetime, error: str) -> list[JobResult]:
    pairs = [
        (
            job.as_result(status=JobResultStatuses.LOST, ended_at=now, error=error),
            retry_delay_for(job.job_class, job.retry_attempt + 1),
        )
        for job in jobs
    ]
    return _store_results(pairs)


def _store_results(pairs: Sequence[tuple[JobResult, int | None]]) -> list[JobResult]:
    """Insert results, plus a retry request for each failed one with retries left."""
    retries: list[JobRequest] = []
    for result, delay in pairs:
        if result.status != JobResultStatuses.SUCCESSFUL and result.retry_attempt < result.retries:
            request = result.as_retry(delay or 0)
            result.retry_job_request_uuid = request.uuid
            retries.append(request)
    results = [result for result, _ in pairs]
    JobResult.objects.bulk_create(results)
    if retries:
        JobRequest.objects.bulk_create(retries)
    return results


class JobResultQuerySet(models.QuerySet):
    def successful(self) -> JobResultQuerySet:
        return self.filter(status=JobResultStatuses.SUCCESSFUL)

    def errored(self) -> JobResultQuerySet:
        return self.filter(status=JobResultStatuses.ERRORED)

    def cancelled(self) -> JobResultQuerySet:
        return self.filter(status=JobResultStatuses.CANCELLED)

    def lost(self) -> JobResultQuerySet:
        return self.filter(status=JobResultStatuses.LOST)

    def failed(self) -> JobResultQuerySet:
        """Errored, lost or cancelled: the job did not finish successfully."""
        return self.exclude(status=JobResultStatuses.SUCCESSFUL)

    def retried(self) -> JobResultQuerySet:
        """Results that were followed by a retry."""
        return self.filter(retry_job_request_uuid__isnull=False)

    def retryable(self) -> JobResultQuerySet:
        """Failed results not yet retried (what the admin's Retry action applies to)."""
        return self.failed().filter(retry_job_request_uuid__isnull=True)

    def older_than(self, cutoff: datetime.datetime) -> JobResultQuerySet:
        return self.filter(created_at__lt=cutoff)


@models.register_model
class JobResult(models.Model):
    """What happened to one run of a job."""

    uuid = models.UUIDField(default=uuid.uuid4)
    created_at = models.DateTimeField(auto_now_add=True)
    job_uuid = models.UUIDField()
    started_at = models.DateTimeField(required=False, allow_null=True)
    ended_at = models.DateTimeField(required=False, allow_null=True)
    error = models.TextField(required=False)
    status = models.CharField(max_length=20, choices=JobResultStatuses.choices)
    job_request_uuid = models.UUIDField()
    job_class = models.CharField(max_length=255)
    parameters = models.JSONField(required=False, allow_null=True)
    priority = models.IntegerField(default=0)
    source = models.TextField(required=False)
    queue = models.CharField(default="default", max_length=255)
    retries = models.IntegerField(default=0)
    retry_attempt = models.IntegerField(default=0)
    unique_key = models.CharField(max_length=255, required=False)
    retry_job_request_uuid = models.UUIDField(required=False, allow_null=True)
    span_id = models.CharField(max_length=18, required=False, allow_null=True)
    trace_id = models.CharField(max_length=34, required=False, allow_null=True)
    # Added by this package (0003): which worker ran it.
    worker_uuid = models.UUIDField(required=False, allow_null=True)
    worker_hostname = models.CharField(max_length=255, required=False, allow_null=True)
    worker_pid = models.IntegerField(required=False, allow_null=True)

    objects = JobResultQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["created_at"], name="plainworker_created_6894c5_idx"),
            models.Index(fields=["job_uuid"], name="plainworker_job_uui_8307d1_idx"),
            models.Index(fields=["started_at"], name="plainworker_started_9bce76_idx"),
            models.Index(fields=["ended_at"], name="plainworker_ended_a_63caaf_idx"),
            models.Index(fields=["status"], name="plainworker_status_a7ca35_idx"),
            models.Index(fields=["job_request_uuid"], name="plainworker_job_req_1e1bf2_idx"),
            models.Index(fields=["job_class"], name="plainworker_job_cla_d138b5_idx"),
            models.Index(fields=["queue"], name="plainworker_queue_23d8fe_idx"),
            models.Index(fields=["trace_id"], name="plainworker_trace_i_00c75f_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["uuid"], name="plainworker_jobresult_unique_uuid"),
        ]

    def __str__(self) -> str:
        return f"{self.job_class} [{self.uuid}] {self.status}"

    def as_retry(self, delay: float) -> JobRequest:
        now = timezone.now()
        return JobRequest(
            created_at=now,
            uuid=uuid.uuid4(),
            job_class=self.job_class,
            parameters=self.parameters,
            priority=self.priority,
            source=self.source,
            queue=self.queue,
            retries=self.retries,
            retry_attempt=self.retry_attempt + 1,
            unique_key=self.unique_key,
            start_at=now + datetime.timedelta(seconds=delay),
            span_id=self.span_id,
            trace_id=self.trace_id,
        )

    # result -> request

    def retry(self, delay: float = 0) -> JobRequest | None:
        """Enqueue this job again (manual retry); None if it was already retried."""
        with transaction.atomic():
            request = self.as_retry(delay)
            updated = JobResult.objects.filter(id=self.id, retry_job_request_uuid__isnull=True).update(
                retry_job_request_uuid=request.uuid
            )
            if not updated:
                return None
            request.save(clean_and_validate=False, force_insert=True)
            self.retry_job_request_uuid = request.uuid
            return request


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


@models.register_model
class ScheduleRun(models.Model):
    """One occurrence of a scheduled job, recorded by the worker that enqueued it.

    The unique (schedule_key, occurrence) constraint is what makes an occurrence
    run once however many workers race for it: the row is inserted in the same
    transaction as the JobRequest, and every other worker's insert fails.
    """

    schedule_key = models.CharField(max_length=255)
    occurrence = models.DateTimeField()
    job_request_uuid = models.UUIDField(required=False, allow_null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["occurrence"], name="plainworker_schedulerun_occur")]
        constraints = [
            models.UniqueConstraint(
                fields=["schedule_key", "occurrence"], name="plainworker_schedulerun_unique_occurrence"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.schedule_key} at {self.occurrence.isoformat()}"

    @classmethod
    def take(cls, schedule_key: str, occurrence: datetime.datetime) -> ScheduleRun | None:
        """Claim this occurrence for the caller's transaction; None if a worker already has.

        Call inside the transaction that enqueues the job. On PostgreSQL a
        concurrent insert of the same occurrence waits for that transaction,
        then fails here if it committed.
        """
        run = cls(schedule_key=schedule_key, occurrence=occurrence)
        try:
            with transaction.atomic():
                run.save(clean_and_validate=False, force_insert=True)
        except IntegrityError:
            return None
        return run

    def record(self, job_request_uuid: uuid.UUID | None) -> None:
        """Note which request this occurrence enqueued (None: skipped for its unique key)."""
        self.job_request_uuid = job_request_uuid
        ScheduleRun.objects.filter(id=self.id).update(job_request_uuid=job_request_uuid)

    @classmethod
    def delete_older_than(cls, cutoff: datetime.datetime) -> int:
        deleted, _ = cls.objects.filter(occurrence__lt=cutoff).delete()
        return deleted
