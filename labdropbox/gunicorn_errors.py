"""What gunicorn answers, as JSON, for requests that never reach the application: a malformed
request line, header or chunked framing, a transfer coding it does not undo, a head that is too
large. gunicorn writes these as HTML pages (gunicorn.util.write_error); the guarded worker
(labdropbox/gunicorn_worker.py) puts this writer in its place, so that every answer of the
service is `{"error": code, "detail": sentence}`."""

from __future__ import annotations

import json
import socket

from gunicorn import util

CODES = {
    400: "bad_request",
    403: "forbidden",
    414: "uri_too_long",
    417: "expectation_failed",
    431: "headers_too_large",
    500: "internal_error",
    501: "unsupported_transfer_encoding",
}


def json_error_page(status: int, reason: str, detail: str) -> bytes:
    body = json.dumps({"error": CODES.get(status, "bad_request"), "detail": detail}) + "\n"
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return (head + body).encode("latin-1", "replace")


def write_json_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn.util.write_error's signature, answering in JSON."""
    detail = mesg or reason
    util.write_nonblock(sock, json_error_page(status_int, reason, detail))
