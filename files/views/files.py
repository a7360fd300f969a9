"""Files in the tree: listing (a folder in pages, or every file newest first), a file's details,
moving, copying and trashing it, and its versions."""

from __future__ import annotations

import uuid

from django.http import HttpRequest, HttpResponse

from files import spans
from files.metadata import get_visible_file_meta
from files.models import Entry
from files.names import parse_place
from files.spans import tracer
from files.tree.listing import descending, folder_at, list_folder
from files.tree.moves import copy, move
from files.tree.roots import path_of, tree_of, visible
from files.tree.trash import trash
from files.tree.versions import restore_version, versions_of
from files.views.answers import (
    entry_json,
    file_json,
    folder_json,
    page_bounds,
    paged,
    target_path,
    version_json,
)
from labdropbox.api.callers import Caller
from labdropbox.api.errors import InvalidParameter
from labdropbox.api.requests import query_int
from labdropbox.api.responses import JsonAnswer
from labdropbox.api.views import api_view

FOLDER_PAGE, MAX_FOLDER_PAGE = 100, 1000


@api_view("GET")
def files_list(request: HttpRequest, caller: Caller) -> HttpResponse:
    """`?path=/a`: one folder of the caller's tree, a page at a time. Without `path`: every
    file of the caller's (staff: everyone's), newest first, as before folders."""
    if "path" in request.GET:
        if "offset" in request.GET:
            raise InvalidParameter("a folder's listing pages by cursor: pass next_cursor")
        return folder_listing(request, caller)
    for only_with_a_path in ("sort", "order", "cursor"):
        if only_with_a_path in request.GET:
            raise InvalidParameter(f"{only_with_a_path} sorts a folder's listing: add ?path=")
    limit, offset = page_bounds(request)
    files = Entry.objects.filter(kind=Entry.Kind.FILE, trash=None)
    if not caller.is_staff:
        files = files.filter(owner_id=caller.user_id)
    page = list(
        files.select_related("current__blob").order_by("-created_at", "-id")[
            offset : offset + limit + 1
        ]
    )
    known: dict = {}
    shown = [file_json(file, path_of(file, known)) for file in page[:limit]]
    return JsonAnswer({"files": shown, **paged(page, limit, offset)})


def folder_listing(request: HttpRequest, caller: Caller) -> HttpResponse:
    sort = request.GET.get("sort", "name")
    reverse = descending(request.GET.get("order", "asc"))
    limit = query_int(request, "limit", FOLDER_PAGE, 1, MAX_FOLDER_PAGE)
    with tracer.start_as_current_span(spans.LIST_FOLDER) as span:
        folder, names = folder_at(tree_of(caller), request.GET["path"])
        page = list_folder(folder, sort, reverse, request.GET.get("cursor"), limit)
        span.set_attributes({"folder.id": str(folder.id), "entries": len(page.entries)})
    path = "/" + "/".join(names)
    return JsonAnswer(
        {
            **folder_json(folder, path),
            "entries": [entry_json(entry, path) for entry in page.entries],
            "next_cursor": page.next_cursor,
        }
    )


@api_view("GET", "DELETE")
def file_detail(request: HttpRequest, caller: Caller, file_id: str) -> HttpResponse:
    """GET: the file, with its current version's chunks; DELETE: to the trash."""
    file = visible(file_id, caller, Entry.Kind.FILE)
    if request.method == "DELETE":
        trash(file, caller)
        return HttpResponse(status=204)
    meta = get_visible_file_meta(file_id, caller)
    chunks = [
        {"index": c.index, "size": c.size, "sha256": c.sha256, "key": c.key} for c in meta.chunks
    ]
    return JsonAnswer({**file_json(file, path_of(file)), "chunks": chunks})


@api_view("POST")
def file_move(request: HttpRequest, caller: Caller, file_id: str) -> HttpResponse:
    """Move or rename a file: `{"path": "/new/place.txt"}`; its id, links and versions stay."""
    file = visible(file_id, caller, Entry.Kind.FILE)
    moved = move(file, parse_place(target_path(request)))
    return JsonAnswer(file_json(moved, path_of(moved)))


@api_view("POST")
def file_copy(request: HttpRequest, caller: Caller, file_id: str) -> HttpResponse:
    """Copy a file's current content to `{"path": …}`: a new file sharing its chunks."""
    file = visible(file_id, caller, Entry.Kind.FILE)
    made = copy(file, parse_place(target_path(request)))
    answer = JsonAnswer(file_json(made, path_of(made)), status=201)
    answer["Location"] = f"/read/{made.id}"
    return answer


@api_view("GET")
def file_versions(request: HttpRequest, caller: Caller, file_id: str) -> HttpResponse:
    """The file's versions, newest first."""
    file = visible(file_id, caller, Entry.Kind.FILE)
    limit, offset = page_bounds(request)
    page = list(versions_of(file)[offset : offset + limit + 1])
    shown = [version_json(version, file.current_id) for version in page[:limit]]
    return JsonAnswer({"file_id": str(file.id), "versions": shown, **paged(page, limit, offset)})


@api_view("POST")
def version_restore(
    request: HttpRequest, caller: Caller, file_id: str, version_id: str
) -> HttpResponse:
    """An earlier version becomes current again, as a new version (nothing is lost)."""
    file = visible(file_id, caller, Entry.Kind.FILE)
    version = restore_version(file, version_id, caller.user_id)
    file.refresh_from_db()
    return JsonAnswer(
        {
            **file_json(file, path_of(file)),
            "restored_from": str(uuid.UUID(version_id)),  # found, so a UUID: its usual form
            "version_id": str(version.id),
        },
        status=201,
    )
