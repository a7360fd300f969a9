"""The built-in trace recorder: finished spans kept in the database for the admin's waterfall.

A SpanExporter behind its own BatchSpanProcessor: the request thread only queues a finished span;
the processor's background thread writes them in batches, so recording never slows a request.
Every gunicorn worker records its own requests into the shared database, beside the OTLP export.

Only traces of the service's own work are kept (those with a span from one of the project's
`labdropbox.*` tracers): a health probe or an admin page view is not. At most
TRACE_RECORDER_PER_SECOND traces a second are recorded per worker — a busy server samples instead
of spending its CPU on traces no one will open — and the newest TRACE_RECORDER_KEEP are kept.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from opentelemetry.context import Context
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import StatusCode

from metrics.registry import TRACE_SPANS_DROPPED

if TYPE_CHECKING:
    from traces.models import RecordedTrace

log = logging.getLogger(__name__)

# The project's own tracers are named `labdropbox.<app>`; their spans mark a trace worth keeping.
APP_SCOPE_PREFIX = "labdropbox."
# A 10 GiB read is 10,240 chunk downloads: past this many spans a waterfall is not readable.
MAX_SPANS_PER_TRACE = 1000


def configured_recorder() -> RateLimitedProcessor | None:
    """The recorder as the settings ask for it (TRACE_RECORDER_KEEP 0: none)."""
    if not settings.TRACE_RECORDER_KEEP:
        return None
    return recorder_processor(settings.TRACE_RECORDER_KEEP, settings.TRACE_RECORDER_PER_SECOND)


def recorder_processor(keep: int, per_second: float) -> RateLimitedProcessor:
    # A short delay: a trace shows up in the admin about a second after its request.
    batch = BatchSpanProcessor(DatabaseSpanExporter(keep), schedule_delay_millis=1000)
    return RateLimitedProcessor(batch, per_second)


class RateLimitedProcessor(SpanProcessor):
    """Passes on whole traces, at most `per_second` a second (a token bucket).

    A trace is admitted or refused when its first `labdropbox.*` span ends, and every later
    span of it follows that decision. Spans that end before (a botocore or database span) are
    passed on: without an admitted operation span the exporter drops their trace anyway. A root
    span that ends undecided closes a trace with no operation in it (a health probe, an admin
    page): it is dropped here rather than queued for nothing.
    """

    REMEMBERED = 4096  # decisions kept, for traces whose spans are still ending

    def __init__(self, delegate: SpanProcessor, per_second: float) -> None:
        self.delegate = delegate
        self.per_second = per_second
        self._tokens = per_second
        self._refilled = time.monotonic()
        self._decisions: OrderedDict[int, bool] = OrderedDict()
        self._lock = threading.Lock()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if self._admitted(span):
            self.delegate.on_end(span)
        elif self._decisions.get(span.context.trace_id) is False:
            TRACE_SPANS_DROPPED.inc()  # a span of a trace over the rate

    def _admitted(self, span: ReadableSpan) -> bool:
        trace_id = span.context.trace_id
        with self._lock:
            decision = self._decisions.get(trace_id)
            if decision is not None:
                return decision
            if not _is_app_span(span):
                return not _is_root(span)
            now = time.monotonic()
            self._tokens = min(
                self.per_second, self._tokens + (now - self._refilled) * self.per_second
            )
            self._refilled = now
            decision = self._tokens >= 1
            if decision:
                self._tokens -= 1
            self._decisions[trace_id] = decision
            if len(self._decisions) > self.REMEMBERED:
                self._decisions.popitem(last=False)
            return decision

    def shutdown(self) -> None:
        self.delegate.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.delegate.force_flush(timeout_millis)


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
                TRACE_SPANS_DROPPED.inc(len(spans))
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        close_old_connections()


def hex_id(number: int, width: int) -> str:
    return format(number, f"0{width}x")


def record_spans(spans: Sequence[ReadableSpan], keep: int) -> None:
    """Store the spans of traces worth keeping, update their summaries, drop the oldest traces."""
    from traces.models import RecordedTrace

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
            is_new = trace is None
            trace = fold_into_summary(trace, trace_id, trace_spans)
            trace.save(force_insert=is_new)
            insert_spans([span_row(trace_id, span) for span in trace_spans[: max(room, 0)]])
        prune_oldest_traces(keep)


SPAN_FIELDS = (
    "trace",
    "span_id",
    "parent_id",
    "name",
    "kind",
    "start_ns",
    "end_ns",
    "error",
    "status_message",
    "attributes",
    "events",
)


def insert_spans(rows: list[tuple]) -> None:
    """One executemany INSERT: building a model instance per span was most of the recorder's
    cost (a 256-chunk read is 260 spans)."""
    from traces.models import RecordedSpan

    if not rows:
        return
    quote = connection.ops.quote_name
    column_of = {field.name: str(field.column) for field in RecordedSpan._meta.concrete_fields}
    columns = ", ".join(quote(column_of[name]) for name in SPAN_FIELDS)
    values = ", ".join(["%s"] * len(SPAN_FIELDS))
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {quote(RecordedSpan._meta.db_table)} ({columns}) VALUES ({values})",  # noqa: S608
            rows,
        )


def _is_root(span: ReadableSpan) -> bool:
    return span.parent is None or span.parent.is_remote


def _is_app_span(span: ReadableSpan) -> bool:
    scope = span.instrumentation_scope
    return scope is not None and scope.name.startswith(APP_SCOPE_PREFIX)


def fold_into_summary(
    trace: RecordedTrace | None, trace_id: str, spans: list[ReadableSpan]
) -> RecordedTrace:
    """Fold a batch of a trace's spans into its summary row (spans of one trace can arrive in
    several batches: a streamed read's root span ends last)."""
    from traces.models import RecordedTrace

    start_ns = min(span_times(span)[0] for span in spans)
    end_ns = max(span_times(span)[1] for span in spans)
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
        if _is_root(span):
            trace.name = span.name  # the root: "GET /read/{file_id}"
        elif not trace.name and _is_app_span(span):
            trace.name = span.name  # until the root arrives
        if "file.id" in attributes:
            trace.file_id = _uuid_or_none(attributes["file.id"]) or trace.file_id
        if "cache.hit" in attributes:
            trace.cache_hit = bool(attributes["cache.hit"])
        if span.status.status_code == StatusCode.ERROR:
            trace.error = True
    return trace


def span_times(span: ReadableSpan) -> tuple[int, int]:
    """A finished span's start and end, in nanoseconds since the epoch."""
    if span.start_time is None or span.end_time is None:
        raise ValueError(f"span {span.name} has not ended")
    return span.start_time, span.end_time


def _uuid_or_none(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def span_row(trace_id: str, span: ReadableSpan) -> tuple:
    """The span's values, in SPAN_FIELDS order."""
    events = [
        {"name": event.name, "time_ns": event.timestamp, **dict(event.attributes or {})}
        for event in span.events
    ]
    return (
        trace_id,
        hex_id(span.context.span_id, 16),
        hex_id(span.parent.span_id, 16) if span.parent else "",
        span.name[:200],
        span.kind.name,
        span.start_time,
        span.end_time,
        span.status.status_code == StatusCode.ERROR,
        span.status.description or "",
        json.dumps(dict(span.attributes or {}), default=str),
        json.dumps(events, default=str),
    )


def prune_oldest_traces(keep: int) -> None:
    """Keep the newest `keep` traces."""
    from traces.models import RecordedTrace

    old = list(
        RecordedTrace.objects.order_by("-started_at", "trace_id").values_list(
            "trace_id", flat=True
        )[keep:]
    )
    delete_traces(old)


def delete_traces(trace_ids: list[str]) -> None:
    """Delete traces and their spans: two DELETE statements, nothing loaded into memory."""
    from traces.models import RecordedSpan, RecordedTrace

    if trace_ids:
        with transaction.atomic():
            RecordedSpan.objects.filter(trace_id__in=trace_ids).delete()
            RecordedTrace.objects.filter(trace_id__in=trace_ids).delete()
