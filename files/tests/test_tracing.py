"""The span tree of every operation, through the real WSGI application and its tracing
middleware."""

from __future__ import annotations

import json

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from files.storage import chunk_key
from testing.fixtures import TEST_CHUNK_SIZE, delayed
from testing.uploads import WithToken, payload, send, upload
from testing.users import make_user
from testing.wsgi_client import TRACERESPONSE, Trace, call_wsgi, wsgi_app

pytestmark = pytest.mark.django_db

C = TEST_CHUNK_SIZE
# The spans under each download_chunk_{i} and upload_chunk_{i}, by store: boto3's own, or one
# per call of a Django storage backend (whose library's spans, if any, lie beneath it).
DJANGO_CALLS = {"get": ["Storage.open"], "put": ["Storage.save"]}
STORE_CALLS = {
    "filesystem": {"get": [], "put": []},
    "s3": {"get": ["S3.GetObject"], "put": ["S3.PutObject"]},
    "django-s3": DJANGO_CALLS,
    "django-azure": DJANGO_CALLS,
    "django-sftp": DJANGO_CALLS,
}


def read_trace(spans, file_id: str) -> tuple[Trace, object]:
    spans.clear()
    response = call_wsgi("GET", f"/read/{file_id}")
    return Trace.of(spans, response), response


@pytest.mark.both_stores
def test_read_of_ten_chunks_has_the_span_tree_of_the_spec(spans, store_kind):
    data = payload(10 * C)
    file_id = upload(wsgi_app, data, "traced.bin")["file_id"]

    trace, response = read_trace(spans, file_id)

    assert response.status == 200
    assert response.body == data
    (root,) = trace.roots
    assert (root.name, root.kind) == ("GET /read/{file_id}", SpanKind.SERVER)
    read = trace.one("read_file")
    assert trace.children(root) == [read]
    assert {
        "cache_lookup",
        "db_lookup",
        "fetch_chunk_metadata",
        "fetch_chunks_parallel",
        "reassemble_chunks",
    } == trace.child_names(read)
    assert read.attributes["file.id"] == file_id
    assert read.attributes["file.size"] == 10 * C
    assert read.attributes["file.chunk_count"] == 10
    assert read.attributes["file.name"] == "traced.bin"
    fetch = trace.one("fetch_chunks_parallel")
    downloads = trace.children(fetch)
    assert sorted(span.name for span in downloads) == sorted(
        f"download_chunk_{i}" for i in range(10)
    )
    for span in downloads:
        index = span.attributes["chunk.index"]
        assert span.name == f"download_chunk_{index}"
        assert span.attributes["chunk.size"] == C
        assert span.attributes["chunk.key"] == chunk_key(file_id, index)
        assert [child.name for child in trace.children(span)] == STORE_CALLS[store_kind]["get"]
    assert len({span.context.trace_id for span in trace.spans}) == 1


def test_streamed_read_spans_all_lie_inside_the_server_span(spans):
    file_id = upload(wsgi_app, payload(10 * C), "traced.bin")["file_id"]

    trace, _response = read_trace(spans, file_id)

    (root,) = trace.roots
    for span in trace.spans:
        assert root.start_time <= span.start_time <= span.end_time <= root.end_time, span.name


def test_parallel_downloads_overlap_in_time(spans, settings, s3_server, monkeypatch):
    settings.MINIO_ENDPOINT = s3_server.endpoint
    from files.storage import get_store

    store = get_store()
    store.ensure_bucket()
    file_id = upload(wsgi_app, payload(10 * C), "traced.bin")["file_id"]
    # A small, fixed delay on every chunk fetch, so the fetches are certain to overlap.
    monkeypatch.setattr(store.objects, "get", delayed(store.objects.get, 0.05))

    trace, _response = read_trace(spans, file_id)

    downloads = trace.named("download_chunk_")
    assert len(downloads) == 10
    latest_start = max(span.start_time for span in downloads)
    earliest_end = min(span.end_time for span in downloads)
    assert latest_start < earliest_end  # every download was running at that moment


def test_cache_miss_then_hit(spans):
    file_id = upload(wsgi_app, payload(2 * C), "traced.bin")["file_id"]

    miss, _ = read_trace(spans, file_id)
    hit, _ = read_trace(spans, file_id)

    assert miss.one("cache_lookup").attributes["cache.hit"] is False
    assert miss.one("db_lookup").parent.span_id == miss.one("read_file").context.span_id
    assert hit.one("cache_lookup").attributes["cache.hit"] is True
    assert hit.named("db_lookup") == []


@pytest.mark.both_stores
def test_write_has_the_span_tree_of_the_spec(spans, store_kind):
    response = call_wsgi("PUT", "/write?name=w.bin", body=payload(3 * C + 1))
    file_id = json.loads(response.body)["file_id"]
    trace = Trace.of(spans, response)

    (root,) = trace.roots
    assert (root.name, root.kind) == ("PUT /write", SpanKind.SERVER)
    write = trace.one("write_file")
    assert trace.children(root) == [write]
    assert trace.child_names(write) == {
        "chunk_stream",
        "upload_chunks",
        "save_metadata",
        "invalidate_cache",
    }
    uploads = trace.children(trace.one("upload_chunks"))
    assert sorted(span.name for span in uploads) == [f"upload_chunk_{i}" for i in range(4)]
    for span in uploads:
        assert [child.name for child in trace.children(span)] == STORE_CALLS[store_kind]["put"]
    assert trace.children(trace.one("save_metadata"))  # the INSERTs, from the driver's spans
    assert write.attributes["file.id"] == file_id
    assert write.attributes["file.size"] == 3 * C + 1
    assert write.attributes["file.chunk_count"] == 4
    assert write.attributes["file.name"] == "w.bin"


def tus_patch(location: str, data: bytes, offset: int):
    headers = {
        "Tus-Resumable": "1.0.0",
        "Upload-Offset": str(offset),
        "Content-Type": "application/offset+octet-stream",
    }
    return call_wsgi("PATCH", location, body=data, headers=headers)


def our_children(trace: Trace, span) -> set[str]:
    return {name for name in trace.child_names(span) if not name.isupper()}  # not SQL's spans


@pytest.mark.both_stores
def test_resumable_upload_patches_have_the_span_tree_of_the_spec(spans, store_kind):
    data = payload(3 * C + 1)
    created = call_wsgi(
        "POST", "/uploads/", headers={"Tus-Resumable": "1.0.0", "Upload-Length": str(len(data))}
    )
    location = created.headers["Location"]
    upload_id = location.rsplit("/", 1)[1]
    assert Trace.of(spans, created).one("create_upload").attributes["file.id"] == upload_id

    spans.clear()
    first = tus_patch(location, data[: C + C // 2], 0)
    trace = Trace.of(spans, first)
    append = trace.one("append_upload")
    assert first.status == 204
    assert our_children(trace, append) == {
        "chunk_stream",
        "upload_chunks",
        "save_progress",
        "save_partial_chunk",
    }
    assert trace.one("save_partial_chunk").attributes["chunk.index"] == 1

    spans.clear()
    last = tus_patch(location, data[C + C // 2 :], C + C // 2)
    trace = Trace.of(spans, last)
    assert last.status == 204
    (root,) = trace.roots
    assert (root.name, root.kind) == ("PATCH /uploads/{upload_id}", SpanKind.SERVER)
    append = trace.one("append_upload")
    assert trace.children(root) == [append]
    assert our_children(trace, append) == {
        "chunk_stream",
        "upload_chunks",
        "save_progress",
        "save_metadata",
        "invalidate_cache",
    }
    uploads = trace.children(trace.one("upload_chunks"))
    assert sorted(span.name for span in uploads) == [f"upload_chunk_{i}" for i in (1, 2, 3)]
    assert append.attributes["file.id"] == upload_id
    assert append.attributes["upload.offset"] == C + C // 2
    assert append.attributes["upload.new_offset"] == 3 * C + 1
    last_progress = max(trace.named("save_progress"), key=lambda span: span.end_time)
    assert last_progress.attributes["upload.chunk_count"] == 4


def test_a_final_upload_reads_back_only_its_later_parts_to_hash_them(spans):
    tus = {"Tus-Resumable": "1.0.0"}
    parts = []
    for size in (C, 2 * C):
        created = call_wsgi(
            "POST",
            "/uploads/",
            headers={**tus, "Upload-Length": str(size), "Upload-Concat": "partial"},
        )
        parts.append(created.headers["Location"])
        assert tus_patch(parts[-1], payload(size), 0).status == 204
    spans.clear()

    final = call_wsgi(
        "POST", "/uploads/", headers={**tus, "Upload-Concat": "final;" + " ".join(parts)}
    )

    trace = Trace.of(spans, final)
    concatenate = trace.one("concatenate_uploads")
    assert trace.children(trace.one("create_upload")).count(concatenate) == 1
    assert {"fetch_chunks_parallel", "save_metadata", "invalidate_cache"} <= our_children(
        trace, concatenate
    )
    read_back = trace.children(trace.one("fetch_chunks_parallel"))
    assert sorted(span.name for span in read_back) == ["download_chunk_1", "download_chunk_2"]


def test_corrupt_chunk_before_the_headers_is_an_error_span(spans, store):
    file_id = upload(wsgi_app, payload(3 * C), "traced.bin")["file_id"]
    store.put(chunk_key(file_id, 0), payload(C, seed=3))

    trace, response = read_trace(spans, file_id)

    assert response.status == 502
    for name in ("read_file", "fetch_chunks_parallel", "download_chunk_0"):
        span = trace.one(name)
        assert span.status.status_code == StatusCode.ERROR, name
    assert trace.one("read_file").events[0].name == "exception"


def test_corrupt_chunk_after_the_headers_is_an_error_on_every_level(spans, store):
    file_id = upload(wsgi_app, payload(6 * C), "traced.bin")["file_id"]
    store.put(chunk_key(file_id, 3), b"other bytes")

    trace, response = read_trace(spans, file_id)

    assert response.status == 200
    assert response.error is not None
    assert len(response.body) == 3 * C
    for name in ("read_file", "reassemble_chunks", "download_chunk_3"):
        assert trace.one(name).status.status_code == StatusCode.ERROR, name
    # Fetches already running when chunk 3 failed end in the background, after the request:
    # the server span is found by its kind, not by being the only span without a parent.
    (root,) = [span for span in trace.spans if span.kind == SpanKind.SERVER]
    assert root.status.status_code == StatusCode.ERROR


@pytest.mark.parametrize(
    ("method", "url", "span_name"),
    [
        ("PUT", "/write?name=a", "PUT /write"),
        ("GET", "/read/00000000-0000-0000-0000-000000000000", "GET /read/{file_id}"),
        ("GET", "/health", "GET /health"),
        ("GET", "/no/such/page", "GET"),
    ],
)
def test_every_response_carries_traceresponse_of_its_server_span(spans, method, url, span_name):
    spans.clear()
    response = call_wsgi(method, url, body=b"abc" if method == "PUT" else b"")

    (root,) = [span for span in spans.get_finished_spans() if span.kind == SpanKind.SERVER]
    match = TRACERESPONSE.match(response.headers["traceresponse"])
    assert match, response.headers["traceresponse"]
    assert match.groups() == (
        format(root.context.trace_id, "032x"),
        format(root.context.span_id, "016x"),
    )
    assert root.name == span_name


def test_upload_json_carries_no_tracing_fields():
    response = call_wsgi("PUT", "/write?name=a", body=b"abc")

    assert set(json.loads(response.body)) == {
        "file_id",
        "version_id",
        "path",
        "file_name",
        "file_size",
        "chunk_count",
        "sha256",
        "message",
    }


CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"


def server_span_of(spans, response):
    trace_id = int(TRACERESPONSE.match(response.headers["traceresponse"]).group(1), 16)
    (root,) = [
        span
        for span in spans.get_finished_spans()
        if span.kind == SpanKind.SERVER and span.context.trace_id == trace_id
    ]
    return root


@pytest.mark.parametrize("trusted", [False, True], ids=["untrusted", "trusted"])
def test_a_clients_unsampled_traceparent_never_switches_our_recording_off(spans, settings, trusted):
    settings.OTEL_TRUST_INCOMING_CONTEXT = trusted
    spans.clear()

    response = call_wsgi(
        "PUT",
        "/write?name=a",
        body=b"abc",
        headers={"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-00"},
    )

    assert response.headers["traceresponse"].endswith("-01")
    names = {span.name for span in spans.get_finished_spans()}
    assert {"PUT /write", "write_file", "upload_chunks"} <= names


def test_an_untrusted_client_context_is_a_link_not_our_parent(spans):
    spans.clear()
    headers = {"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01", "tracestate": "vendor=1"}

    response = call_wsgi("GET", "/health", headers=headers)

    root = server_span_of(spans, response)
    assert format(root.context.trace_id, "032x") != CLIENT_TRACE
    assert root.parent is None
    (link,) = root.links
    assert format(link.context.trace_id, "032x") == CLIENT_TRACE
    assert format(link.context.span_id, "016x") == CLIENT_SPAN


def test_two_clients_sending_one_trace_id_get_a_trace_each(spans):
    spans.clear()
    headers = {"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"}

    first = call_wsgi("GET", "/health", headers=headers)
    second = call_wsgi("GET", "/health", headers=headers)

    assert first.headers["traceresponse"][3:35] != second.headers["traceresponse"][3:35]


def test_a_trusted_client_context_makes_us_part_of_its_trace(spans, settings):
    settings.OTEL_TRUST_INCOMING_CONTEXT = True
    spans.clear()

    response = call_wsgi(
        "GET", "/health", headers={"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"}
    )

    root = server_span_of(spans, response)
    assert format(root.context.trace_id, "032x") == CLIENT_TRACE
    assert format(root.parent.span_id, "016x") == CLIENT_SPAN


@pytest.mark.django_db
def test_operation_spans_carry_the_acting_user(client, spans, settings):
    settings.API_OPEN = False
    _, token = make_user("tracy")
    as_tracy = WithToken(client, token)

    file_id = upload(as_tracy, payload(3 * TEST_CHUNK_SIZE))["file_id"]
    send(as_tracy, "GET", f"/read/{file_id}")
    send(as_tracy, "DELETE", f"/files/{file_id}")

    trace = Trace(spans.get_finished_spans())
    for name in ("write_file", "read_file", "trash"):
        assert trace.one(name).attributes["enduser.id"] == "tracy", name


@pytest.mark.django_db
def test_the_open_apis_spans_say_anonymous(client, spans):
    upload(client, payload(10))

    assert Trace(spans.get_finished_spans()).one("write_file").attributes["enduser.id"] == (
        "anonymous"
    )


@pytest.mark.django_db
def test_the_trees_operations_have_spans_with_their_ids_and_paths_and_no_token(
    client, spans, settings
):
    settings.API_OPEN = False
    _, token = make_user("trees")
    as_user = WithToken(client, token)
    file_id = json.loads(send(as_user, "PUT", "/write?path=/a/f.txt", b"one").body)["file_id"]
    assert send(as_user, "PUT", "/write?path=/a/f.txt", b"two").status == 200  # version 2
    moves = [
        ("POST", "/folders", {"path": "/b"}),
        ("POST", f"/files/{file_id}/move", {"path": "/b/g.txt"}),
        ("POST", f"/files/{file_id}/copy", {"path": "/b/h.txt"}),
        ("POST", f"/files/{file_id}/versions/{file_id}/restore", None),
        ("GET", "/files?path=/b", None),
        ("DELETE", f"/files/{file_id}", None),
    ]
    for method, path, body in moves:
        data = json.dumps(body).encode() if body else b""
        reply = send(as_user, method, path, data, {"Content-Type": "application/json"})
        assert reply.status < 300, (path, reply.body)
    (item,) = json.loads(send(as_user, "GET", "/trash").body)["entries"]
    assert send(as_user, "POST", f"/trash/{item['trash_id']}/restore").status == 200
    assert send(as_user, "DELETE", f"/files/{file_id}").status == 204
    (item,) = json.loads(send(as_user, "GET", "/trash").body)["entries"]
    assert send(as_user, "DELETE", f"/trash/{item['trash_id']}").status == 204

    finished = spans.get_finished_spans()
    by_name = {span.name: span for span in finished}
    assert by_name["create_folder"].attributes["folder.path"] == "/b"
    assert by_name["move_file"].attributes["entry.id"] == file_id
    assert by_name["move_file"].attributes["entry.path"] == "/b/g.txt"
    assert by_name["copy_file"].attributes["entry.path"] == "/b/h.txt"
    assert by_name["restore_version"].attributes["version.id"] == file_id
    assert by_name["list_folder"].attributes["entries"] == 2
    assert by_name["restore"].attributes["entry.path"] == "/b/g.txt"
    assert "trash.id" in by_name["purge"].attributes
    assert [span.attributes["entry.id"] for span in finished if span.name == "trash"] == [
        file_id,
        file_id,
    ]
    for span in finished:
        assert token not in json.dumps(dict(span.attributes or {})), span.name
        assert span.attributes.get("enduser.id") in (None, "trees"), span.name
