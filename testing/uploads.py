"""The one way tests and benchmarks upload and download: `upload(target, data)` and
`download(target, file_id)`, whatever the target is — the Django test client, the in-process
WSGI application (testing.wsgi_client.wsgi_app) or a gunicorn-run service (GunicornServer)."""

from __future__ import annotations

import hashlib
import json
import random
import socket
import uuid
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple, cast
from urllib.parse import quote

from django.http import StreamingHttpResponse
from django.test import Client


class Reply(NamedTuple):
    status: int
    headers: dict[str, str]
    body: bytes


def payload(size: int, seed: int = 0) -> bytes:
    """Deterministic pseudo-random bytes: every chunk differs, so a swapped chunk is caught."""
    return random.Random(size * 7919 + seed).randbytes(size)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def send(
    target: Any,
    method: str,
    path: str,
    body: bytes | Iterable[bytes] = b"",
    headers: dict[str, str] | None = None,
) -> Reply:
    """One request to `target`: a Django test Client, or anything with a request(method, path,
    body, headers) method answering (status, headers, body). A body given as an iterable of
    bytes is streamed; its Content-Length goes in `headers`."""
    if not isinstance(target, Client):
        return Reply(*target.request(method, path, body or None, headers or {}))
    headers = dict(headers or {})
    content_type = headers.pop("Content-Type", "application/octet-stream")
    meta: dict[str, Any] = {
        "HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()
    }
    response = target.generic(
        method,
        path,
        data=body,
        content_type=content_type,
        CONTENT_LENGTH=str(len(cast(bytes, body))),  # the test client leaves it out if empty
        **meta,
    )
    content = (
        b"".join(cast(Iterator[bytes], cast(StreamingHttpResponse, response).streaming_content))
        if response.streaming
        else response.content
    )
    return Reply(response.status_code, dict(response.items()), content)


def upload(
    target: Any,
    data: bytes | Iterable[bytes],
    name: str | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """PUT /write the data as a new file (named `name`, or something new); the 201's JSON body."""
    name = name or f"data-{uuid.uuid4().hex[:12]}.bin"
    reply = send(target, "PUT", f"/write?name={quote(name)}", data, headers)
    assert reply.status == 201, reply.body
    return json.loads(reply.body)


def download(target: Any, file_id: str) -> bytes:
    """GET /read the file; its bytes (asserting a 200)."""
    reply = send(target, "GET", f"/read/{file_id}")
    assert reply.status == 200, reply.body
    return reply.body


def unfinished_upload(name: str, declared: int, sent: int) -> bytes:
    """A raw HTTP/1.1 upload that promises `declared` body bytes and carries only `sent`."""
    head = f"PUT /write?name={quote(name)} HTTP/1.1\r\nHost: localhost\r\n"
    return f"{head}Content-Length: {declared}\r\n\r\n".encode() + payload(sent)


# --- resumable uploads (tus) -----------------------------------------------------------------

TUS = {"Tus-Resumable": "1.0.0"}


def tus_create(target: Any, length: int | None, concat: str = "") -> str:
    """POST /uploads/; the new upload's path. Without a length it is deferred (or, for a
    final upload, its parts')."""
    headers = {**TUS}
    if length is not None:
        headers["Upload-Length"] = str(length)
    elif not concat.startswith("final"):
        headers["Upload-Defer-Length"] = "1"
    if concat:
        headers["Upload-Concat"] = concat
    reply = send(target, "POST", "/uploads/", b"", headers)
    assert reply.status == 201, reply.body
    return "/uploads/" + reply.headers["Location"].rsplit("/", 1)[1]


def tus_head(target: Any, path: str) -> Reply:
    return send(target, "HEAD", path, b"", TUS)


def tus_offset(target: Any, path: str) -> int:
    reply = tus_head(target, path)
    assert reply.status == 200, reply.status
    return int(reply.headers["Upload-Offset"])


def tus_patch(target: Any, path: str, data: bytes, offset: int, length: int | None = None) -> Reply:
    """PATCH `data` at `offset`; with `length`, telling a deferred upload's length too."""
    headers = {
        **TUS,
        "Upload-Offset": str(offset),
        "Content-Type": "application/offset+octet-stream",
    }
    if length is not None:
        headers["Upload-Length"] = str(length)
    return send(target, "PATCH", path, data, headers)


def patch_head(path: str, offset: int, length: int) -> bytes:
    """A raw PATCH's head, for a test that sends its `length` body bytes piece by piece."""
    return (
        f"PATCH {path} HTTP/1.1\r\nHost: localhost\r\nTus-Resumable: 1.0.0\r\n"
        f"Upload-Offset: {offset}\r\nContent-Type: application/offset+octet-stream\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


class WithToken:
    """`target` (anything testing.uploads.send takes), with the token on every request."""

    def __init__(self, target: Any, token: str) -> None:
        self.target, self.token = target, token

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Reply:
        auth = {"Authorization": f"Bearer {self.token}"}
        return send(self.target, method, path, body or b"", {**(headers or {}), **auth})


def held_back_read(server: Any, file_id: str, timeout: float) -> tuple[Any, Any]:
    """Start reading a file through `server` (a GunicornServer) with a small receive buffer:
    the service is held back by its client, as a slow download over a real network is, so it
    cannot have fetched and sent the whole file at once. The (connection, response) with the
    status and headers read and the body not."""
    connection = server.connection(timeout=timeout)
    connection.connect()
    connection.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
    connection.request("GET", f"/read/{file_id}")
    return connection, connection.getresponse()
