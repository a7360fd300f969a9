"""The built-in trace recorder: finished spans kept in the database for the admin's waterfall.

A SpanExporter behind its own BatchSpanProcessor: the request thread only queues a finished span;
the processor's background thread writes them in batches, so recording never slows a request.
Every gunicorn worker records its own requests into the shared database, beside the OTLP export.

Only traces of the service's own work are kept (those with a span from the `labdropbox.files`
tracer): a health probe or an admin page view is not. The newest TRACE_RECORDER_KEEP are kept.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

from django.db import close_old_connections, transaction
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import StatusCode

log = logging.getLogger(__name__)

APP_SCOPE = "labdropbox.files"
# A 10 GiB read is 10,240 chunk downloads: past this many spans a waterfall is not readable.
MAX_SPANS_PER_TRACE = 1000


def recorder_processor(keep: int) -> BatchSpanProcessor:
    # A short delay: a trace shows up in the admin about a second after its request.
    return BatchSpanProcessor(DatabaseSpanExporter(keep), schedule_delay_millis=1000)


class DatabaseSpanExporter(SpanExporter):
    def __init__(self, keep: int) -> None:
        self.keep = keep

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        # The database writes below must not themselves be traced (and recorded, and traced…).
        with suppress_instrumentation():
            close_old_connections()  # this thread lives long: drop connections gone stale
            try:
                record_spans(spans, self.keep)
            except Exception:
                log.warning("trace recorder could not store %d spans", len(spans), exc_info=True)
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        close_old_connections()


def hex_id(number: int, width: int) -> str:
    return format(number, f"0{width}x")


def record_spans(spans: Sequence[ReadableSpan], keep: int) -> None:
    """Store the spans of traces worth keeping, update their summaries, drop the oldest traces."""
    from files.models import RecordedSpan, RecordedTrace

    by_trace: dict[str, list[ReadableSpan]] = defaultdict(list)
    for span in spans:
        by_trace[hex_id(span.context.trace_id, 32)].append(span)
    with transaction.atomic():
        known = RecordedTrace.objects.in_bulk(list(by_trace))
        for trace_id, trace_spans in by_trace.items():
            trace = known.get(trace_id)
            if trace is None and not any(_is_app_span(span) for span in trace_spans):
                continue
            room = MAX_SPANS_PER_TRACE - (trace.span_count if trace else 0)
            trace = summarize(trace, trace_id, trace_spans)
            trace.save()
            RecordedSpan.objects.bulk_create(
                [span_row(trace, span) for span in trace_spans[: max(room, 0)]],
                ignore_conflicts=True,
            )
        prune(keep)


def _is_app_span(span: ReadableSpan) -> bool:
    scope = span.instrumentation_scope
    return scope is not None and scope.name == APP_SCOPE


def summarize(trace, trace_id: str, spans: list[ReadableSpan]):
    """Fold a batch of a trace's spans into its summary row (spans of one trace can arrive in
    several batches: a streamed read's root span ends last)."""
    from files.models import RecordedTrace

    start_ns = min(span.start_time for span in spans)
    end_ns = max(span.end_time for span in spans)
    if trace is None:
        trace = RecordedTrace(trace_id=trace_id, name="", span_count=0, duration_ms=0)
    else:
        old_start = int(trace.started_at.timestamp() * 1e9)
        end_ns = max(end_ns, old_start + int(trace.duration_ms * 1e6))
        start_ns = min(start_ns, old_start)
    trace.started_at = datetime.fromtimestamp(start_ns / 1e9, tz=UTC)
    trace.duration_ms = (end_ns - start_ns) / 1e6
    trace.span_count += len(spans)
    for span in spans:
        attributes = span.attributes or {}
        if span.parent is None or span.parent.is_remote:
            trace.name = span.name  # the root: "GET /read/{file_id}"
        elif not trace.name and _is_app_span(span):
            trace.name = span.name  # until the root arrives
        if "file.id" in attributes:
            trace.file_id = attributes["file.id"]
        if "cache.hit" in attributes:
            trace.cache_hit = bool(attributes["cache.hit"])
        if span.status.status_code == StatusCode.ERROR:
            trace.error = True
    return trace


def span_row(trace, span: ReadableSpan):
    from files.models import RecordedSpan

    return RecordedSpan(
        trace=trace,
        span_id=hex_id(span.context.span_id, 16),
        parent_id=hex_id(span.parent.span_id, 16) if span.parent else "",
        name=span.name[:200],
        kind=span.kind.name,
        start_ns=span.start_time,
        end_ns=span.end_time,
        error=span.status.status_code == StatusCode.ERROR,
        status_message=span.status.description or "",
        attributes=dict(span.attributes or {}),
        events=[
            {"name": event.name, "time_ns": event.timestamp, **dict(event.attributes or {})}
            for event in span.events
        ],
    )


def prune(keep: int) -> None:
    """Keep the newest `keep` traces."""
    from files.models import RecordedSpan, RecordedTrace

    old = list(
        RecordedTrace.objects.order_by("-started_at", "trace_id").values_list(
            "trace_id", flat=True
        )[keep:]
    )
    if old:
        RecordedSpan.objects.filter(trace_id__in=old).delete()
        RecordedTrace.objects.filter(trace_id__in=old).delete()
