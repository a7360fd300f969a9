"""Chunk GETs and PUTs sent without boto3 (files/storage/s3_http.py): signatures as botocore
makes them, retries only where another attempt can help, kept-alive connections that the server
closed meanwhile. Against real S3 servers the whole S3 suite runs through them as well."""

from __future__ import annotations

import datetime
import hashlib
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from unittest import mock

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from files.storage.errors import S3ErrorAnswer
from files.storage.s3_http import (
    EMPTY_SHA256,
    ChunkObjects,
    ConnectionPool,
    SigV4Signer,
    full_jitter,
)

MOMENT = datetime.datetime(2026, 12, 6, 3, 4, 5, tzinfo=datetime.UTC)


@pytest.mark.parametrize(("method", "body"), [("GET", b""), ("PUT", b"chunk bytes")])
def test_the_signature_is_the_one_botocore_computes(method, body):
    host, path = "127.0.0.1:9000", "/labdropbox/chunks/0f3a/12"
    payload = hashlib.sha256(body).hexdigest()
    ours = SigV4Signer("AKIDEXAMPLE", "secret/with+chars", "eu-west-3").headers(
        method, path, host, payload, MOMENT
    )

    request = AWSRequest(
        method=method,
        url=f"http://{host}{path}",
        data=body,
        headers={"X-Amz-Date": ours["X-Amz-Date"]},
    )
    with mock.patch("botocore.auth.get_current_datetime", return_value=MOMENT):
        S3SigV4Auth(Credentials("AKIDEXAMPLE", "secret/with+chars"), "s3", "eu-west-3").add_auth(
            request
        )

    assert request.headers["X-Amz-Content-SHA256"] == payload
    assert ours["Authorization"] == request.headers["Authorization"]


def test_the_signing_key_follows_the_day():
    signer = SigV4Signer("AKIDEXAMPLE", "secret", "us-east-1")
    today = signer.headers("GET", "/b/k", "h", EMPTY_SHA256, MOMENT)["Authorization"]
    tomorrow = signer.headers(
        "GET", "/b/k", "h", EMPTY_SHA256, MOMENT + datetime.timedelta(days=1)
    )["Authorization"]

    assert "20261206/us-east-1/s3/aws4_request" in today
    assert "20261207/us-east-1/s3/aws4_request" in tomorrow
    fresh = SigV4Signer("AKIDEXAMPLE", "secret", "us-east-1")
    later = MOMENT + datetime.timedelta(days=1)
    assert tomorrow == fresh.headers("GET", "/b/k", "h", EMPTY_SHA256, later)["Authorization"]


def test_backoff_is_jittered_and_bounded():
    waits = [full_jitter(attempt) for attempt in (1, 2, 3, 10) for _ in range(50)]

    assert all(0 <= wait <= 20 for wait in waits)
    assert max(full_jitter(1) for _ in range(50)) <= 1
    assert len(set(waits)) > 1


class ScriptedS3:
    """A loopback HTTP/1.1 server answering each request with the next scripted answer:
    (status, body, close) — `close` drops the connection after answering without saying so."""

    def __init__(self, answers: list[tuple[int, bytes, bool]]) -> None:
        self.answers = answers
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.connections: set[tuple[str, int]] = set()
        script = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                script.requests.append((self.command, self.path, dict(self.headers), body))
                script.connections.add(self.client_address)
                status, content, close = script.answers.pop(0)
                self.send_response(status)
                self.send_header("Content-Length", str(len(content)))
                self.send_header("x-amz-request-id", f"req-{len(script.requests)}")
                self.end_headers()
                self.wfile.write(content)
                self.close_connection = close

            do_GET = do_PUT = answer  # noqa: N815  (http.server's naming)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def objects(self, attempts: int = 3) -> ChunkObjects:
        pool = ConnectionPool(f"http://127.0.0.1:{self.server.server_port}", 2, 5, 4)
        signer = SigV4Signer("key", "secret", "us-east-1")
        return ChunkObjects(pool, signer, "bucket", attempts, backoff=lambda _attempt: 0)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted() -> Iterator[type[ScriptedS3]]:
    servers: list[ScriptedS3] = []

    def start(answers: list[tuple[int, bytes, bool]]) -> ScriptedS3:
        servers.append(ScriptedS3(answers))
        return servers[-1]

    yield start  # type: ignore[misc]
    for server in servers:
        server.close()


def error_document(code: str) -> bytes:
    return f"<Error><Code>{code}</Code><Message>said {code}</Message></Error>".encode()


def test_a_get_with_a_range_reads_the_answer_on_one_kept_alive_connection(scripted):
    s3 = scripted([(206, b"bytes 3-9", False), (200, b"whole", False)])
    objects = s3.objects()

    part = objects.get("chunks/f/0", 3, 10)
    whole = objects.get("chunks/f/1")

    assert (part.status, part.body, part.request_id, part.attempts) == (
        206,
        b"bytes 3-9",
        "req-1",
        1,
    )
    assert whole.body == b"whole"
    (method, path, headers, _body), second = s3.requests
    assert (method, path, headers["Range"]) == ("GET", "/bucket/chunks/f/0", "bytes=3-9")
    assert "Range" not in second[2]
    assert headers["X-Amz-Content-SHA256"] == EMPTY_SHA256
    assert len(s3.connections) == 1


def test_a_put_sends_its_body_with_its_sha256_as_the_payload_hash(scripted):
    s3 = scripted([(200, b"", False)])
    data = b"x" * 100_000
    digest = hashlib.sha256(data).hexdigest()

    s3.objects().put("chunks/f/0", data, digest)

    ((method, path, headers, body),) = s3.requests
    assert (method, path, body) == ("PUT", "/bucket/chunks/f/0", data)
    assert headers["X-Amz-Content-SHA256"] == digest
    assert "SignedHeaders=host;x-amz-content-sha256;x-amz-date" in headers["Authorization"]


def test_transient_refusals_are_retried_and_lasting_ones_are_not(scripted):
    s3 = scripted(
        [
            (503, error_document("SlowDown"), False),
            (500, error_document("InternalError"), False),
            (200, b"done", False),
            (404, error_document("NoSuchKey"), False),
            (403, error_document("AccessDenied"), False),
        ]
    )
    objects = s3.objects(attempts=3)

    assert objects.get("chunks/f/0").attempts == 3
    with pytest.raises(S3ErrorAnswer) as missing:
        objects.get("chunks/f/1")
    with pytest.raises(S3ErrorAnswer) as refused:
        objects.get("chunks/f/2")

    assert (missing.value.status, missing.value.code) == (404, "NoSuchKey")
    assert (refused.value.code, refused.value.message) == ("AccessDenied", "said AccessDenied")
    assert len(s3.requests) == 5  # one attempt each for the 404 and the 403


def test_the_last_attempts_failure_is_raised(scripted):
    s3 = scripted([(503, error_document("SlowDown"), False)] * 2)

    with pytest.raises(S3ErrorAnswer, match="SlowDown"):
        s3.objects(attempts=2).get("chunks/f/0")
    assert len(s3.requests) == 2


def test_a_kept_alive_connection_closed_by_the_server_is_replaced_without_an_attempt(scripted):
    s3 = scripted([(200, b"first", True), (200, b"second", False)])
    objects = s3.objects(attempts=1)

    assert objects.get("chunks/f/0").body == b"first"
    second = objects.get("chunks/f/1")  # its pooled connection was closed by the server

    assert (second.body, second.attempts) == (b"second", 1)
    assert len(s3.connections) == 2


def test_an_unreachable_server_fails_after_its_attempts():
    pool = ConnectionPool("http://127.0.0.1:9", 1, 1, 2)  # discard port: nothing listens
    attempts: list[int] = []

    def no_wait(attempt: int) -> float:
        attempts.append(attempt)
        return 0

    objects = ChunkObjects(pool, SigV4Signer("k", "s", "us-east-1"), "b", 3, backoff=no_wait)

    with pytest.raises(ConnectionRefusedError):
        objects.get("chunks/f/0")
    assert attempts == [1, 2]


def test_an_https_endpoint_is_verified_against_the_certificates_boto3_trusts():
    pool = ConnectionPool("https://s3.example.test:8443/prefix/", 1, 1, 2)

    assert (pool.secure, pool.hostname, pool.port, pool.path_prefix) == (
        True,
        "s3.example.test",
        8443,
        "/prefix",
    )
    assert pool._tls is not None
    assert pool._tls.check_hostname
    assert pool._tls.verify_mode == ssl.CERT_REQUIRED
    assert pool._tls.cert_store_stats()["x509_ca"] > 100  # certifi's bundle, not an empty store
