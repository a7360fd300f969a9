"""HEAD, Range, If-Range and conditional reads of GET /read/{id}."""

from __future__ import annotations

import random

import pytest
from django.utils.http import http_date

from files.storage import chunk_key
from testing.fixtures import TEST_CHUNK_SIZE
from testing.uploads import payload, sha256, upload
from testing.wsgi_client import Trace, call_wsgi, wsgi_app

pytestmark = pytest.mark.django_db

C = TEST_CHUNK_SIZE


def expected_slice(size: int, header: str) -> tuple[int, int]:
    """What RFC 9110 says `bytes=…` selects, written independently of the service's parser."""
    first, last = header.removeprefix("bytes=").split("-")
    if not first:
        return max(size - int(last), 0), size
    return int(first), min(int(last) + 1, size) if last else size


def range_cases() -> list[tuple[int, str]]:
    rng = random.Random(7)
    cases = []
    for size in (1, C - 1, C, C + 1, 3 * C, 3 * C + 17):
        headers = {
            "bytes=0-0",
            f"bytes=0-{size - 1}",
            f"bytes=0-{size + 100}",
            f"bytes={size - 1}-",
            "bytes=-1",
            f"bytes=-{size}",
            f"bytes=-{size + 5}",
            "bytes=5-" if size > 5 else "bytes=0-",
        }
        for boundary in range(C, size, C):  # around every chunk boundary
            headers |= {f"bytes={boundary - 1}-{boundary}", f"bytes={boundary}-{boundary + C - 1}"}
            headers |= {f"bytes=-{size - boundary}", f"bytes={boundary}-"}
        for _ in range(4):
            start = rng.randrange(size)
            headers.add(f"bytes={start}-{rng.randrange(start, size + 10)}")
        cases += [(size, header) for header in sorted(headers)]
    return cases


@pytest.mark.parametrize(("size", "header"), range_cases())
def test_range_returns_exactly_the_slice_and_fetches_only_its_chunks(spans, size, header):
    data = payload(size)
    file_id = upload(wsgi_app, data, "traced.bin")["file_id"]
    start, stop = expected_slice(size, header)

    response = call_wsgi("GET", f"/read/{file_id}", headers={"Range": header})

    assert response.status == 206
    assert response.body == data[start:stop]
    assert response.headers["Content-Range"] == f"bytes {start}-{stop - 1}/{size}"
    assert response.headers["Content-Length"] == str(stop - start)
    downloads = Trace.of(spans, response).named("download_chunk_")
    covered = sorted({offset // C for offset in range(start, stop)})
    assert sorted(span.attributes["chunk.index"] for span in downloads) == covered
    for span in downloads:  # a chunk only partly covered is fetched as an S3 byte range
        index = span.attributes["chunk.index"]
        part = (max(start - index * C, 0), min(stop - index * C, span.attributes["chunk.size"]))
        if part == (0, span.attributes["chunk.size"]):
            assert "chunk.range" not in span.attributes
        else:
            assert span.attributes["chunk.range"] == f"bytes={part[0]}-{part[1] - 1}"


@pytest.mark.both_stores
def test_ranged_reads_on_both_stores(client):
    data = payload(4 * C + 3)
    file_id = upload(client, data)["file_id"]

    for header, (start, stop) in {
        "bytes=10-20": (10, 21),
        f"bytes={C - 5}-": (C - 5, len(data)),
    }.items():
        response = client.get(f"/read/{file_id}", HTTP_RANGE=header)
        assert response.status_code == 206
        assert b"".join(response.streaming_content) == data[start:stop]


@pytest.mark.parametrize(
    ("size", "header"),
    [
        (100, "bytes=100-"),
        (100, "bytes=500-600"),
        (100, "bytes=-0"),
        (0, "bytes=0-"),
        (0, "bytes=-5"),
        (100, "bytes=" + "9" * 5000 + "-"),  # more digits than int() takes
    ],
)
def test_unsatisfiable_range_is_416_with_the_size(client, size, header):
    file_id = upload(client, payload(size))["file_id"]

    response = client.get(f"/read/{file_id}", HTTP_RANGE=header)

    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{size}"
    assert response.json()["error"] == "range_not_satisfiable"


@pytest.mark.parametrize(
    "header",
    [
        "bytes=0-1,5-6",
        "bytes=0-1, -3",
        "bytes=5-2",
        "bytes=a-b",
        "bytes=-",
        "items=0-1",
        "0-1",
        "bytes=\u0661-\u0663",  # Arabic-Indic digits are not ASCII digits
    ],
)
def test_several_or_malformed_ranges_get_the_whole_file(client, header):
    data = payload(3 * C)
    file_id = upload(client, data)["file_id"]

    response = client.get(f"/read/{file_id}", HTTP_RANGE=header)

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == data


def test_etag_is_the_sha256_and_if_none_match_gives_304(client):
    data = payload(2 * C)
    file_id = upload(client, data)["file_id"]
    first = client.get(f"/read/{file_id}")
    b"".join(first.streaming_content)

    assert first["ETag"] == f'"{sha256(data)}"'
    assert first["Accept-Ranges"] == "bytes"
    for method in ("get", "head"):
        for match in (first["ETag"], f'"other", {first["ETag"]}', "*"):
            response = getattr(client, method)(f"/read/{file_id}", HTTP_IF_NONE_MATCH=match)
            assert response.status_code == 304, (method, match)
            assert response["ETag"] == first["ETag"]
    other = client.get(f"/read/{file_id}", HTTP_IF_NONE_MATCH='"something-else"')
    assert other.status_code == 200
    assert b"".join(other.streaming_content) == data


def test_if_modified_since_gives_304_and_if_match_failing_412(client):
    file_id = upload(client, payload(10))["file_id"]
    later = http_date(4102444800)  # 2100

    assert client.get(f"/read/{file_id}", HTTP_IF_MODIFIED_SINCE=later).status_code == 304
    failed = client.get(f"/read/{file_id}", HTTP_IF_MATCH='"not-this-file"')
    assert failed.status_code == 412
    assert failed.json()["error"] == "precondition_failed"


def test_if_range_honours_the_range_only_while_the_validator_matches(client):
    data = payload(3 * C)
    file_id = upload(client, data)["file_id"]
    head = client.head(f"/read/{file_id}")

    matching = [head["ETag"], head["Last-Modified"]]
    stale = ['"0000"', http_date(0), "garbage"]
    for validator in matching + stale:
        response = client.get(f"/read/{file_id}", HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE=validator)
        body = b"".join(response.streaming_content)
        if validator in matching:
            assert (response.status_code, body) == (206, data[:10]), validator
        else:
            assert (response.status_code, body) == (200, data), validator


@pytest.mark.both_stores
def test_head_sends_the_get_headers_without_fetching_any_chunk(client, store, spans):
    data = payload(3 * C)
    file_id = upload(client, data, name="h.bin")["file_id"]
    get = client.get(f"/read/{file_id}")
    b"".join(get.streaming_content)
    store.delete_many([chunk_key(file_id, index) for index in range(3)])  # a fetch would fail
    spans.clear()

    head = client.head(f"/read/{file_id}")

    assert head.status_code == 200
    assert head.content == b""
    for name in ("Content-Type", "Content-Length", "Content-Disposition", "ETag", "Accept-Ranges"):
        assert head[name] == get[name], name
    assert not [s for s in spans.get_finished_spans() if s.name.startswith("download_chunk_")]


def test_head_of_an_unknown_file_is_404(client):
    assert client.head("/read/0b5d3c26-0000-0000-0000-000000000000").status_code == 404


def test_a_range_ending_past_any_size_is_cut_at_the_end(client):
    data = payload(3 * C)
    file_id = upload(client, data)["file_id"]

    response = client.get(f"/read/{file_id}", HTTP_RANGE="bytes=5-" + "9" * 5000)

    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes 5-{3 * C - 1}/{3 * C}"
    assert b"".join(response.streaming_content) == data[5:]
