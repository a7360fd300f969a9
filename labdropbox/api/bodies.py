"""Request and response bodies: an upload's body stream and its announced length, read in
pieces with the client's silence bounded; small JSON bodies; the request's connection, watched
for bytes that have arrived; and response bodies counted as the server sends them."""

from __future__ import annotations

import fcntl
import json
import select
import socket
import struct
import termios
from collections.abc import Callable, Collection, Iterable, Iterator
from typing import Any, Protocol

from django.conf import settings
from django.http import HttpRequest

from labdropbox.api.errors import (
    BodyTooLarge,
    IncompleteBody,
    InvalidLength,
    InvalidParameter,
    LengthRequired,
    UnsupportedTransferEncoding,
)
from labdropbox.api.requests import parse_count


class Body(Protocol):
    """What an upload is read from: the request (gunicorn's wsgi.input, Django's request, an
    uploaded file in the admin). read(size) returns at most `size` bytes, b"" at the end."""

    def read(self, size: int = -1, /) -> bytes: ...


def request_body(request: HttpRequest) -> tuple[Body, int | None]:
    """The body stream and its announced length (None for Transfer-Encoding: chunked)."""
    connection = request.META.get("gunicorn.socket")
    if connection is not None:
        # A client that stops sending without going away would hold this thread for good:
        # past this much silence the upload fails (400, nothing kept). gunicorn makes the
        # socket blocking again, with no timeout, before the connection's next request.
        connection.settimeout(settings.UPLOAD_IDLE_TIMEOUT_SECONDS)
    codings = transfer_codings(request)
    if codings:
        if codings != ["chunked"]:
            # gunicorn undoes the chunked framing and nothing else: a gzip-coded body would be
            # stored compressed, as if it were the file.
            raise UnsupportedTransferEncoding(f"Transfer-Encoding {', '.join(codings)}")
        # Only servers that decode chunked bodies (gunicorn) mark the input as terminated.
        if not request.META.get("wsgi.input_terminated"):
            raise LengthRequired("this server needs a Content-Length header")
        return request.META["wsgi.input"], None
    raw = request.META.get("CONTENT_LENGTH", "")
    if not raw:
        raise LengthRequired()
    length = parse_count(raw)
    if length is None:
        raise InvalidLength(f"Content-Length {raw[:40]!r} is not a byte count")
    return request, length


def transfer_codings(request: HttpRequest) -> list[str]:
    header = request.META.get("HTTP_TRANSFER_ENCODING", "")
    return [coding.strip().lower() for coding in header.split(",") if coding.strip()]


def request_has_body(request: HttpRequest) -> bool:
    return request.META.get("CONTENT_LENGTH", "") not in ("", "0") or bool(
        transfer_codings(request)
    )


def read_body_piece(body: Body, size: int, pace: Callable[[int], int] | None = None) -> bytes:
    """Read up to `size` bytes, fewer only at the end of the body. `pace`, if given, is called
    before each read with the bytes still wanted, and says how many to read now."""
    parts: list[bytes] = []
    remaining = size
    while remaining:
        wanted = remaining if pace is None else pace(remaining)
        try:
            part = body.read(wanted)
        # The WSGI server's input raises its own error types when a client breaks off or sends
        # a malformed chunked body: any failure to read the body is the client's.
        except Exception as exc:
            broken = IncompleteBody(f"the request body could not be read: {exc}")
            broken.partial = b"".join(parts)
            raise broken from exc
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)


# --- JSON bodies ---------------------------------------------------------------------------------

MAX_JSON_BYTES = 4096


def json_object(request: HttpRequest, fields: Collection[str]) -> dict[str, Any]:
    """The body as a JSON object ({} for an empty body) of `fields` only, read like an
    upload's (a client that stalls is cut off), and small."""
    body, length = request_body(request) if request_has_body(request) else (None, 0)
    if length is not None and length > MAX_JSON_BYTES:
        raise BodyTooLarge(f"a JSON body is at most {MAX_JSON_BYTES} bytes")
    raw = read_body_piece(body, MAX_JSON_BYTES + 1) if body is not None else b""
    if len(raw) > MAX_JSON_BYTES:
        raise BodyTooLarge(f"a JSON body is at most {MAX_JSON_BYTES} bytes")
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: [[[[[…
        raise InvalidParameter("the body is not JSON (or nests too deeply)") from None
    if not isinstance(value, dict):
        raise InvalidParameter("the body is a JSON object")
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise InvalidParameter(f"unknown field {unknown[0][:40]!r}")
    return value


def json_count(options: dict[str, Any], name: str, maximum: int) -> int | None:
    value = options.get(name)
    if value is None:
        return None
    # bool is an int to Python, never to a client.
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise InvalidParameter(f"{name} must be an integer from 1 to {maximum}, or null")
    return value


# --- the connection ------------------------------------------------------------------------------


class BodyWatch:
    """What a request's connection says about the body still to come: how much has arrived
    and not been read yet, and a wait for more."""

    def __init__(self, connection: socket.socket) -> None:
        self.fileno = connection.fileno()
        self.poller = select.poll()  # not select(): a worker's descriptors go past 1024
        self.poller.register(self.fileno, select.POLLIN)

    def arrived(self) -> int:
        """Bytes received from the client that nobody has read yet (the server may hold a
        few more of its own)."""
        return struct.unpack("i", fcntl.ioctl(self.fileno, termios.FIONREAD, b"\0" * 4))[0]

    def wait(self, timeout: float) -> bool:
        """Wait at most `timeout` seconds for more of the body: True once some has come (or
        the client closed)."""
        return bool(self.poller.poll(timeout * 1000))


def body_watch(request: HttpRequest) -> BodyWatch | None:
    """The watch on the request's connection; None where the server hands over no socket
    (Django's test client)."""
    connection = request.META.get("gunicorn.socket")
    return None if connection is None else BodyWatch(connection)


# --- response bodies -----------------------------------------------------------------------------


class CountedBody:
    """`body`, piece by piece; when the server closes it — sent, failed or abandoned — the body's
    own close() runs, then `on_close(bytes sent)`."""

    def __init__(self, body: Iterable[bytes], on_close: Callable[[int], None]) -> None:
        self.body, self.on_close, self.sent = body, on_close, 0

    def __iter__(self) -> Iterator[bytes]:
        for piece in self.body:
            self.sent += len(piece)
            yield piece

    def close(self) -> None:
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            self.on_close(self.sent)
