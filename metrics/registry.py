"""Every metric the service exports, in one place (like files/spans.py for spans).

Names follow OpenTelemetry's semantic conventions where one exists (`http.server.request.duration`
becomes `http_server_request_duration_seconds`); the service's own start with `labdropbox_`.
Labels are bounded: route templates, methods, status codes, S3 operations and error codes —
never ids or names.

Under gunicorn every worker writes its samples to files in PROMETHEUS_MULTIPROC_DIR (set up by
deploy/gunicorn.conf.py) and /metrics adds them up, so a counter is exact whatever the number
of workers. Gauges of things in progress count only live workers (`livesum`).
"""

from __future__ import annotations

import functools
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.registry import Collector

# OpenTelemetry's advised boundaries for http.server.request.duration, in seconds.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
# Bodies: a bucket per power of 4 from 1 KiB to 16 GiB.
SIZE_BUCKETS = tuple(float(1024 * 4**power) for power in range(13))
HTTP_LABELS = ("http_request_method", "http_route", "http_response_status_code")

HTTP_DURATION = Histogram(
    "http_server_request_duration_seconds",
    "Duration of HTTP server requests, until the last byte of the body is sent.",
    HTTP_LABELS,
    buckets=DURATION_BUCKETS,
)
HTTP_ACTIVE = Gauge(
    "http_server_active_requests",
    "HTTP server requests being handled.",
    ("http_request_method",),
    multiprocess_mode="livesum",
)
HTTP_REQUEST_BODY = Histogram(
    "http_server_request_body_size_bytes",
    "Bytes of HTTP request bodies read.",
    HTTP_LABELS,
    buckets=SIZE_BUCKETS,
)
HTTP_RESPONSE_BODY = Histogram(
    "http_server_response_body_size_bytes",
    "Bytes of HTTP response bodies sent.",
    HTTP_LABELS,
    buckets=SIZE_BUCKETS,
)

S3_DURATION = Histogram(
    "labdropbox_s3_operation_duration_seconds",
    "Duration of S3 requests (with their retries), by operation.",
    ("operation",),
    buckets=DURATION_BUCKETS,
)
S3_ERRORS = Counter(
    "labdropbox_s3_errors",
    "S3 requests that failed, by operation and S3 error code (or `unreachable`).",
    ("operation", "code"),
)
STORAGE_CALL_DURATION = Histogram(
    "labdropbox_storage_call_duration_seconds",
    "Duration of calls of a Django storage backend (CHUNK_STORAGE=django), by Storage method.",
    ("method",),
    buckets=DURATION_BUCKETS,
)
STORAGE_CALL_ERRORS = Counter(
    "labdropbox_storage_call_errors",
    "Calls of a Django storage backend that failed, by Storage method and the error they "
    "became (ChunkNotFound, StorageUnavailable, StorageRejected).",
    ("method", "error"),
)
CHUNK_BYTES_READ = Counter("labdropbox_chunk_bytes_read", "Bytes of chunk objects read.")
CHUNK_BYTES_WRITTEN = Counter("labdropbox_chunk_bytes_written", "Bytes of chunk objects stored.")
CHUNK_VERIFICATION_FAILURES = Counter(
    "labdropbox_chunk_verification_failures",
    "Chunks read whose size or SHA-256 did not match their metadata (never served).",
)
CACHE_LOOKUPS = Counter(
    "labdropbox_metadata_cache_lookups",
    "File metadata looked up in the cache, by result (hit or miss).",
    ("result",),
)
READS_IN_PROGRESS = Gauge(
    "labdropbox_reads_in_progress", "File reads being sent.", multiprocess_mode="livesum"
)
UPLOADS_IN_PROGRESS = Gauge(
    "labdropbox_uploads_in_progress",
    "Uploads being received: PUT /write bodies and resumable-upload PATCHes.",
    ("kind",),
    multiprocess_mode="livesum",
)
DB_DURATION = Histogram(
    "db_client_operation_duration_seconds",
    "Duration of database queries, by operation (SELECT, INSERT, UPDATE, DELETE, other).",
    ("db_operation_name",),
    buckets=DURATION_BUCKETS,
)
TRACE_SPANS_DROPPED = Counter(
    "labdropbox_trace_recorder_dropped_spans",
    "Spans the built-in trace recorder did not keep (its queue was full, or over its rate).",
)


@functools.cache
def labelled(metric: Any, *values: str) -> Any:
    """`metric.labels(*values)`, looked up once: the library finds a child under the metric's
    lock, which costs more than observing it, and this runs several times per request. Labels
    are bounded, so is this cache."""
    return metric.labels(*values)


# Collectors that read their samples at scrape time (from the database, say): apps add theirs
# when they are ready (files.apps), so that this app needs to know none of them.
SCRAPE_COLLECTORS: list[Collector] = []
