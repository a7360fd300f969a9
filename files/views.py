"""HTTP API (SPEC §4). Views parse the request, call one pipeline function, and map its
exceptions to JSON errors; the work itself lives in pipeline.py."""

from __future__ import annotations

import functools
import logging
import unicodedata
from collections.abc import Callable
from typing import BinaryIO
from urllib.parse import quote

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from files.cache import FileNotFound
from files.pipeline import (
    BodyTooLarge,
    ChunkCorrupt,
    IncompleteBody,
    InvalidName,
    open_download,
    validate_name,
    write_file,
)
from files.storage import ChunkNotFound, StorageUnavailable

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


# Exception type -> (status, error code, detail). None as detail: the exception's own message.
ERRORS: dict[type[Exception], tuple[int, str, str | None]] = {
    FileNotFound: (404, "not_found", "no file has this id"),
    InvalidName: (400, "invalid_name", None),
    IncompleteBody: (400, "incomplete_body", None),
    BodyTooLarge: (413, "too_large", None),
    ChunkNotFound: (502, "chunk_missing", "a chunk of this file is missing from object storage"),
    ChunkCorrupt: (502, "chunk_corrupt", "a chunk of this file does not match its checksum"),
    StorageUnavailable: (503, "storage_unavailable", "object storage is unavailable; try again"),
    OperationalError: (503, "database_unavailable", "the database is unavailable; try again"),
    InterfaceError: (503, "database_unavailable", "the database is unavailable; try again"),
}


def json_error(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"error": code, "detail": detail}, status=status)


def api_view(*methods: str) -> Callable:
    """An API endpoint: JSON errors for our exceptions, 405 for other methods, no CSRF
    (the API is for curl and programs, not for forms in a browser session)."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method not in methods:
                response = json_error(405, "method_not_allowed", f"use {' or '.join(methods)}")
                response["Allow"] = ", ".join(methods)
                return response
            try:
                return view(request, *args, **kwargs)
            except ApiError as exc:
                return json_error(exc.status, exc.code, exc.detail)
            except tuple(ERRORS) as exc:
                status, code, detail = next(
                    entry for kind, entry in ERRORS.items() if isinstance(exc, kind)
                )
                if status >= 500:
                    log.warning("%s %s: %d %s: %s", request.method, request.path, status, code, exc)
                return json_error(status, code, detail or str(exc))

        return csrf_exempt(wrapper)

    return decorate


def request_body(request: HttpRequest) -> tuple[BinaryIO, int | None]:
    """The body stream and its announced length (None for Transfer-Encoding: chunked)."""
    if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        # Only servers that decode chunked bodies (gunicorn) mark the input as terminated.
        if not request.META.get("wsgi.input_terminated"):
            raise ApiError(411, "length_required", "this server needs a Content-Length header")
        return request.META["wsgi.input"], None
    raw = request.META.get("CONTENT_LENGTH", "")
    if not raw:
        raise ApiError(411, "length_required", "send Content-Length or a chunked body")
    if not raw.isdigit():
        raise ApiError(400, "invalid_length", f"Content-Length {raw!r} is not a byte count")
    return request, int(raw)


def content_disposition(name: str) -> str:
    """`attachment` with an ASCII fallback name and the exact name in RFC 5987 form."""
    # "café" -> "cafe": decompose, drop the accents, replace what is still not plain ASCII.
    letters = (c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    fallback = "".join(c if c.isascii() and c not in '"\\' else "_" for c in letters)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


@api_view("PUT", "POST")
def write(request: HttpRequest) -> HttpResponse:
    name = validate_name(request.GET.get("name"))  # before touching the body
    body, length = request_body(request)
    file = write_file(name, body, length)
    response = JsonResponse(
        {
            "file_id": str(file.id),
            "file_name": file.name,
            "file_size": file.size,
            "chunk_count": file.chunk_count,
            "sha256": file.sha256,
            "message": "File uploaded successfully",
        },
        status=201,
    )
    response["Location"] = f"/read/{file.id}"
    return response


@api_view("GET")
def read(request: HttpRequest, file_id: str) -> HttpResponse:
    download = open_download(file_id)
    response = StreamingHttpResponse(download.stream, content_type="application/octet-stream")
    response["Content-Length"] = str(download.meta.size)
    response["Content-Disposition"] = content_disposition(download.meta.name)
    return response


def health(request: HttpRequest) -> HttpResponse:
    """Liveness: answers without touching any dependency."""
    return HttpResponse("OK", content_type="text/plain")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return json_error(404, "not_found", f"nothing at {request.path}")


def server_error(request: HttpRequest) -> HttpResponse:
    return json_error(500, "internal_error", "the server failed; the error has been logged")
