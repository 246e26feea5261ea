"""The columns a job carries unchanged through every table it passes.

JobRequest, Job and JobResult share them (same names and types as the
published schema); ``carried()`` copies them when a job moves.
"""

from __future__ import annotations

from typing import Any

from plain import models

CARRIED = (
    "job_class",
    "parameters",
    "priority",
    "source",
    "queue",
    "retries",
    "retry_attempt",
    "unique_key",
    "span_id",
    "trace_id",
)


class JobColumns:
    """Mixin for the three job tables (Plain copies mixin fields into each model)."""

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

    def carried(self) -> dict[str, Any]:
        """The carried columns' values, to build the next row from."""
        return {name: getattr(self, name) for name in CARRIED}
