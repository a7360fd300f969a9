"""The trash: listed newest first, restored (to where it was, or to `{"path": …}`), purged."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from files.models import Entry, TrashEntry
from files.tree.roots import path_of, tree_of
from files.tree.trash import purge, restore
from files.views.answers import file_json, folder_json, page_bounds, paged, target_path, trash_json
from labdropbox.api.callers import Caller
from labdropbox.api.responses import JsonAnswer
from labdropbox.api.views import api_view


@api_view("GET")
def trash_list(request: HttpRequest, caller: Caller) -> HttpResponse:
    limit, offset = page_bounds(request)
    items = TrashEntry.objects.filter(root=tree_of(caller)).select_related("entry")
    page = list(items.order_by("-trashed_at", "-id")[offset : offset + limit + 1])
    return JsonAnswer(
        {"entries": [trash_json(item) for item in page[:limit]], **paged(page, limit, offset)}
    )


@api_view("POST")
def trash_restore(request: HttpRequest, caller: Caller, trash_id: str) -> HttpResponse:
    entry = restore(trash_id, caller, target_path(request, optional=True))
    path = path_of(entry)
    if entry.kind == Entry.Kind.FILE:
        return JsonAnswer({"kind": "file", **file_json(entry, path)})
    return JsonAnswer({"kind": "folder", **folder_json(entry, path)})


@api_view("DELETE")
def trash_purge(request: HttpRequest, caller: Caller, trash_id: str) -> HttpResponse:
    purge(trash_id, caller)
    return HttpResponse(status=204)
