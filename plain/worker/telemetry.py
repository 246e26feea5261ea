"""OpenTelemetry spans for enqueuing and running jobs.

This is the only module that imports opentelemetry. With no SDK configured the
API hands out non-recording spans, so every helper here costs a few attribute
lookups.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

if TYPE_CHECKING:
    from opentelemetry.trace import Span

tracer = trace.get_tracer("plain.worker")

MESSAGING_SYSTEM = "plain.worker"


def span_ids(span: Span) -> tuple[str | None, str | None]:
    """Return (trace_id, span_id) as stored on rows, only for sampled spans."""
    context = span.get_span_context()
    if not context.is_valid or not context.trace_flags.sampled:
        return None, None
    return f"0x{context.trace_id:032x}", f"0x{context.span_id:016x}"


@contextmanager
def enqueue_span(job_class: str, queue: str) -> Iterator[Span]:
    """PRODUCER span around run_in_worker()."""
    with tracer.start_as_current_span(
        f"{queue} publish",
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": MESSAGING_SYSTEM,
            "messaging.operation.type": "send",
            "messaging.operation.name": "run_in_worker",
            "messaging.destination.name": queue,
            "code.function.name": job_class,
        },
    ) as span:
        yield span


def set_job_uuid(span: Span, job_request_uuid: str) -> None:
    if span.is_recording():
        span.set_attribute("messaging.message.id", job_request_uuid)


def _link(trace_id: str | None, span_id: str | None) -> list[Link]:
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
    return [Link(context)]


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
    """CONSUMER span around one execution, linked to the enqueuing trace."""
    with tracer.start_as_current_span(
        f"{queue} process",
        kind=SpanKind.CONSUMER,
        links=_link(trace_id, span_id),
        record_exception=False,
        set_status_on_exception=False,
        attributes={
            "messaging.system": MESSAGING_SYSTEM,
            "messaging.operation.type": "process",
            "messaging.operation.name": "run",
            "messaging.destination.name": queue,
            "messaging.message.id": job_request_uuid,
            "messaging.consumer.group.name": queue,
            "code.function.name": job_class,
            "plain.worker.job.uuid": job_uuid,
            "plain.worker.job.retry_attempt": retry_attempt,
        },
    ) as span:
        yield span


def record_failure(span: Span, error: BaseException) -> None:
    if span.is_recording():
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
