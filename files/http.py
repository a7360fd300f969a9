"""What the API's views share: the `api_view` decorator and the parsing of requests into plain
values (the upload body and its length, query numbers, byte ranges), and download headers."""

from __future__ import annotations

import fcntl
import functools
import json
import re
import select
import socket
import struct
import termios
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.utils.cache import get_conditional_response
from django.utils.http import http_date, parse_http_date_safe
from django.views.decorators.csrf import csrf_exempt

from files.auth import caller_of, refuse_cross_origin_writes
from files.errors import (
    BodyTooLarge,
    InvalidLength,
    InvalidParameter,
    LengthRequired,
    MethodNotAllowed,
    PreconditionFailed,
    RangeNotSatisfiable,
    UnsupportedTransferEncoding,
    error_response,
    json_error,
)
from files.metadata import FileMeta
from files.names import ascii_fallback_name
from files.operations.write import Body, read_body_piece
from labdropbox.tracing import acting_for

View = Callable[..., HttpResponseBase]


def api_view(*methods: str, public: bool = False) -> Callable[[View], View]:
    """An API endpoint: the view is called with the request's Caller after the request, its
    URL arguments (401 without valid credentials while the API is closed), unless `public`:
    then it gets no caller. Writes from other origins' pages refused, 405 for other methods,
    our exceptions as JSON errors, and no CSRF token (the API is for programs, not forms)."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            try:
                caller = None if public else caller_of(request)
                refuse_cross_origin_writes(request)
                if request.method not in methods:
                    raise MethodNotAllowed(methods)
                if caller is None:
                    return view(request, *args, **kwargs)
                with acting_for(caller.enduser):
                    return view(request, caller, *args, **kwargs)
            except Exception as exc:
                response = error_response(request, exc)
                if response is None:
                    raise
                return response

        return csrf_exempt(wrapper)

    return decorate


# --- Upload bodies -------------------------------------------------------------------------------


def parse_count(raw: str) -> int | None:
    """A count of bytes or items written in ASCII digits, or None if `raw` is not one.

    Only 0-9 count as digits (str.isdigit() also takes "²" and other digits that int() then
    refuses), and a number too long to mean anything is capped rather than parsed: int() itself
    refuses strings of over 4,300 digits, and no file or page is anywhere near 10^18.
    """
    if not ASCII_DIGITS.fullmatch(raw):
        return None
    return int(raw) if len(raw) < len(str(HUGE)) else HUGE


ASCII_DIGITS = re.compile(r"[0-9]+")
HUGE = 10**18


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


# --- JSON bodies ---------------------------------------------------------------------------------

MAX_JSON_BYTES = 4096
MAX_LINK_SECONDS = 10**10  # some 300 years: "any length", within what dates can hold
MAX_LINK_DOWNLOADS = 10**9


def json_object(request: HttpRequest) -> dict[str, Any]:
    """The body as a JSON object ({} for an empty body), read like an upload's (a client that
    stalls is cut off), and small."""
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
    return value


def request_has_body(request: HttpRequest) -> bool:
    return request.META.get("CONTENT_LENGTH", "") not in ("", "0") or bool(
        transfer_codings(request)
    )


def link_options(request: HttpRequest) -> tuple[int | None, int | None]:
    """A new share link's `expires_in_seconds` and `max_downloads` (each absent or null: none)."""
    options = json_object(request)
    unknown = sorted(set(options) - {"expires_in_seconds", "max_downloads"})
    if unknown:
        raise InvalidParameter(f"unknown field {unknown[0][:40]!r}")
    return (
        json_count(options, "expires_in_seconds", MAX_LINK_SECONDS),
        json_count(options, "max_downloads", MAX_LINK_DOWNLOADS),
    )


def json_count(options: dict[str, Any], name: str, maximum: int) -> int | None:
    value = options.get(name)
    if value is None:
        return None
    # bool is an int to Python, never to a client.
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise InvalidParameter(f"{name} must be an integer from 1 to {maximum}, or null")
    return value


# --- Query parameters ----------------------------------------------------------------------------


def query_int(request: HttpRequest, name: str, default: int, minimum: int, maximum: int) -> int:
    raw = request.GET.get(name, "")
    if not raw:
        return default
    value = parse_count(raw)
    if value is None or not minimum <= value <= maximum:
        raise InvalidParameter(f"{name} must be an integer from {minimum} to {maximum}")
    return value


# --- Downloads -----------------------------------------------------------------------------------

SINGLE_RANGE = re.compile(r"\s*([0-9]*)\s*-\s*([0-9]*)\s*")


def content_disposition(name: str) -> str:
    """`attachment` with a safe ASCII fallback name and the exact name in RFC 5987 form."""
    exact = quote(name, safe="")
    return f"attachment; filename=\"{ascii_fallback_name(name)}\"; filename*=UTF-8''{exact}"


def file_etag(meta: FileMeta) -> str:
    return f'"{meta.sha256}"'


def download_headers(meta: FileMeta) -> dict[str, str]:
    return {
        "Content-Type": "application/octet-stream",
        "Content-Disposition": content_disposition(meta.name),
        "ETag": file_etag(meta),
        "Last-Modified": http_date(meta.created_at.timestamp()),
        "Accept-Ranges": "bytes",
    }


def requested_range(request: HttpRequest, meta: FileMeta) -> tuple[int, int] | None:
    """The one byte range [start, stop) asked for, or None for the whole file.

    Several ranges get the whole file; a malformed Range header, or one whose If-Range no
    longer matches, is ignored (RFC 9110 §14.2, §13.1.5).
    """
    header = request.headers.get("Range", "")
    unit, _, specs = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in specs or not if_range_matches(request, meta):
        return None
    match = SINGLE_RANGE.fullmatch(specs)
    if not match or not any(match.groups()):
        return None
    first, last = (parse_count(number) if number else None for number in match.groups())
    size = meta.size
    if first is not None and last is not None and last < first:
        return None
    if first is not None:
        start, stop = first, min(last + 1, size) if last is not None else size
    else:
        start, stop = max(size - (last or 0), 0), size
    if start >= stop:
        raise RangeNotSatisfiable(size)
    return start, stop


def conditional_answer(
    request: HttpRequest, meta: FileMeta, headers: dict[str, str]
) -> HttpResponseBase | None:
    """The 304, or the 412 as JSON, that the request's If-None-Match, If-Modified-Since, If-Match
    or If-Unmodified-Since call for; None when the file is to be sent."""
    response = get_conditional_response(
        request,
        etag=headers["ETag"],
        last_modified=int(meta.created_at.timestamp()),
        response=HttpResponse(headers=headers),
    )
    if response is None or response.status_code == 200:
        return None
    if response.status_code == 412:
        return json_error(PreconditionFailed())
    response["Content-Length"] = str(meta.size)
    return response


def if_range_matches(request: HttpRequest, meta: FileMeta) -> bool:
    """True without If-Range, or when it names this file's ETag or Last-Modified date."""
    validator = request.headers.get("If-Range")
    if validator is None:
        return True
    if validator.startswith('"'):
        return validator == file_etag(meta)
    return parse_http_date_safe(validator) == int(meta.created_at.timestamp())
