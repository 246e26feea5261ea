"""Job: a job claimed by a worker, and the moves out of it."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Sequence

from plain.models import transaction
from plain.utils import timezone

from plain import models

from .. import claims
from .columns import JobColumns
from .requests import JobRequest
from .results import JobResult, JobResultStatuses, Outcome, retry_delay_for
from .workers import WorkerIdentity


@models.register_model
class Job(JobColumns, models.Model):
    """A job claimed by a worker: running, or about to."""

    uuid = models.UUIDField(default=uuid.uuid4)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(required=False, allow_null=True)
    job_request_uuid = models.UUIDField()
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

    def as_result(
        self,
        *,
        status: str,
        ended_at: datetime.datetime,
        started_at: datetime.datetime | None = None,
        error: str = "",
        worker: WorkerIdentity | None = None,
        pid: int | None = None,
    ) -> JobResult:
        return JobResult(
            uuid=uuid.uuid4(),
            job_uuid=self.uuid,
            started_at=started_at or self.started_at,
            ended_at=ended_at,
            error=error,
            status=status,
            job_request_uuid=self.job_request_uuid,
            **self.carried(),
            worker_uuid=worker.uuid if worker else self.worker_uuid,
            worker_hostname=worker.hostname if worker else None,
            worker_pid=pid,
        )

    def as_request(self) -> JobRequest:
        """The request this job was claimed from, unchanged (for hand-back)."""
        return JobRequest(
            created_at=self.request_created_at or self.created_at,
            uuid=self.job_request_uuid,
            **self.carried(),
            start_at=self.start_at,
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
    def finish(cls, outcomes: list[tuple[Job, Outcome]], worker: WorkerIdentity) -> list[JobResult]:
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
            return _store_lost(jobs, now, f"Lost: still running after {lost_after:g} seconds (WORKER_JOBS_LOST_AFTER).")

    @classmethod
    def cancel(cls, ids: list[int] | None, *, reason: str, now: datetime.datetime | None = None) -> list[JobResult]:
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
