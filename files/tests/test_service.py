"""The service as production runs it: gunicorn with deploy/gunicorn.conf.py, real HTTP."""

from __future__ import annotations

import http.client
import json
import socket
from concurrent.futures import ThreadPoolExecutor

from testing.conditions import eventually
from testing.fixtures import SERVICE_CHUNK_SIZE
from testing.uploads import download, payload, sha256, unfinished_upload, upload

C = SERVICE_CHUNK_SIZE


def test_health_is_ok(service):
    assert service.request("GET", "/health")[::2] == (200, b"OK")


def test_admin_static_files_are_served_with_debug_off(service):
    status, headers, body = service.request("GET", "/static/admin/css/base.css")

    assert status == 200
    assert headers["Content-Type"].startswith("text/css")
    assert b"body" in body


def test_eight_uploads_and_eight_downloads_at_once_are_all_correct(service):
    datas = [payload(size, seed=1) for size in (0, 1, C - 1, C, C + 1, 5 * C, 7 * C + 3, 11 * C)]
    first = [upload(service, data) for data in datas]

    with ThreadPoolExecutor(16) as pool:
        uploads = [pool.submit(upload, service, data, f"up{i}.bin") for i, data in enumerate(datas)]
        downloads = [pool.submit(download, service, body["file_id"]) for body in first]
        uploaded = [future.result() for future in uploads]
        downloaded = [future.result() for future in downloads]

    assert downloaded == datas
    assert [body["sha256"] for body in uploaded] == [sha256(data) for data in datas]
    assert [download(service, body["file_id"]) for body in uploaded] == datas


def test_chunked_transfer_encoding_upload(service):
    data = payload(3 * C + 11)
    connection = service.connection()
    pieces = (data[i : i + 10_000] for i in range(0, len(data), 10_000))
    connection.request("PUT", "/write?name=piped.bin", body=pieces, encode_chunked=True)
    response = connection.getresponse()
    body = json.loads(response.read())
    connection.close()

    assert response.status == 201, body
    assert body["file_size"] == len(data)
    assert download(service, body["file_id"]) == data


def test_client_gone_mid_upload_keeps_nothing(service):
    files_before = service.count_files()
    objects_before = {item.key for item in service.store.list()}

    def new_objects() -> set[str]:
        return {item.key for item in service.store.list()} - objects_before

    with socket.create_connection(("127.0.0.1", service.port)) as sock:
        sock.sendall(unfinished_upload("half.bin", declared=6 * C, sent=3 * C + 100))
        # The server has stored the three complete chunks; then the client vanishes.
        eventually(lambda: len(new_objects()) >= 3)
    access_line = '"PUT /write?name=half.bin HTTP/1.1" 400'
    eventually(lambda: access_line in service.log_text())

    assert {item.key for item in service.store.list()} == objects_before
    assert service.count_files() == files_before


def test_client_that_stalls_mid_upload_times_out_and_keeps_nothing(service):
    files_before = service.count_files()
    objects_before = {item.key for item in service.store.list()}
    with socket.create_connection(("127.0.0.1", service.port)) as sock:
        # part of the body, then nothing more, with the connection left open
        sock.sendall(unfinished_upload("stalled.bin", declared=6 * C, sent=2 * C + 10))
        sock.settimeout(15)
        # The headers and the body may arrive in separate packets: read the whole response.
        answer = http.client.HTTPResponse(sock)
        answer.begin()
        body = answer.read()

    assert answer.status == 400  # after UPLOAD_IDLE_TIMEOUT_SECONDS (2 here)
    assert json.loads(body)["error"] == "incomplete_body"
    assert {item.key for item in service.store.list()} == objects_before
    assert service.count_files() == files_before


def test_every_worker_records_its_traces_for_the_admin(service):
    datas = [payload(size, seed=2) for size in (C, 3 * C, 10 * C)]
    file_ids = [upload(service, data)["file_id"] for data in datas]

    def read(file_id: str) -> str:
        status, headers, _ = service.request("GET", f"/read/{file_id}")
        assert status == 200
        return headers["traceresponse"].split("-")[1]

    with ThreadPoolExecutor(8) as pool:
        trace_ids = set(pool.map(read, file_ids * 4))
    wanted = ", ".join(f"'{trace_id}'" for trace_id in trace_ids)
    query = f"SELECT name, span_count FROM traces_recordedtrace WHERE trace_id IN ({wanted})"

    def every_trace_recorded() -> list[tuple]:
        # A trace's spans can reach the database in several batches (the root span ends last).
        rows = service.sql(query)
        if len(rows) == len(trace_ids) and {name for name, _ in rows} == {"GET /read/{file_id}"}:
            return rows
        return []

    rows = eventually(every_trace_recorded)

    assert len(rows) == len(trace_ids) == 12
    assert {name for name, _ in rows} == {"GET /read/{file_id}"}
    # root, read_file, cache_lookup, fetch_chunk_metadata, fetch_chunks_parallel,
    # reassemble_chunks and a download per chunk, at the least
    assert all(span_count >= 7 for _, span_count in rows)
