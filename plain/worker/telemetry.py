"""OpenTelemetry spans for enqueuing and running jobs.

This is the only module that imports opentelemetry. With no SDK configured the
API hands out non-recording spans, so every helper here costs a few attribute
lookups and nothing is stored on the rows.

Two spans per job, named and attributed after the messaging semantic
conventions (``messaging.system`` is ``plain.worker``, the destination is the
queue, the message id is the JobRequest uuid):

- PRODUCER ``send <queue>`` around ``run_in_worker()``, a child of whatever
  span is current (typically the web request's). Its trace and span ids are
  stored on the JobRequest only when the span is sampled: a worker then never
  links to a trace the backend will not have.
- CONSUMER ``process <queue>`` around each execution, in the job's process. It
  starts a new trace (a job may run hours after its request, and may run
  several times) with a link to the stored PRODUCER span. Retries copy the
  stored ids, so every attempt links back to the original enqueue. A failure
  sets status ERROR and records the exception as a span event.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import (
    Link,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)

if TYPE_CHECKING:
    from opentelemetry.trace import Span

tracer = trace.get_tracer("plain.worker")

MESSAGING_SYSTEM = "plain.worker"

#: Attribute names: the messaging semantic conventions, plus our own namespace.
SYSTEM = "messaging.system"
OPERATION_TYPE = "messaging.operation.type"
OPERATION_NAME = "messaging.operation.name"
DESTINATION = "messaging.destination.name"
MESSAGE_ID = "messaging.message.id"
JOB_CLASS = "plain.worker.job.class"
JOB_UUID = "plain.worker.job.uuid"
RETRY_ATTEMPT = "plain.worker.job.retry_attempt"


def span_ids(span: Span) -> tuple[str | None, str | None]:
    """Return (trace_id, span_id) as stored on rows (0x-prefixed hex), only for sampled spans."""
    context = span.get_span_context()
    if not context.is_valid or not context.trace_flags.sampled:
        return None, None
    return f"0x{context.trace_id:032x}", f"0x{context.span_id:016x}"


@contextmanager
def enqueue_span(job_class: str, queue: str) -> Iterator[Span]:
    """PRODUCER span around run_in_worker() (and run_in_worker_bulk())."""
    with tracer.start_as_current_span(
        f"send {queue}",
        kind=SpanKind.PRODUCER,
        attributes={
            SYSTEM: MESSAGING_SYSTEM,
            OPERATION_TYPE: "send",
            OPERATION_NAME: "send",
            DESTINATION: queue,
            JOB_CLASS: job_class,
        },
    ) as span:
        yield span


def set_job_uuid(span: Span, job_request_uuid: str) -> None:
    """Name the message the PRODUCER span sent (the JobRequest uuid)."""
    if span.is_recording():
        span.set_attribute(MESSAGE_ID, job_request_uuid)


def link_to(trace_id: str | None, span_id: str | None) -> list[Link]:
    """A link to the stored PRODUCER span; none when the ids are missing or malformed."""
    if not trace_id or not span_id:
        return []
    try:
        context = SpanContext(
            trace_id=int(trace_id, 16),
            span_id=int(span_id, 16),
            is_remote=True,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
        )
    except ValueError:
        return []
    return [Link(context)] if context.is_valid else []


@contextmanager
def execute_span(
    *,
    job_class: str,
    queue: str,
    job_uuid: str,
    job_request_uuid: str,
    retry_attempt: int,
    trace_id: str | None,
    span_id: str | None,
) -> Iterator[Span]:
    """CONSUMER span around one execution: a new trace, linked to the enqueuing span."""
    with tracer.start_as_current_span(
        f"process {queue}",
        context=otel_context.Context(),
        kind=SpanKind.CONSUMER,
        links=link_to(trace_id, span_id),
        record_exception=False,
        set_status_on_exception=False,
        attributes={
            SYSTEM: MESSAGING_SYSTEM,
            OPERATION_TYPE: "process",
            OPERATION_NAME: "process",
            DESTINATION: queue,
            MESSAGE_ID: job_request_uuid,
            JOB_CLASS: job_class,
            JOB_UUID: job_uuid,
            RETRY_ATTEMPT: retry_attempt,
        },
    ) as span:
        yield span


def record_failure(span: Span, error: BaseException) -> None:
    """Mark the execution span failed: status ERROR and the exception as an event."""
    if span.is_recording():
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
