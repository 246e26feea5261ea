"""ScheduleRun: the record that makes each scheduled occurrence run once."""

from __future__ import annotations

import datetime
import uuid

from plain.models import IntegrityError, transaction

from plain import models


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
