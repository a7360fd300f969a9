"""Chunk GETs and PUTs as bare HTTP requests: signed here with AWS Signature Version 4, sent on
kept-alive http.client connections, retried on the store's transient failures.

A chunk request is always the same: one bucket, one key, path style, a body or a byte range,
one of a few answers. boto3 prepares each as a general API call — event hooks, the endpoint
ruleset, a parsed response model, a check of each pooled connection before reuse — and on a
fast S3 server that cost as much CPU as hashing the chunk (docs/performance.md). Everything else
(listing, batch deletes, buckets) stays with boto3.

The SHA-256 of a PUT's body, already computed to record the chunk, is sent as its signed
payload hash: the S3 server checks the bytes it received against it, and nothing hashes the
chunk a second time to sign it.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import http.client
import random
import re
import ssl
import threading
import time
from collections.abc import Callable
from urllib.parse import quote, urlsplit

from botocore.httpsession import get_cert_path

from files.storage.errors import S3ErrorAnswer, is_transient

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
SIGNED_HEADERS = "host;x-amz-content-sha256;x-amz-date"
# An error answer is a short XML document; more than this is not read (the connection closes).
ERROR_BODY_LIMIT = 64 * 1024
# Exponential backoff with full jitter between attempts, as boto3's standard retry mode does.
MAX_BACKOFF_SECONDS = 20.0
ERROR_FIELD = re.compile(rb"<(Code|Message)>([^<]{0,512})</\1>")
# What a kept-alive connection that the server has closed meanwhile fails with, before any answer.
STALE_CONNECTION = (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected)
TRANSPORT_ERRORS = (OSError, http.client.HTTPException)


def full_jitter(attempt: int) -> float:
    """Seconds to wait after failed attempt `attempt` (1, 2…): up to 1, 2, 4… s, at most 20."""
    return min(random.random() * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS)  # noqa: S311


class SigV4Signer:
    """The Authorization header of an S3 request (header-signed, no query string)."""

    def __init__(self, access_key: str, secret_key: str, region: str) -> None:
        self.access_key = access_key
        self._secret = secret_key
        self.region = region
        self._day_key: tuple[str, bytes] = ("", b"")

    def headers(
        self, method: str, path: str, host: str, payload_sha256: str, now: datetime.datetime
    ) -> dict[str, str]:
        """The headers to send that the signature covers, with the signature."""
        stamp = now.strftime("%Y%m%dT%H%M%SZ")
        day = stamp[:8]
        canonical = (
            f"{method}\n{path}\n\nhost:{host}\nx-amz-content-sha256:{payload_sha256}\n"
            f"x-amz-date:{stamp}\n\n{SIGNED_HEADERS}\n{payload_sha256}"
        )
        scope = f"{day}/{self.region}/s3/aws4_request"
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{digest}"
        signature = hmac.new(self._key(day), to_sign.encode(), hashlib.sha256).hexdigest()
        return {
            "Host": host,
            "X-Amz-Content-SHA256": payload_sha256,
            "X-Amz-Date": stamp,
            "Authorization": (
                f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, "
                f"SignedHeaders={SIGNED_HEADERS}, Signature={signature}"
            ),
        }

    def _key(self, day: str) -> bytes:
        """The signing key of the day (one HMAC chain a day, not one a request)."""
        cached_day, key = self._day_key
        if cached_day != day:
            key = f"AWS4{self._secret}".encode()
            for part in (day, self.region, "s3", "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._day_key = (day, key)
        return key


class ConnectionPool:
    """Kept-alive connections to one server, at most `size` idle ones kept."""

    def __init__(
        self, endpoint_url: str, connect_timeout: float, read_timeout: float, size: int
    ) -> None:
        parts = urlsplit(endpoint_url)
        self.secure = parts.scheme == "https"
        self.hostname = parts.hostname or ""
        self.port = parts.port or (443 if self.secure else 80)
        self.netloc = parts.netloc
        self.path_prefix = parts.path.rstrip("/")
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.size = size
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        # The certificates boto3 trusts (certifi's bundle), for the same endpoints to work.
        self._tls = ssl.create_default_context(cafile=get_cert_path(True)) if self.secure else None

    def take(self) -> tuple[http.client.HTTPConnection, bool]:
        """A connection, and whether it was used before (it may have been closed since)."""
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        return self.new(), False

    def new(self) -> http.client.HTTPConnection:
        """A connection opened now."""
        if self._tls is not None:
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                self.hostname, self.port, timeout=self.connect_timeout, context=self._tls
            )
        else:
            connection = http.client.HTTPConnection(
                self.hostname, self.port, timeout=self.connect_timeout
            )
        connection.connect()
        connection.sock.settimeout(self.read_timeout)
        return connection

    def give_back(self, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < self.size:
                self._idle.append(connection)
                return
        connection.close()


class Answer:
    """A successful answer: its status, the headers that matter, and its body."""

    def __init__(self, status: int, request_id: str, body: bytes) -> None:
        self.status = status
        self.request_id = request_id
        self.body = body
        self.attempts = 1


class ChunkObjects:
    """GET and PUT of the objects of one bucket."""

    def __init__(
        self,
        pool: ConnectionPool,
        signer: SigV4Signer,
        bucket: str,
        attempts: int,
        backoff: Callable[[int], float] | None = None,
    ) -> None:
        self.pool = pool
        self.signer = signer
        self.bucket = bucket
        self.attempts = attempts
        self.backoff = backoff or full_jitter

    def get(self, key: str, start: int = 0, stop: int | None = None) -> Answer:
        """The object's bytes [start, stop) (all of it by default)."""
        extra = {}
        if start or stop is not None:
            extra["Range"] = f"bytes={start}-{'' if stop is None else stop - 1}"
        return self._with_retries("GET", key, None, EMPTY_SHA256, extra)

    def put(self, key: str, data: bytes, sha256_hex: str) -> Answer:
        """Store `data`, whose SHA-256 is `sha256_hex` (the server checks it)."""
        return self._with_retries("PUT", key, data, sha256_hex, {})

    def _with_retries(
        self, method: str, key: str, body: bytes | None, payload: str, extra: dict[str, str]
    ) -> Answer:
        for attempt in range(1, self.attempts + 1):
            try:
                answer = self._exchange(method, key, body, payload, extra)
                answer.attempts = attempt
                return answer
            except S3ErrorAnswer as refusal:
                if attempt == self.attempts or not is_transient(refusal.status, refusal.code):
                    raise
            except TRANSPORT_ERRORS:
                if attempt == self.attempts:
                    raise
            time.sleep(self.backoff(attempt))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _exchange(
        self, method: str, key: str, body: bytes | None, payload: str, extra: dict[str, str]
    ) -> Answer:
        """One request and its answer; a kept-alive connection found closed is replaced once."""
        path = quote(f"{self.pool.path_prefix}/{self.bucket}/{key}", safe="/~")
        now = datetime.datetime.now(datetime.UTC)
        headers = self.signer.headers(method, path, self.pool.netloc, payload, now) | extra
        connection, reused = self.pool.take()
        try:
            try:
                response = self._send(connection, method, path, headers, body)
            except STALE_CONNECTION:
                if not reused:
                    raise
                connection.close()
                connection = self.pool.new()  # not another idle one: it may be as old
                response = self._send(connection, method, path, headers, body)
            answer = self._receive(response)
        except BaseException:  # an error answer too: its body may not have been read whole
            connection.close()
            raise
        if response.will_close:
            connection.close()
        else:
            self.pool.give_back(connection)
        return answer

    @staticmethod
    def _send(
        connection: http.client.HTTPConnection,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes | None,
    ) -> http.client.HTTPResponse:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        # A memoryview, not bytes: http.client would copy bytes onto the end of the headers.
        connection.endheaders(memoryview(body) if body else None)
        return connection.getresponse()

    @staticmethod
    def _receive(response: http.client.HTTPResponse) -> Answer:
        request_id = response.getheader("x-amz-request-id", "")
        if response.status < 300:
            return Answer(response.status, request_id, response.read())
        # Read no more than an error document's worth: the connection is closed after it.
        document = response.read(ERROR_BODY_LIMIT)
        fields = dict(ERROR_FIELD.findall(document))
        raise S3ErrorAnswer(
            response.status,
            fields.get(b"Code", b"").decode(errors="replace") or str(response.status),
            fields.get(b"Message", b"").decode(errors="replace"),
            request_id,
        )
