"""JobResult (history), its statuses and querysets, and the Outcome of one run."""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from plain.models import transaction
from plain.utils import timezone

from plain import models

from ..registry import jobs_registry
from .columns import JobColumns

if TYPE_CHECKING:
    from .jobs import Job
    from .requests import JobRequest


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

    @classmethod
    def without_report(cls, job: Job, *, status: str, error: str) -> Outcome:
        """For a run that ended without reporting (lost, cut off): the retry delay
        comes from the job class, since no instance is at hand."""
        attempt = job.retry_attempt + 1
        return cls(
            status=status,
            started_at=job.started_at,
            ended_at=timezone.now(),
            error=error,
            retry_delay=retry_delay_for(job.job_class, attempt) if attempt <= job.retries else None,
        )


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
class JobResult(JobColumns, models.Model):
    """What happened to one run of a job."""

    uuid = models.UUIDField(default=uuid.uuid4)
    created_at = models.DateTimeField(auto_now_add=True)
    job_uuid = models.UUIDField()
    started_at = models.DateTimeField(required=False, allow_null=True)
    ended_at = models.DateTimeField(required=False, allow_null=True)
    error = models.TextField(required=False)
    status = models.CharField(max_length=20, choices=JobResultStatuses.choices)
    job_request_uuid = models.UUIDField()
    retry_job_request_uuid = models.UUIDField(required=False, allow_null=True)
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
        from .requests import JobRequest

        now = timezone.now()
        return JobRequest(
            created_at=now,
            uuid=uuid.uuid4(),
            **{**self.carried(), "retry_attempt": self.retry_attempt + 1},
            start_at=now + datetime.timedelta(seconds=delay),
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
