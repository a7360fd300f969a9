"""WebDAV in traces and metrics: dav.PUT holds the same write_file tree as PUT /write, dav.GET the
read_file tree with its parallel chunk downloads, and every method is counted by name."""

from __future__ import annotations

import pytest
from opentelemetry.trace import SpanKind

from metrics.tests.test_metrics import grew, http, scrape
from testing.fixtures import TEST_CHUNK_SIZE
from testing.uploads import payload
from testing.wsgi_client import Trace, call_wsgi

pytestmark = pytest.mark.django_db

C = TEST_CHUNK_SIZE


def test_a_put_is_the_write_tree_under_dav_put(spans):
    response = call_wsgi("PUT", "/dav/traced.bin", body=payload(3 * C + 1))
    trace = Trace.of(spans, response)

    assert response.status == 201
    (root,) = trace.roots
    assert (root.name, root.kind) == ("PUT /dav/{path}", SpanKind.SERVER)
    put = trace.one("dav.PUT")
    assert trace.children(root) == [put]
    assert put.attributes["dav.path"] == "/traced.bin"
    # beside the database's own spans (finding the folder), the write's whole tree
    ours = [span.name for span in trace.children(put) if not span.name.isupper()]
    assert ours == ["write_file"]
    uploads = trace.children(trace.one("upload_chunks"))
    assert sorted(span.name for span in uploads) == [f"upload_chunk_{i}" for i in range(4)]


def test_a_get_is_the_read_tree_with_its_parallel_downloads_under_dav_get(spans):
    data = payload(5 * C)
    call_wsgi("PUT", "/dav/read.bin", body=data)
    spans.clear()

    response = call_wsgi("GET", "/dav/read.bin")
    trace = Trace.of(spans, response)

    assert response.body == data
    get = trace.one("dav.GET")
    read = trace.one("read_file")
    assert read.parent.span_id == get.context.span_id
    downloads = trace.children(trace.one("fetch_chunks_parallel"))
    assert sorted(span.name for span in downloads) == [f"download_chunk_{i}" for i in range(5)]


def test_every_webdav_method_is_counted_by_its_name(client):
    before = scrape(client)

    call_wsgi("MKCOL", "/dav/m")
    call_wsgi("PROPFIND", "/dav/m", headers={"Depth": "1"})
    call_wsgi("MOVE", "/dav/m", headers={"Destination": "/dav/n"})
    call_wsgi("PROPFIND", "/dav/m", headers={"Depth": "0"})

    after = scrape(client)
    count = "http_server_request_duration_seconds_count"
    assert grew(before, after, http(count, "MKCOL", "/dav/{path}", 201)) == 1
    assert grew(before, after, http(count, "PROPFIND", "/dav/{path}", 207)) == 1
    assert grew(before, after, http(count, "MOVE", "/dav/{path}", 201)) == 1
    assert grew(before, after, http(count, "PROPFIND", "/dav/{path}", 404)) == 1
