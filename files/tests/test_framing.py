"""Requests that never reach the application — malformed framing, transfer codings gunicorn does
not undo, oversized heads, a Host the service does not answer to — get a JSON error like every
other answer; and neither they nor a client cut off on purpose leave a traceback in the log."""

from __future__ import annotations

import contextlib
import json
import socket

import pytest

from testing.conditions import eventually
from testing.mysql import own_database
from testing.servers import GunicornServer
from testing.uploads import upload

HEAD_MAX = 64 * 1024


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory):
    server = GunicornServer(
        tmp_path_factory.mktemp("framing"),
        MINIO_ENDPOINT="",
        MIN_TRANSFER_BYTES="65536",
        MIN_TRANSFER_WINDOW_SECONDS="1",
        **own_database("framing"),
    )
    yield server
    server.stop()


def exchange(service: GunicornServer, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes; the answer's status, headers and body (the server closes after it)."""
    with socket.create_connection(("127.0.0.1", service.port), timeout=15) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (h.partition(":") for h in lines)}
    if headers.get("transfer-encoding") == "chunked":
        body = dechunked(body)
    return int(status_line.split()[1]), headers, body


def dechunked(body: bytes) -> bytes:
    pieces = []
    while body:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line, 16)
        pieces.append(body[:size])
        body = body[size + 2 :]
        if not size:
            break
    return b"".join(pieces)


def put(*headers: str, body: bytes = b"abc") -> bytes:
    head = "PUT /write?name=f.bin HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
    return (head + "".join(f"{h}\r\n" for h in headers) + "\r\n").encode() + body


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        # A coding that leaves the body's length unknown: 400, as RFC 9112 (6.3) has it.
        (put("Transfer-Encoding: gzip"), 400, "bad_request"),
        (put("Transfer-Encoding: identity"), 400, "bad_request"),
        (put("Transfer-Encoding: chunked, gzip"), 400, "bad_request"),
        # A body gzipped, then chunked: gunicorn undoes the chunking, the service refuses the
        # gzip (it would store the compressed bytes as the file); a coding nobody knows: 501.
        (
            put("Transfer-Encoding: gzip, chunked", body=b"3\r\nabc\r\n0\r\n\r\n"),
            501,
            "unsupported_transfer_encoding",
        ),
        (put("Transfer-Encoding: br"), 501, "unsupported_transfer_encoding"),
        (put("Content-Length: -1"), 400, "bad_request"),
        (put("Content-Length: 3", "Content-Length: 4"), 400, "bad_request"),
        (put("Content-Length: 3", "Transfer-Encoding: chunked"), 400, "bad_request"),
        (b"GET /health HTTP/1.1\r\nHost: localhost\r\nBad Header\r\n\r\n", 400, "bad_request"),
    ],
    ids=[
        "gzip",
        "identity",
        "chunked-gzip",
        "gzip-chunked",
        "unknown",
        "negative",
        "two-lengths",
        "cl-te",
        "no-colon",
    ],  # fmt: skip
)
def test_malformed_framing_gets_a_json_error(service, request_bytes, status, code):
    answered, headers, body = exchange(service, request_bytes)

    assert (answered, headers["content-type"]) == (status, "application/json")
    assert json.loads(body)["error"] == code
    assert json.loads(body)["detail"]


def test_long_headers_up_to_the_head_limit_are_served(service):
    long_value = "a" * 20_000  # over gunicorn's own 8 KiB per field, under REQUEST_HEAD_MAX_BYTES
    request = f"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Long: {long_value}\r\n"
    status, _, body = exchange(service, (request + "Connection: close\r\n\r\n").encode())

    assert (status, body) == (200, b"OK")


def test_a_head_over_the_limit_is_refused_with_431_in_json(service):
    request = "GET /health HTTP/1.1\r\nHost: localhost\r\n" + "X-Pad: " + "p" * HEAD_MAX

    status, headers, body = exchange(service, (request + "\r\n\r\n").encode())

    assert (status, headers["content-type"]) == (431, "application/json")
    assert json.loads(body)["error"] == "headers_too_large"


def test_a_disallowed_host_is_a_json_400_and_one_line_in_the_log(service):
    status, headers, body = exchange(
        service, b"GET /files HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
    )

    assert (status, headers["content-type"]) == (400, "application/json")
    assert json.loads(body)["error"] == "bad_request"
    eventually(lambda: "Invalid HTTP_HOST header: 'evil.example'" in service.log_text())
    line = next(line for line in service.log_text().splitlines() if "evil.example" in line)
    assert " WARNING django.security.DisallowedHost: " in line
    assert "Traceback" not in service.log_text()


def test_transfers_cut_on_purpose_log_no_traceback(service):
    file_id = upload(service, bytes(8 * 1024 * 1024))["file_id"]
    log_before = len(service.log_text())
    with socket.create_connection(("127.0.0.1", service.port), timeout=30) as reader:
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        reader.sendall(f"GET /read/{file_id} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        # Reads nothing: the worker cuts it after a window without the floor's bytes, and
        # logs the request when it gives up on it.
        eventually(lambda: f'"GET /read/{file_id} HTTP/1.1" 200' in service.log_text())
    trickled = exchange(service, put("Content-Length: 100000", body=b"x" * 100))

    written = service.log_text()[log_before:]
    assert trickled[0] == 400 and b"it sent under 65536 bytes per 1 s" in trickled[2]
    assert "Traceback" not in written and " ERROR " not in written


def test_bytes_sent_after_a_cut_body_are_never_taken_for_a_request(service):
    with socket.create_connection(("127.0.0.1", service.port), timeout=30) as sock:
        head = "PUT /write?name=f.bin HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\n"
        sock.sendall(head.encode() + b"x" * 100)  # a connection the client means to keep
        answer = sock.recv(65536)  # the 400, once the body is cut for its rate
        assert answer.startswith(b"HTTP/1.1 400")
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        rest = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                rest += chunk

    assert b"HTTP/1.1 200" not in rest  # the connection closed after the cut body
