"""The HTTP API: each view parses its request, calls one operation and builds the answer.

Errors are exceptions (labdropbox.api.errors) that `api_view` turns into JSON; the work itself
lives in files.operations.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase

from files import health, spans
from files.downloads import conditional_answer, download_headers, requested_range
from files.metadata import FileMeta, get_visible_file_meta
from files.models import File, ShareLink
from files.names import validate_name
from files.operations.delete import delete_file
from files.operations.links import (
    create_link,
    file_links,
    find_live_link,
    link_download,
    revoke_link,
    start_download,
)
from files.operations.read import FileRead
from files.operations.write import write_file
from files.quotas import usage_of
from labdropbox.api.bodies import json_count, json_object, request_body
from labdropbox.api.callers import Caller, is_authenticated
from labdropbox.api.errors import NotFound, ServiceError, json_error
from labdropbox.api.requests import query_int
from labdropbox.api.responses import JsonAnswer
from labdropbox.api.views import api_view

OPENAPI_DOCUMENT = Path(__file__).with_name("openapi.json")
DEFAULT_PAGE, MAX_PAGE, MAX_OFFSET = 50, 1000, 10**9
MAX_LINK_SECONDS = 10**10  # some 300 years: "any length", within what dates can hold
MAX_LINK_DOWNLOADS = 10**9


@api_view("PUT", "POST")
def write(request: HttpRequest, caller: Caller) -> HttpResponse:
    name = validate_name(request.GET.get("name"))  # before touching the body
    body, length = request_body(request)
    file = write_file(name, body, length, caller)
    response = JsonAnswer(
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
def read(request: HttpRequest, caller: Caller, file_id: str) -> HttpResponseBase:
    with FileRead(file_id, caller) as file_read:
        return send_file(request, file_read)


@api_view("GET", "HEAD", public=True)
def shared(request: HttpRequest, token: str) -> HttpResponseBase:
    """A share link: /read's answer, for whoever has the link (no token), while it is live."""
    link = find_live_link(token)
    attributes = {"share_link.id": str(link.id)}
    with FileRead(str(link.file_id), None, spans.READ_SHARED_FILE, attributes) as file_read:
        return send_file(request, file_read, link)


def send_file(
    request: HttpRequest, file_read: FileRead, link: ShareLink | None = None
) -> HttpResponseBase:
    """The file's bytes (or a range of them, or the answer to a conditional request or HEAD);
    through a share link, a download counted against it."""
    meta = file_read.meta
    headers = download_headers(meta)
    answer = conditional_answer(request, meta, headers)
    if answer is not None:
        return answer
    if request.method == "HEAD":
        return HttpResponse(headers={**headers, "Content-Length": str(meta.size)})
    byte_range = requested_range(request, meta)
    start, stop = byte_range or (0, meta.size)
    if link is not None:
        start_download(link, start, stop)
    body: Iterable[bytes] = file_read.body(byte_range)
    if link is not None:
        body = link_download(link, body, stop - start)
    response = StreamingHttpResponse(body, status=206 if byte_range else 200, headers=headers)
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
def files_list(request: HttpRequest, caller: Caller) -> HttpResponse:
    """The caller's files (staff: everyone's), newest first."""
    # At least one file a page: with limit=0 the next page would be this one, forever.
    limit = query_int(request, "limit", DEFAULT_PAGE, 1, MAX_PAGE)
    offset = query_int(request, "offset", 0, 0, MAX_OFFSET)
    files = File.objects.all() if caller.is_staff else File.objects.filter(owner_id=caller.user_id)
    page = list(files.order_by("-created_at", "-id")[offset : offset + limit + 1])
    return JsonAnswer(
        {
            "files": [file_json(file) for file in page[:limit]],
            "limit": limit,
            "offset": offset,
            "next_offset": offset + limit if len(page) > limit else None,
        }
    )


@api_view("GET", "DELETE")
def file_detail(request: HttpRequest, caller: Caller, file_id: str) -> HttpResponse:
    if request.method == "DELETE":
        delete_file(file_id, caller)
        return HttpResponse(status=204)
    meta = get_visible_file_meta(file_id, caller)
    chunks = [
        {"index": c.index, "size": c.size, "sha256": c.sha256, "key": c.key} for c in meta.chunks
    ]
    return JsonAnswer({**file_json(meta), "chunks": chunks})


@api_view("GET", "POST")
def links(request: HttpRequest, caller: Caller, file_id: str) -> HttpResponse:
    """A file's share links: POST makes one, GET lists them."""
    if request.method == "GET":
        listed = [link_json(request, link) for link in file_links(file_id, caller)]
        return JsonAnswer({"links": listed})
    expires_in, max_downloads = link_options(request)
    link, token = create_link(file_id, caller, expires_in, max_downloads)
    answer = link_json(request, link, token)
    return JsonAnswer(answer, status=201, headers={"Location": answer["url"]})


def link_options(request: HttpRequest) -> tuple[int | None, int | None]:
    """A new share link's `expires_in_seconds` and `max_downloads` (each absent or null: none)."""
    options = json_object(request, fields=("expires_in_seconds", "max_downloads"))
    return (
        json_count(options, "expires_in_seconds", MAX_LINK_SECONDS),
        json_count(options, "max_downloads", MAX_LINK_DOWNLOADS),
    )


@api_view("DELETE")
def link_detail(request: HttpRequest, caller: Caller, file_id: str, link_id: str) -> HttpResponse:
    revoke_link(file_id, link_id, caller)
    return HttpResponse(status=204)


def link_json(request: HttpRequest, link: ShareLink, token: str | None = None) -> dict[str, Any]:
    """A link as the API shows it. Its URL only with the token, when it is made: afterwards
    nobody can know it (only a hash of the token is kept)."""
    shown: dict[str, Any] = {
        "link_id": str(link.id),
        "file_id": str(link.file_id),
        "prefix": link.prefix,
        "created_at": link.created_at.isoformat(),
        "expires_at": link.expires_at.isoformat() if link.expires_at else None,
        "max_downloads": link.max_downloads,
        "downloads": link.downloads,
        "revoked": link.revoked_at is not None,
    }
    if token is not None:
        shown["url"] = request.build_absolute_uri(f"/s/{token}")
    return shown


@api_view("GET")
def me(request: HttpRequest, caller: Caller) -> HttpResponse:
    """Who the token belongs to, and their storage: used (stored + held by uploads in progress)
    against their quota (null: unlimited)."""
    usage = usage_of(caller.user_id)
    return JsonAnswer(
        {
            "username": caller.username or None,
            "is_staff": caller.is_staff,
            "used_bytes": usage.used,
            "stored_bytes": usage.stored,
            "reserved_bytes": usage.reserved,
            "quota_bytes": usage.limit,
        }
    )


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
    return JsonAnswer(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status=200 if ready else 503,
    )


@functools.cache
def openapi_document() -> dict[str, Any]:
    return json.loads(OPENAPI_DOCUMENT.read_text())


@api_view("GET")
def openapi(request: HttpRequest, caller: Caller) -> HttpResponse:
    return JsonAnswer(openapi_document())


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return json_error(NotFound(f"nothing at {request.path}"))


def server_error(request: HttpRequest) -> HttpResponse:
    return json_error(ServiceError())
