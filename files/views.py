"""HTTP API (SPEC §4). Views parse the request, call one pipeline function, and map its
exceptions to JSON errors; the work itself lives in pipeline.py."""

from __future__ import annotations

import functools
import hmac
import json
import logging
import re
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.utils.cache import get_conditional_response
from django.utils.http import http_date, parse_http_date_safe
from django.views.decorators.csrf import csrf_exempt

from files import health
from files.cache import FileMeta, FileNotFound, lookup_file
from files.models import File
from files.pipeline import (
    BodyTooLarge,
    ChunkCorrupt,
    IncompleteBody,
    InvalidName,
    Reading,
    delete_file,
    validate_name,
    write_file,
)
from files.storage import ChunkNotFound, StorageUnavailable

log = logging.getLogger(__name__)

OPENAPI_DOCUMENT = Path(__file__).with_name("openapi.json")
DEFAULT_PAGE, MAX_PAGE, MAX_OFFSET = 50, 1000, 10**9


class ApiError(Exception):
    def __init__(self, status: int, code: str, detail: str, headers: dict | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}


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


def json_error(status: int, code: str, detail: str, headers: dict | None = None) -> JsonResponse:
    return JsonResponse({"error": code, "detail": detail}, status=status, headers=headers)


def token_accepted(request: HttpRequest) -> bool:
    if not settings.API_TOKEN:
        return True
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        token.strip().encode(), settings.API_TOKEN.encode()
    )


def api_view(*methods: str, public: bool = False) -> Callable:
    """An API endpoint: the bearer token when API_TOKEN is set (unless public), JSON errors for
    our exceptions, 405 for other methods, and no CSRF (the API is for programs, not forms)."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not public and not token_accepted(request):
                return json_error(
                    401,
                    "unauthorized",
                    "send Authorization: Bearer <API_TOKEN>",
                    headers={"WWW-Authenticate": 'Bearer realm="labdropbox"'},
                )
            if request.method not in methods:
                detail = f"use {' or '.join(methods)}"
                return json_error(405, "method_not_allowed", detail, {"Allow": ", ".join(methods)})
            try:
                return view(request, *args, **kwargs)
            except ApiError as exc:
                return json_error(exc.status, exc.code, exc.detail, exc.headers)
            except tuple(ERRORS) as exc:
                status, code, detail = next(
                    entry for kind, entry in ERRORS.items() if isinstance(exc, kind)
                )
                if status >= 500:
                    log.warning("%s %s: %d %s: %s", request.method, request.path, status, code, exc)
                return json_error(status, code, detail or str(exc))

        wrapper.methods = methods  # for the OpenAPI test: what each URL answers
        return csrf_exempt(wrapper)

    return decorate


# --- Upload ------------------------------------------------------------------------------------


def request_body(request: HttpRequest) -> tuple[BinaryIO, int | None]:
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
            raise ApiError(411, "length_required", "this server needs a Content-Length header")
        return request.META["wsgi.input"], None
    raw = request.META.get("CONTENT_LENGTH", "")
    if not raw:
        raise ApiError(411, "length_required", "send Content-Length or a chunked body")
    if not raw.isdigit():
        raise ApiError(400, "invalid_length", f"Content-Length {raw!r} is not a byte count")
    return request, int(raw)


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


# --- Download ----------------------------------------------------------------------------------

SINGLE_RANGE = re.compile(r"\s*(\d*)\s*-\s*(\d*)\s*")


def content_disposition(name: str) -> str:
    """`attachment` with an ASCII fallback name and the exact name in RFC 5987 form."""
    # "café" -> "cafe": decompose, drop the accents, replace what is still not plain ASCII.
    letters = (c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    fallback = "".join(c if c.isascii() and c not in '"\\' else "_" for c in letters)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def etag(meta: FileMeta) -> str:
    return f'"{meta.sha256}"'


def download_headers(meta: FileMeta) -> dict[str, str]:
    return {
        "Content-Type": "application/octet-stream",
        "Content-Disposition": content_disposition(meta.name),
        "ETag": etag(meta),
        "Last-Modified": http_date(meta.created_at.timestamp()),
        "Accept-Ranges": "bytes",
    }


def requested_range(request: HttpRequest, meta: FileMeta) -> tuple[int, int] | None:
    """The one byte range [start, stop) asked for, or None for the whole file.

    Several ranges get the whole file (SPEC §4); a malformed Range header, or one whose
    If-Range no longer matches, is ignored (RFC 9110 §14.2, §13.1.5).
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
        raise ApiError(
            416,
            "range_not_satisfiable",
            f"the file has {size} bytes",
            headers={"Content-Range": f"bytes */{size}"},
        )
    return start, stop


def if_range_matches(request: HttpRequest, meta: FileMeta) -> bool:
    """True without If-Range, or when it names this file's ETag or Last-Modified date."""
    validator = request.headers.get("If-Range")
    if validator is None:
        return True
    if validator.startswith('"'):
        return validator == etag(meta)
    return parse_http_date_safe(validator) == int(meta.created_at.timestamp())


@api_view("GET", "HEAD")
def read(request: HttpRequest, file_id: str) -> HttpResponse:
    with Reading(file_id) as reading:
        meta = reading.meta
        headers = download_headers(meta)
        conditional = get_conditional_response(
            request,
            etag=headers["ETag"],
            last_modified=int(meta.created_at.timestamp()),
            response=HttpResponse(headers=headers),
        )
        if conditional.status_code == 412:
            return json_error(412, "precondition_failed", "If-Match or If-Unmodified-Since failed")
        if conditional.status_code == 304 or request.method == "HEAD":
            conditional["Content-Length"] = str(meta.size)
            return conditional
        byte_range = requested_range(request, meta)
        stream = reading.stream(byte_range)
    response = StreamingHttpResponse(stream, status=206 if byte_range else 200, headers=headers)
    start, stop = byte_range or (0, meta.size)
    response["Content-Length"] = str(stop - start)
    if byte_range:
        response["Content-Range"] = f"bytes {start}-{stop - 1}/{meta.size}"
    return response


# --- Metadata ----------------------------------------------------------------------------------


def file_json(file: File | FileMeta) -> dict:
    return {
        "file_id": str(file.id),
        "file_name": file.name,
        "file_size": file.size,
        "chunk_count": file.chunk_count if isinstance(file, File) else len(file.chunks),
        "sha256": file.sha256,
        "created_at": file.created_at.isoformat(),
    }


def query_int(request: HttpRequest, name: str, default: int, maximum: int) -> int:
    raw = request.GET.get(name, "")
    if not raw:
        return default
    if not raw.isdigit() or int(raw) > maximum:
        raise ApiError(400, "invalid_parameter", f"{name} must be an integer from 0 to {maximum}")
    return int(raw)


@api_view("GET")
def files_list(request: HttpRequest) -> HttpResponse:
    limit = query_int(request, "limit", DEFAULT_PAGE, MAX_PAGE)
    offset = query_int(request, "offset", 0, MAX_OFFSET)
    page = list(File.objects.order_by("-created_at", "-id")[offset : offset + limit + 1])
    return JsonResponse(
        {
            "files": [file_json(file) for file in page[:limit]],
            "limit": limit,
            "offset": offset,
            "next_offset": offset + limit if len(page) > limit else None,
        }
    )


@api_view("GET", "DELETE")
def file_detail(request: HttpRequest, file_id: str) -> HttpResponse:
    if request.method == "DELETE":
        delete_file(file_id)
        return HttpResponse(status=204)
    meta = lookup_file(file_id)
    chunks = [
        {"index": c.index, "size": c.size, "sha256": c.sha256, "key": c.key} for c in meta.chunks
    ]
    return JsonResponse({**file_json(meta), "chunks": chunks})


# --- Health and the API description ------------------------------------------------------------


@api_view("GET", "HEAD", public=True)
def health_live(request: HttpRequest) -> HttpResponse:
    """Liveness: answers without touching any dependency."""
    return HttpResponse("OK", content_type="text/plain")


@api_view("GET", "HEAD", public=True)
def health_ready(request: HttpRequest) -> HttpResponse:
    """Readiness: the database, the cache and object storage each answer."""
    checks = health.run_checks()
    ready = all(check["ok"] for check in checks.values())
    return JsonResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status=200 if ready else 503,
    )


@functools.cache
def openapi_document() -> dict:
    return json.loads(OPENAPI_DOCUMENT.read_text())


@api_view("GET")
def openapi(request: HttpRequest) -> HttpResponse:
    return JsonResponse(openapi_document())


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return json_error(404, "not_found", f"nothing at {request.path}")


def server_error(request: HttpRequest) -> HttpResponse:
    return json_error(500, "internal_error", "the server failed; the error has been logged")
