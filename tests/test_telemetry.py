"""OpenTelemetry: a PRODUCER span per enqueue, a linked CONSUMER span per execution.

This process gets an SDK TracerProvider with an in-memory exporter, behind a
sampler that records only while a test holds the ``spans`` fixture (so the
rest of the suite runs as if no SDK were configured). Worker subprocesses run
the admin-enabled settings, whose ``app.tracing`` package writes their spans
to a JSON-lines file (PLAINWORKER_TEST_SPANS).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import TESTS_DIR, wait_until
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    StatusCode,
    TraceFlags,
)
from webapp import ADMIN_ENV

from plain.worker.telemetry import MESSAGING_SYSTEM


class Switch(Sampler):
    """ParentBased(ALWAYS_ON) while on; drops every span while off."""

    def __init__(self) -> None:
        self.on = False
        self.sampler = ParentBased(ALWAYS_ON)

    def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None, trace_state=None):
        if not self.on:
            return SamplingResult(Decision.DROP)
        return self.sampler.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return "TestSwitch"


SWITCH = Switch()
EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="session")
def provider() -> TracerProvider:
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        assert current.sampler is SWITCH, "another test installed an OpenTelemetry SDK provider first"
        return current
    new = TracerProvider(sampler=SWITCH)
    new.add_span_processor(SimpleSpanProcessor(EXPORTER))
    trace.set_tracer_provider(new)
    assert trace.get_tracer_provider() is new, "another SDK provider was installed first"
    return new


class Spans:
    def all(self) -> list[ReadableSpan]:
        return [span for span in EXPORTER.get_finished_spans() if span.instrumentation_scope.name != "plain.models"]

    def of_kind(self, kind: SpanKind) -> list[ReadableSpan]:
        return [span for span in self.all() if span.kind == kind]

    def ancestors(self, span: ReadableSpan) -> list[int]:
        """Span ids from ``span``'s parent up to its root (among recorded spans)."""
        by_id = {recorded.context.span_id: recorded for recorded in self.all()}
        found = []
        while span.parent is not None:
            found.append(span.parent.span_id)
            if span.parent.span_id not in by_id:
                break
            span = by_id[span.parent.span_id]
        return found

    def one(self, kind: SpanKind) -> ReadableSpan:
        found = self.of_kind(kind)
        assert len(found) == 1, [(span.name, span.kind) for span in self.all()]
        return found[0]


@pytest.fixture
def spans(provider: TracerProvider, db: None) -> Iterator[Spans]:
    EXPORTER.clear()
    SWITCH.on = True
    yield Spans()
    SWITCH.on = False
    EXPORTER.clear()


def stored(context: SpanContext) -> tuple[str, str]:
    """A span context as trace_id/span_id columns hold it."""
    return f"0x{context.trace_id:032x}", f"0x{context.span_id:016x}"


def read_span_file(path) -> list[dict[str, Any]]:
    from app.tracing import read_spans

    return read_spans(path)


def test_enqueue_is_a_producer_span_under_the_current_span(spans):
    from app.jobs import RecordJob

    from plain.worker.models import JobRequest

    with trace.get_tracer("test").start_as_current_span("incoming request") as parent:
        request = RecordJob("t1").run_in_worker(queue="mail")

    producer = spans.one(SpanKind.PRODUCER)
    assert producer.name == "send mail"
    assert producer.parent is not None and producer.parent.span_id == parent.get_span_context().span_id
    assert producer.context.trace_id == parent.get_span_context().trace_id
    assert dict(producer.attributes) == {
        "messaging.system": MESSAGING_SYSTEM,
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.destination.name": "mail",
        "messaging.message.id": str(request.uuid),
        "plain.worker.job.class": "app.jobs.RecordJob",
    }
    row = JobRequest.objects.get(uuid=request.uuid)
    assert (row.trace_id, row.span_id) == stored(producer.context)


def test_ids_are_stored_only_for_sampled_traces(spans):
    from app.jobs import RecordJob

    unsampled_parent = NonRecordingSpan(
        SpanContext(trace_id=0x1234, span_id=0x5678, is_remote=True, trace_flags=TraceFlags(TraceFlags.DEFAULT))
    )
    with trace.use_span(unsampled_parent):
        request = RecordJob("unsampled").run_in_worker()
    assert (request.trace_id, request.span_id) == (None, None)
    assert spans.of_kind(SpanKind.PRODUCER) == []

    sampled = RecordJob("sampled").run_in_worker()
    assert sampled.trace_id and sampled.span_id


def test_nothing_is_stored_without_an_sdk(db):
    """A fresh process with only opentelemetry-api configured stores no trace ids."""
    script = (
        "import plain.runtime; plain.runtime.setup(); "
        "from opentelemetry import trace; from app.jobs import RecordJob; "
        "request = RecordJob('no-sdk').run_in_worker(); "
        "print(type(trace.get_tracer_provider()).__name__, request.trace_id, request.span_id)"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=TESTS_DIR, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ProxyTracerProvider", "None", "None"]


def test_bulk_enqueue_shares_one_producer_span(spans):
    from app.jobs import RecordJob

    from plain.worker import Job

    requests = Job.run_in_worker_bulk([RecordJob("b1"), RecordJob("b2"), RecordJob("b3")])
    producer = spans.one(SpanKind.PRODUCER)
    assert {(request.trace_id, request.span_id) for request in requests} == {stored(producer.context)}


def run_inline(job_class: str, args: list, trace_id: str | None, span_id: str | None) -> Any:
    """Run one job through the worker's execute() in this process (as run-job does)."""
    from plain.worker.execution import Task, execute

    task = Task(
        "job-uuid-1",
        "request-uuid-1",
        job_class,
        {"args": args, "kwargs": {}},
        "default",
        0,
        0,
        0,
        "",
        trace_id,
        span_id,
    )
    return execute(task)


def test_execution_is_a_consumer_span_in_a_new_trace_linked_to_the_producer(spans):
    trace_id, span_id = "0x" + "ab" * 16, "0x" + "cd" * 8
    outcome = run_inline("app.jobs.RecordJob", ["inline"], trace_id, span_id)
    assert outcome.status == "SUCCESSFUL"

    consumer = spans.one(SpanKind.CONSUMER)
    assert consumer.name == "process default"
    assert consumer.parent is None
    assert consumer.context.trace_id != int(trace_id, 16)
    assert [stored(link.context) for link in consumer.links] == [(trace_id, span_id)]
    assert consumer.status.status_code == StatusCode.UNSET
    assert consumer.events == ()
    attributes = dict(consumer.attributes)
    assert attributes["messaging.system"] == MESSAGING_SYSTEM
    assert attributes["messaging.operation.type"] == "process"
    assert attributes["messaging.destination.name"] == "default"
    assert attributes["messaging.message.id"] == "request-uuid-1"
    assert attributes["plain.worker.job.uuid"] == "job-uuid-1"
    assert attributes["plain.worker.job.class"] == "app.jobs.RecordJob"
    assert attributes["plain.worker.job.retry_attempt"] == 0


def test_a_failed_execution_has_error_status_and_the_exception(spans):
    outcome = run_inline("app.jobs.FailingJob", ["boom"], None, None)
    assert outcome.status == "ERRORED"

    consumer = spans.one(SpanKind.CONSUMER)
    assert consumer.links == ()
    assert consumer.status.status_code == StatusCode.ERROR
    assert consumer.status.description == "ValueError: deliberate failure for boom"
    [event] = consumer.events
    assert event.name == "exception"
    assert event.attributes["exception.type"] == "ValueError"
    assert event.attributes["exception.message"] == "deliberate failure for boom"
    assert "app/jobs.py" in event.attributes["exception.stacktrace"]


def test_malformed_stored_ids_give_no_link(spans):
    run_inline("app.jobs.RecordJob", ["bad-ids"], "not-hex", "0x00")
    assert spans.one(SpanKind.CONSUMER).links == ()


def test_web_request_to_job_in_a_worker_process(spans, settings, worker, tmp_path):
    """The trace crosses two processes: request -> PRODUCER here, CONSUMER in the worker's job process."""
    from app.jobs import FailingJob
    from plain.test import Client

    from plain.worker.models import JobResult

    settings.URLS_ROUTER = "app.web.WebRouter"
    response = Client().post("/enqueue/across/")
    assert response.status_code == 200, response.content
    enqueued = json.loads(response.content)

    server = spans.one(SpanKind.SERVER)
    producer = spans.one(SpanKind.PRODUCER)
    assert server.context.span_id in spans.ancestors(producer), "the PRODUCER span is inside the request's span"
    assert (enqueued["trace_id"], enqueued["span_id"]) == stored(producer.context)

    with trace.get_tracer("test").start_as_current_span("enqueue a failure"):
        failing = FailingJob("across-fail").run_in_worker()
    failing_producer = [span for span in spans.of_kind(SpanKind.PRODUCER) if span is not producer]
    assert len(failing_producer) == 1

    span_file = tmp_path / "worker-spans.jsonl"
    process = worker(env={**ADMIN_ENV, "PLAINWORKER_TEST_SPANS": str(span_file)})
    wait_until(lambda: JobResult.objects.count() == 2, message="both jobs to finish")
    assert process.stop() == 0, process.log_path.read_text()

    consumers = {
        span["attributes"]["messaging.message.id"]: span
        for span in read_span_file(span_file)
        if span["kind"] == "CONSUMER"
    }
    assert set(consumers) == {enqueued["uuid"], str(failing.uuid)}

    ok = consumers[enqueued["uuid"]]
    assert ok["links"] == [{"trace_id": enqueued["trace_id"][2:], "span_id": enqueued["span_id"][2:]}]
    assert ok["trace_id"] != enqueued["trace_id"][2:]
    assert ok["parent_span_id"] is None
    assert ok["status"] == "UNSET"
    assert ok["pid"] not in (os.getpid(), process.pid), "the job runs in one of the worker's job processes"
    result = JobResult.objects.get(job_request_uuid=enqueued["uuid"])
    assert ok["attributes"]["plain.worker.job.uuid"] == str(result.job_uuid)

    bad = consumers[str(failing.uuid)]
    assert bad["links"] == [{"trace_id": failing.trace_id[2:], "span_id": failing.span_id[2:]}]
    assert (failing.trace_id, failing.span_id) == stored(failing_producer[0].context)
    assert bad["status"] == "ERROR"
    assert bad["status_description"] == "ValueError: deliberate failure for across-fail"
    assert [event["name"] for event in bad["events"]] == ["exception"]
    assert bad["events"][0]["attributes"]["exception.type"] == "ValueError"
