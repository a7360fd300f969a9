"""The built-in trace recorder: real spans from real requests, stored and pruned."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExportResult

from testing.fixtures import TEST_CHUNK_SIZE
from testing.uploads import payload
from testing.wsgi_client import Trace, call_wsgi
from traces.models import RecordedSpan, RecordedTrace
from traces.recorder import (
    DatabaseSpanExporter,
    RateLimitedProcessor,
    delete_traces,
    record_spans,
    recorder_processor,
)

pytestmark = pytest.mark.django_db

C = TEST_CHUNK_SIZE


def traced(spans, method: str, url: str, body: bytes = b""):
    """A request through the WSGI application, and the finished spans of its trace."""
    response = call_wsgi(method, url, body=body)
    return response, Trace.of(spans, response).spans


def test_a_read_is_recorded_with_its_summary_and_every_span(spans):
    _, write_spans = traced(spans, "PUT", "/write?name=r.bin", payload(4 * C))
    file_id = next(s.attributes["file.id"] for s in write_spans if s.name == "write_file")
    response, read_spans = traced(spans, "GET", f"/read/{file_id}")

    record_spans(read_spans, keep=10)

    trace = RecordedTrace.objects.get()
    root = next(s for s in read_spans if s.parent is None)
    assert trace.trace_id == format(root.context.trace_id, "032x")
    assert trace.name == "GET /read/{file_id}"
    assert str(trace.file_id) == file_id
    assert trace.cache_hit is False
    assert trace.error is False
    assert trace.span_count == len(read_spans) == RecordedSpan.objects.count()
    assert trace.duration_ms == pytest.approx((root.end_time - root.start_time) / 1e6)
    stored = RecordedSpan.objects.get(name="download_chunk_3")
    assert stored.attributes["chunk.index"] == 3
    assert RecordedSpan.objects.get(span_id=stored.parent_id).name == "fetch_chunks_parallel"
    assert response.status == 200


def test_spans_arriving_in_several_batches_make_one_trace(spans):
    _, write_spans = traced(spans, "PUT", "/write?name=b.bin", payload(2 * C))
    root = next(s for s in write_spans if s.parent is None)
    children = [s for s in write_spans if s is not root]

    record_spans(children, keep=10)
    record_spans([root], keep=10)

    trace = RecordedTrace.objects.get()
    assert trace.name == "PUT /write"
    assert trace.span_count == len(write_spans)


def test_requests_without_file_operations_are_not_recorded(spans):
    _, health_spans = traced(spans, "GET", "/health")

    record_spans(health_spans, keep=10)

    assert not RecordedTrace.objects.exists()
    assert health_spans  # there was a trace to ignore


def test_an_error_is_marked_on_the_trace_and_its_spans(spans):
    _, missing_spans = traced(spans, "GET", "/read/00000000-0000-0000-0000-000000000000")

    record_spans(missing_spans, keep=10)

    assert RecordedTrace.objects.get().error is True
    assert RecordedSpan.objects.get(name="read_file").error is True


def test_only_the_newest_traces_are_kept(spans):
    batches = []
    for index in range(7):
        _, batch = traced(spans, "PUT", f"/write?name={index}", b"x")
        batches.append(batch)
        time.sleep(0.002)

    for batch in batches:
        record_spans(batch, keep=5)

    kept = set(RecordedTrace.objects.values_list("trace_id", flat=True))
    newest = {format(batch[0].context.trace_id, "032x") for batch in batches[2:]}
    assert kept == newest
    assert set(RecordedSpan.objects.values_list("trace_id", flat=True)) == newest


def test_recording_happens_off_the_request_thread(monkeypatch):
    """While the recorder's database write is stuck, spans still end: they are only queued."""
    test_thread = threading.current_thread()
    stuck, release, unstuck = threading.Event(), threading.Event(), threading.Event()
    writer_threads: list[threading.Thread] = []
    exported: list[int] = []

    def stuck_export(self, batch):
        writer_threads.append(threading.current_thread())
        exported.append(len(batch))
        if threading.current_thread() is not test_thread:  # (there it would block the test)
            stuck.set()
            release.wait(15)  # a bound only for a recorder that would wait on its writer,
            release.set()  # and then once, not for every span
            unstuck.set()
        return SpanExportResult.SUCCESS

    monkeypatch.setattr(DatabaseSpanExporter, "export", stuck_export)
    processor = recorder_processor(keep=10, per_second=1000)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("labdropbox.files")

    try:
        with tracer.start_as_current_span("read_file"):
            pass
        assert stuck.wait(15), "the recorder never exported off the request thread"
        for _ in range(300):
            with tracer.start_as_current_span("read_file"):
                pass
        writer_was_stuck = not unstuck.is_set()
    finally:
        release.set()
        provider.shutdown()

    assert threading.current_thread() not in writer_threads
    assert writer_was_stuck  # 300 spans ended while the writer was stuck
    assert sum(exported) == 301  # each of them queued, and written once the writer was free


def test_under_load_whole_traces_are_sampled_at_the_set_rate():
    received = []

    class Collect(SpanProcessor):
        def on_end(self, span):
            received.append(span)

    processor = RateLimitedProcessor(Collect(), per_second=5)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    app = provider.get_tracer("labdropbox.files")
    library = provider.get_tracer("opentelemetry.instrumentation.botocore")

    for _ in range(40):  # 40 traces at once: a burst far above 5 a second
        with app.start_as_current_span("read_file"):
            with library.start_as_current_span("S3.GetObject"):
                pass
            with app.start_as_current_span("download_chunk_0"):
                pass

    traces = {span.context.trace_id for span in received if span.name == "read_file"}
    assert 5 <= len(traces) <= 6  # the bucket's burst (and a token more, on a very slow run)
    for span in received:  # every span of an admitted trace, none of a refused one's app spans
        if span.name != "S3.GetObject":
            assert span.context.trace_id in traces
    for trace_id in traces:
        names = sorted(s.name for s in received if s.context.trace_id == trace_id)
        assert names == ["S3.GetObject", "download_chunk_0", "read_file"]


def test_pruning_deletes_with_two_statements_however_many_spans(spans):
    for index in range(3):
        traced(spans, "PUT", f"/write?name={index}", payload(5 * C))
    record_spans(spans.get_finished_spans(), keep=10)
    trace_ids = list(RecordedTrace.objects.values_list("trace_id", flat=True))
    assert RecordedSpan.objects.count() > 30

    with CaptureQueriesContext(connection) as captured:
        delete_traces(trace_ids)

    deletes = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 2
    assert not RecordedSpan.objects.exists()


def test_traces_without_an_operation_never_reach_the_recorders_queue():
    received = []

    class Collect(SpanProcessor):
        def on_end(self, span):
            received.append(span)

    provider = TracerProvider()
    provider.add_span_processor(RateLimitedProcessor(Collect(), per_second=100))
    server = provider.get_tracer("opentelemetry.instrumentation.wsgi")

    with server.start_as_current_span("GET /health"):  # a probe: a root span and nothing else
        pass

    assert received == []
