"""What a file holds, in and out: PUT /write, GET /read, and downloads through share links."""

from __future__ import annotations

from collections.abc import Iterable

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils.cache import patch_vary_headers

from files import spans
from files.downloads import conditional_answer, download_headers, requested_range
from files.models import ShareLink
from files.names import join_path, parse_path, validate_name
from files.operations.links import find_live_link, link_download, start_download
from files.operations.read import FileRead
from files.operations.write import write_file
from files.views.answers import conditions
from labdropbox.api.bodies import request_body
from labdropbox.api.callers import Caller
from labdropbox.api.errors import InvalidName, LinkNotFound
from labdropbox.api.responses import JsonAnswer
from labdropbox.api.views import api_view
from labdropbox.pages import prefers_html, secured


@api_view("PUT", "POST")
def write(request: HttpRequest, caller: Caller) -> HttpResponse:
    """Store the body at `?path=/a/b.txt` (folders made as needed), or `?name=` in the root: a
    new file (201), or a new version of the file there (200)."""
    names = target_names(request)  # before touching the body
    body, length = request_body(request)
    placed = write_file(names, body, length, caller, conditions(request))
    file = placed.file
    response = JsonAnswer(
        {
            "file_id": str(file.id),
            "version_id": str(placed.version.id),
            "path": join_path(names[:-1] + [file.name]),
            "file_name": file.name,
            "file_size": file.size,
            "chunk_count": placed.version.blob.chunk_count,
            "sha256": file.sha256,
            "message": "File uploaded successfully" if placed.created else "New version stored",
        },
        status=201 if placed.created else 200,
    )
    response["Location"] = f"/read/{file.id}"
    return response


def target_names(request: HttpRequest) -> list[str]:
    path, name = request.GET.get("path"), request.GET.get("name")
    if path is not None and name is not None:
        raise InvalidName("send path or name, not both")
    if path is not None:
        names = parse_path(path)
        if not names:
            raise InvalidName("the path names no file")
        return names
    if name is None:
        raise InvalidName("send ?path=/folder/file.txt (or ?name=file.txt for the root folder)")
    return [validate_name(name, "name query parameter")]


@api_view("GET", "HEAD")
def read(request: HttpRequest, caller: Caller, file_id: str) -> HttpResponseBase:
    version = request.GET.get("version")
    with FileRead(file_id, caller, version=version) as file_read:
        return send_file(request, file_read)


@api_view("GET", "HEAD", public=True)
def shared(request: HttpRequest, token: str) -> HttpResponseBase:
    """A share link: /read's answer, for whoever has the link (no token), while it is live. A
    browser opening it (Accept: text/html) gets a page with the file's name and size and a
    download button (`?download=1`) instead; that page counts no download."""
    browser = prefers_html(request.headers.get("Accept", ""))
    if browser and "download" not in request.GET:
        return share_page(request, token)
    try:
        link = find_live_link(token)
        attributes = {"share_link.id": str(link.id)}
        with FileRead(str(link.file_id), None, spans.READ_SHARED_FILE, attributes) as file_read:
            response = send_file(request, file_read, link)
    except LinkNotFound:
        if browser:  # its page's button, after the link stopped: the page that says so
            return share_page(request, token)
        raise
    patch_vary_headers(response, ["Accept"])
    return response


def share_page(request: HttpRequest, token: str) -> HttpResponseBase:
    """The link's page; "not found" also once its downloads have all started (resuming one
    still works, but a new download from the button would not)."""
    try:
        link = find_live_link(token)
    except LinkNotFound:
        link = None
    if link is None or (link.max_downloads is not None and link.downloads >= link.max_downloads):
        context, status = {}, 404
    else:
        context, status = {"link": link, "file": link.file}, 200
    response = render(request, "files/shared.html", context, status=status)
    response["Cache-Control"] = "no-store"
    patch_vary_headers(response, ["Accept"])
    return secured(response)


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
