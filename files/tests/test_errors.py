"""Every error status of the API, each with its JSON `error` code: one row per status and code."""

from __future__ import annotations

import hashlib
import io
import shutil
import uuid
from pathlib import Path

import pytest

from files.models import File
from files.storage import chunk_key, get_store
from labdropbox.api.errors import StorageRejected
from testing.fixtures import TEST_CHUNK_SIZE, stored_keys
from testing.servers import EMBEDDED, GunicornServer
from testing.uploads import payload, upload

pytestmark = pytest.mark.django_db

C = TEST_CHUNK_SIZE
UNKNOWN = "0b5d3c26-0000-0000-0000-000000000000"


def put(client, url: str, data: bytes = b"data", **extra):
    return client.put(url, data=data, content_type="application/octet-stream", **extra)


def stored_file(client, store, damage: str | None = None) -> str:
    file_id = upload(client, payload(2 * C))["file_id"]
    if damage == "missing":
        store.delete_many([chunk_key(file_id, 0)])
    elif damage == "corrupt":
        store.put(chunk_key(file_id, 0), payload(C, seed=9))
    return file_id


# (status, error code, request) — the request gets the test client, the settings and the store.
CASES = {
    "name missing": (400, "invalid_name", lambda c, s, st: put(c, "/write")),
    "name with CR/LF": (400, "invalid_name", lambda c, s, st: put(c, "/write?name=a%0D%0Ab")),
    "body shorter than Content-Length": (
        400,
        "incomplete_body",
        lambda c, s, st: c.generic(
            "PUT", "/write?name=a", CONTENT_LENGTH="100", **{"wsgi.input": io.BytesIO(b"x" * 40)}
        ),
    ),
    "Content-Length not a number": (
        400,
        "invalid_length",
        lambda c, s, st: put(c, "/write?name=a", CONTENT_LENGTH="12abc"),
    ),
    "Content-Length in other digits": (
        400,
        "invalid_length",
        lambda c, s, st: put(c, "/write?name=a", CONTENT_LENGTH="\u0663"),
    ),
    "limit out of range": (400, "invalid_parameter", lambda c, s, st: c.get("/files?limit=5000")),
    "no token": (
        401,
        "unauthorized",
        lambda c, s, st: setattr(s, "API_OPEN", False) or c.get("/files"),
    ),
    "unknown file": (404, "not_found", lambda c, s, st: c.get(f"/read/{UNKNOWN}")),
    "malformed id": (404, "not_found", lambda c, s, st: c.get("/files/not-an-id")),
    "unknown URL": (404, "not_found", lambda c, s, st: c.get("/nothing/here")),
    "wrong method": (405, "method_not_allowed", lambda c, s, st: c.get("/write")),
    "no length": (
        411,
        "length_required",
        lambda c, s, st: put(c, "/write?name=a", CONTENT_LENGTH=""),
    ),
    "If-Match fails": (
        412,
        "precondition_failed",
        lambda c, s, st: c.get(f"/read/{stored_file(c, st)}", HTTP_IF_MATCH='"x"'),
    ),
    "over MAX_UPLOAD_MB": (
        413,
        "too_large",
        lambda c, s, st: setattr(s, "MAX_UPLOAD_BYTES", 3) or put(c, "/write?name=a"),
    ),
    "Content-Length of 5,000 digits": (
        413,
        "too_large",
        lambda c, s, st: put(c, "/write?name=a", CONTENT_LENGTH="9" * 5000),
    ),
    "range past the end": (
        416,
        "range_not_satisfiable",
        lambda c, s, st: c.get(f"/read/{stored_file(c, st)}", HTTP_RANGE="bytes=99999999-"),
    ),
    "range starting 5,000 digits in": (
        416,
        "range_not_satisfiable",
        lambda c, s, st: c.get(
            f"/read/{stored_file(c, st)}", HTTP_RANGE="bytes=" + "7" * 5000 + "-"
        ),
    ),
    "gzip transfer coding": (
        501,
        "unsupported_transfer_encoding",
        lambda c, s, st: c.generic(
            "PUT",
            "/write?name=a",
            CONTENT_LENGTH="",
            HTTP_TRANSFER_ENCODING="gzip, chunked",
            **{"wsgi.input": io.BytesIO(b"\x1f\x8b..."), "wsgi.input_terminated": True},
        ),
    ),
    "write from another site's page": (
        403,
        "cross_origin_refused",
        lambda c, s, st: c.post(
            "/write?name=a",
            data=b"x",
            content_type="text/plain",
            HTTP_ORIGIN="https://evil.example",
        ),
    ),
    "chunk missing": (
        502,
        "chunk_missing",
        lambda c, s, st: c.get(f"/read/{stored_file(c, st, damage='missing')}"),
    ),
    "chunk corrupt": (
        502,
        "chunk_corrupt",
        lambda c, s, st: c.get(f"/read/{stored_file(c, st, damage='corrupt')}"),
    ),
    "storage down": (
        503,
        "storage_unavailable",
        lambda c, s, st: (
            setattr(s, "MINIO_ENDPOINT", "127.0.0.1:9")
            or setattr(s, "STORAGE_MAX_ATTEMPTS", 1)
            or put(c, "/write?name=a")
        ),
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_error_status_and_code(client, settings, store, case):
    status, code, make_request = CASES[case]

    response = make_request(client, settings, store)

    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["error"] == code
    assert isinstance(body["detail"], str) and body["detail"]


@pytest.fixture
def service_without_database(tmp_path):
    """The service under gunicorn whose SQLite database file has become unreadable."""
    server = GunicornServer(tmp_path, **EMBEDDED)
    database = Path(tmp_path) / "labdropbox.sqlite3"
    database.unlink()
    database.mkdir()  # a folder where the database file was: every connection now fails
    yield server
    server.stop()
    shutil.rmtree(database)


def test_database_down_is_503_and_keeps_no_chunks(service_without_database, tmp_path):
    status, _, body = service_without_database.request("PUT", "/write?name=a", body=payload(3 * C))

    assert status == 503
    assert b'"error": "database_unavailable"' in body
    chunks = tmp_path / "chunks"
    assert not chunks.exists() or not any(path.is_file() for path in chunks.rglob("*"))
    status, _, body = service_without_database.request("GET", f"/read/{uuid.uuid4()}")
    assert (status, b"database_unavailable" in body) == (503, True)


def test_missing_bucket_is_502_storage_misconfigured_not_try_again(client, settings, s3_server):
    settings.MINIO_ENDPOINT = s3_server.endpoint
    settings.MINIO_BUCKET = "no-such-bucket-anywhere"

    response = put(client, "/write?name=a", payload(2 * C))

    assert response.status_code == 502
    assert response.json() == {
        "error": "storage_misconfigured",
        "detail": "object storage refused the request; the service's storage settings are wrong",
    }


def test_s3_refusals_are_told_apart_from_outages(settings, s3_server):
    """A missing bucket (or bad credentials) is StorageRejected: retrying cannot help."""
    settings.MINIO_ENDPOINT = s3_server.endpoint
    settings.MINIO_BUCKET = "never-created"

    gone = get_store()

    for call in (lambda: gone.put("chunks/a/0", b"x"), lambda: gone.get("chunks/a/0")):
        with pytest.raises(StorageRejected, match="NoSuchBucket"):
            call()


# Real S3 implementations (Ceph's RGW in `make test-rgw`, MinIO, AWS) check what moto lets
# through: each test below asserts the real behaviour where the server checks, and moto's
# leniency where it does not.


def test_a_wrong_secret_key_is_storage_misconfigured(client, settings, s3_server, store):
    s3_server_settings(settings, s3_server)
    bucket = settings.MINIO_BUCKET
    get_store().ensure_bucket()
    settings.MINIO_SECRET_KEY = "not-the-secret-key"
    settings.MINIO_BUCKET = bucket

    response = put(client, "/write?name=a", payload(2 * C))

    if s3_server.checks_requests:  # 403 SignatureDoesNotMatch: no retry can help
        assert response.status_code == 502
        assert response.json()["error"] == "storage_misconfigured"
        assert not File.objects.exists()
    else:  # moto takes any signature
        assert response.status_code == 201


def test_a_chunk_damaged_on_the_way_is_refused_by_real_s3(
    client, settings, s3_server, store, monkeypatch
):
    """Each chunk goes out with its SHA-256 as the signed payload hash. Bytes that no longer match
    it (what a flipped bit in transit looks like) are XAmzContentSHA256Mismatch: the upload is
    503, try again, and nothing is kept."""
    s3_server_settings(settings, s3_server)
    chunk_store = get_store()
    chunk_store.ensure_bucket()
    send = chunk_store.objects.put
    other = hashlib.sha256(b"other bytes").hexdigest()
    monkeypatch.setattr(
        chunk_store.objects, "put", lambda key, data, _digest: send(key, data, other)
    )

    response = put(client, "/write?name=a", payload(2 * C))

    if s3_server.checks_requests:  # 400 XAmzContentSHA256Mismatch
        assert response.status_code == 503
        assert response.json()["error"] == "storage_unavailable"
        assert not File.objects.exists()
        assert stored_keys(chunk_store) == []
    else:  # moto stores it anyway
        assert response.status_code == 201


def s3_server_settings(settings, s3_server) -> None:
    settings.MINIO_ENDPOINT = s3_server.endpoint
    settings.STORAGE_MAX_ATTEMPTS = 1
