"""Tracing through the real process model: gunicorn workers export over OTLP/HTTP."""

from __future__ import annotations

import json

import pytest

from testing.conditions import eventually
from testing.fixtures import SERVICE_CHUNK_SIZE
from testing.servers import EMBEDDED, BlackHole, GunicornServer, OtlpReceiver
from testing.uploads import payload
from testing.wsgi_client import TRACERESPONSE

C = SERVICE_CHUNK_SIZE


def start_service(tmp_path, jaeger_endpoint: str, otlp_timeout: int = 5) -> GunicornServer:
    # The embedded stack: these tests are about the export, not the backends.
    return GunicornServer(
        tmp_path,
        **EMBEDDED,
        CHUNK_SIZE_BYTES=str(C),
        JAEGER_ENDPOINT=jaeger_endpoint,
        OTEL_BSP_SCHEDULE_DELAY="100",  # export every 0.1 s instead of every 5 s
        OTLP_TIMEOUT_SECONDS=str(otlp_timeout),
    )


@pytest.fixture
def receiver():
    otlp = OtlpReceiver()
    yield otlp
    otlp.stop()


def test_gunicorn_worker_exports_the_read_tree_to_an_otlp_receiver(tmp_path, receiver):
    service = start_service(tmp_path, receiver.endpoint)
    try:
        status, _, body = service.request("PUT", "/write?name=ten.bin", body=payload(10 * C))
        assert status == 201
        status, headers, _ = service.request("GET", f"/read/{json.loads(body)['file_id']}")
        assert status == 200
        trace_id = TRACERESPONSE.match(headers["traceresponse"]).group(1)
        eventually(lambda: len(receiver.trace(trace_id)) >= 16)
    finally:
        service.stop()

    spans = receiver.trace(trace_id)
    by_id = {span["span_id"]: span for span in spans}
    (root,) = [span for span in spans if span["parent_id"] not in by_id]
    assert root["name"] == "GET /read/{file_id}"
    assert {span["path"] for span in spans} == {"/v1/traces"}
    assert {span["service"] for span in spans} == {"labdropbox-service"}

    def parent_name(span: dict) -> str:
        return by_id[span["parent_id"]]["name"]

    downloads = [span for span in spans if span["name"].startswith("download_chunk_")]
    assert len(downloads) == 10
    assert {parent_name(span) for span in downloads} == {"fetch_chunks_parallel"}
    for name in ("cache_lookup", "db_lookup", "fetch_chunks_parallel", "reassemble_chunks"):
        (span,) = [span for span in spans if span["name"] == name]
        assert parent_name(span) == "read_file"
    for span in spans:
        assert root["start"] <= span["start"] <= span["end"] <= root["end"], span["name"]


def test_a_stalled_collector_slows_and_fails_no_request(tmp_path):
    """An export that hangs (for up to a minute here) holds up no request: every request runs
    to its answer while the collector holds the worker's export unanswered — a request that
    waited on it would pass the client's 30 s timeout."""
    hole = BlackHole()
    service = start_service(tmp_path, f"127.0.0.1:{hole.port}", otlp_timeout=60)
    try:
        assert service.request("GET", "/health")[0] == 200
        status, _, body = service.request("PUT", "/write?name=first", body=payload(3 * C))
        assert status == 201
        eventually(lambda: hole.holding >= 1)  # the worker's exporter is stuck in an export
        for index in range(15):
            status, _, body = service.request("PUT", f"/write?name={index}", body=payload(3 * C))
            assert status == 201
            status, _, data = service.request("GET", f"/read/{json.loads(body)['file_id']}")
            assert (status, data) == (200, payload(3 * C))
        assert hole.holding >= 1  # still stuck: all of the above ran beside it
    finally:
        hole.stop()  # the export fails at once, so the worker's exit does not wait on it
        service.stop()
