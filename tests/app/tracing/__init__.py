"""Test-only OpenTelemetry SDK setup: spans of every process go to one JSON-lines file.

Installed by ``app.settings_admin``. When PLAINWORKER_TEST_SPANS names a file,
each process that sets up Plain (the web server, the worker's main process and
every spawned job process) installs a TracerProvider whose spans are appended
to that file as they end (apart from plain.models' one span per query, which
would bury the rest). Without the variable it does nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SPANS_FILE_ENV = "PLAINWORKER_TEST_SPANS"


def _hex(value: int, width: int) -> str:
    return f"{value:0{width}x}"


def span_record(span: Any) -> dict[str, Any]:
    """A finished SDK span as plain JSON data."""
    context = span.get_span_context()
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": _hex(context.trace_id, 32),
        "span_id": _hex(context.span_id, 16),
        "parent_span_id": _hex(span.parent.span_id, 16) if span.parent else None,
        "links": [
            {"trace_id": _hex(link.context.trace_id, 32), "span_id": _hex(link.context.span_id, 16)}
            for link in span.links
        ],
        "status": span.status.status_code.name,
        "status_description": span.status.description,
        "attributes": dict(span.attributes or {}),
        "events": [{"name": event.name, "attributes": dict(event.attributes or {})} for event in span.events],
        "pid": os.getpid(),
    }


def install(path: str) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        SimpleSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class JsonLinesExporter(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            lines = "".join(
                json.dumps(span_record(span)) + "\n"
                for span in spans
                if not (span.instrumentation_scope and span.instrumentation_scope.name == "plain.models")
            )
            with open(path, "a") as file:
                file.write(lines)
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesExporter()))
    trace.set_tracer_provider(provider)


def read_spans(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
