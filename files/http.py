"""What the API's views share: the `api_view` decorator and the parsing of requests into plain
values (the upload body and its length, query numbers, byte ranges), and download headers."""

from __future__ import annotations

import functools
import hmac
import re
import unicodedata
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.utils.cache import get_conditional_response
from django.utils.http import http_date, parse_http_date_safe
from django.views.decorators.csrf import csrf_exempt

from files.errors import (
    InvalidLength,
    InvalidParameter,
    LengthRequired,
    MethodNotAllowed,
    PreconditionFailed,
    RangeNotSatisfiable,
    Unauthorized,
    error_response,
    json_error,
)
from files.metadata import FileMeta
from files.operations.write import Body

View = Callable[..., HttpResponseBase]


def token_accepted(request: HttpRequest) -> bool:
    """True if no API_TOKEN is set, or the request's bearer token is it (constant time)."""
    if not settings.API_TOKEN:
        return True
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        token.strip().encode(), settings.API_TOKEN.encode()
    )


def api_view(*methods: str, public: bool = False) -> Callable[[View], View]:
    """An API endpoint: the bearer token when API_TOKEN is set (unless public), 405 for other
    methods, our exceptions as JSON errors, and no CSRF (the API is for programs, not forms)."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            try:
                if not public and not token_accepted(request):
                    raise Unauthorized()
                if request.method not in methods:
                    raise MethodNotAllowed(methods)
                return view(request, *args, **kwargs)
            except Exception as exc:
                response = error_response(request, exc)
                if response is None:
                    raise
                return response

        return csrf_exempt(wrapper)

    return decorate


# --- Upload bodies -------------------------------------------------------------------------------


def request_body(request: HttpRequest) -> tuple[Body, int | None]:
    """The body stream and its announced length (None for Transfer-Encoding: chunked)."""
    connection = request.META.get("gunicorn.socket")
    if connection is not None:
        # A client that stops sending without going away would hold this thread for good:
        # past this much silence the upload fails (400, nothing kept). gunicorn makes the
        # socket blocking again, with no timeout, before the connection's next request.
        connection.settimeout(settings.UPLOAD_IDLE_TIMEOUT_SECONDS)
    if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        # Only servers that decode chunked bodies (gunicorn) mark the input as terminated.
        if not request.META.get("wsgi.input_terminated"):
            raise LengthRequired("this server needs a Content-Length header")
        return request.META["wsgi.input"], None
    raw = request.META.get("CONTENT_LENGTH", "")
    if not raw:
        raise LengthRequired()
    if not raw.isdigit():
        raise InvalidLength(f"Content-Length {raw!r} is not a byte count")
    return request, int(raw)


# --- Query parameters ----------------------------------------------------------------------------


def query_int(request: HttpRequest, name: str, default: int, maximum: int) -> int:
    raw = request.GET.get(name, "")
    if not raw:
        return default
    if not raw.isdigit() or int(raw) > maximum:
        raise InvalidParameter(f"{name} must be an integer from 0 to {maximum}")
    return int(raw)


# --- Downloads -----------------------------------------------------------------------------------

SINGLE_RANGE = re.compile(r"\s*(\d*)\s*-\s*(\d*)\s*")


def content_disposition(name: str) -> str:
    """`attachment` with an ASCII fallback name and the exact name in RFC 5987 form."""
    # "café" -> "cafe": decompose, drop the accents, replace what is still not plain ASCII.
    letters = (c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    fallback = "".join(c if c.isascii() and c not in '"\\' else "_" for c in letters)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


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
    first, last = match.groups()
    size = meta.size
    if first and last and int(last) < int(first):
        return None
    if first:
        start, stop = int(first), min(int(last) + 1, size) if last else size
    else:
        start, stop = max(size - int(last), 0), size
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
