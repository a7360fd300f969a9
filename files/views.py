"""The HTTP API: each view parses its request, calls one operation and builds the answer.

Errors are exceptions (files.errors) that `api_view` turns into JSON; the work itself lives in
files.operations.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase

from files import health
from files.auth import is_authenticated
from files.errors import NotFound, ServiceError, json_error
from files.http import (
    api_view,
    conditional_answer,
    download_headers,
    query_int,
    request_body,
    requested_range,
)
from files.metadata import FileMeta, get_file_meta
from files.models import File
from files.names import validate_name
from files.operations.delete import delete_file
from files.operations.read import FileRead
from files.operations.write import write_file

OPENAPI_DOCUMENT = Path(__file__).with_name("openapi.json")
DEFAULT_PAGE, MAX_PAGE, MAX_OFFSET = 50, 1000, 10**9


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


@api_view("GET", "HEAD")
def read(request: HttpRequest, file_id: str) -> HttpResponseBase:
    with FileRead(file_id) as file_read:
        meta = file_read.meta
        headers = download_headers(meta)
        answer = conditional_answer(request, meta, headers)
        if answer is not None:
            return answer
        if request.method == "HEAD":
            return HttpResponse(headers={**headers, "Content-Length": str(meta.size)})
        byte_range = requested_range(request, meta)
        body = file_read.body(byte_range)
    response = StreamingHttpResponse(body, status=206 if byte_range else 200, headers=headers)
    start, stop = byte_range or (0, meta.size)
    response["Content-Length"] = str(stop - start)
    if byte_range:
        response["Content-Range"] = f"bytes {start}-{stop - 1}/{meta.size}"
    return response


def file_json(file: File | FileMeta) -> dict[str, Any]:
    return {
        "file_id": str(file.id),
        "file_name": file.name,
        "file_size": file.size,
        "chunk_count": file.chunk_count if isinstance(file, File) else len(file.chunks),
        "sha256": file.sha256,
        "created_at": file.created_at.isoformat(),
    }


@api_view("GET")
def files_list(request: HttpRequest) -> HttpResponse:
    # At least one file a page: with limit=0 the next page would be this one, forever.
    limit = query_int(request, "limit", DEFAULT_PAGE, 1, MAX_PAGE)
    offset = query_int(request, "offset", 0, 0, MAX_OFFSET)
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
    meta = get_file_meta(file_id)
    chunks = [
        {"index": c.index, "size": c.size, "sha256": c.sha256, "key": c.key} for c in meta.chunks
    ]
    return JsonResponse({**file_json(meta), "chunks": chunks})


@api_view("GET", "HEAD", public=True)
def health_live(request: HttpRequest) -> HttpResponse:
    """Liveness: answers without touching any dependency."""
    return HttpResponse("OK", content_type="text/plain")


@api_view("GET", "HEAD", public=True)
def health_ready(request: HttpRequest) -> HttpResponse:
    """Readiness: the database, the cache and object storage each answer. Why one does not
    (hosts, paths, exception text) is shown only to a request with credentials."""
    checks = health.run_checks()
    ready = all(check["ok"] for check in checks.values())
    if not (is_authenticated(request) or settings.DEBUG):
        checks = {name: {"ok": check["ok"]} for name, check in checks.items()}
    return JsonResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status=200 if ready else 503,
    )


@functools.cache
def openapi_document() -> dict[str, Any]:
    return json.loads(OPENAPI_DOCUMENT.read_text())


@api_view("GET")
def openapi(request: HttpRequest) -> HttpResponse:
    return JsonResponse(openapi_document())


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return json_error(NotFound(f"nothing at {request.path}"))


def server_error(request: HttpRequest) -> HttpResponse:
    return json_error(ServiceError())
