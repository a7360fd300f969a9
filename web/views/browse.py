"""The member's tree, a folder at a time: breadcrumbs, folders first, sorted by name, date or
size, in pages. The page works without JavaScript (links and downloads are plain links); with
it, files and folders are uploaded, dragged onto folders, renamed and deleted in place."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.http import urlencode

from files.models import Entry
from files.tree.listing import descending, folder_at, list_folder
from files.tree.roots import path_of, tree_of
from labdropbox.api.callers import Caller
from web.pages import member_page, storage_of

PAGE_SIZE = 100


@member_page
def browse(request: HttpRequest, caller: Caller) -> HttpResponse:
    """`/?path=/a/b&sort=size&order=desc&cursor=…`: one page of one folder."""
    sort = request.GET.get("sort", "name")
    order = request.GET.get("order", "asc")
    reverse = descending(order)
    folder, _ = folder_at(tree_of(caller), request.GET.get("path", "/"))
    path = path_of(folder)
    listing = list_folder(folder, sort, reverse, request.GET.get("cursor"), PAGE_SIZE)
    here = {"path": path, "sort": sort, "order": order}
    return render(
        request,
        "web/browse.html",
        {
            "folder": folder,
            "path": path,
            "crumbs": crumbs(path),
            "entries": [row(entry, path) for entry in listing.entries],
            "columns": columns(path, sort, order),
            "first_page": "?" + urlencode(here) if "cursor" in request.GET else None,
            "next_page": "?" + urlencode({**here, "cursor": listing.next_cursor})
            if listing.next_cursor
            else None,
            "storage": storage_of(caller),
            "max_upload_bytes": settings.MAX_UPLOAD_BYTES,
            "nav": "files",
        },
    )


def crumbs(path: str) -> list[dict[str, str]]:
    """Home, then each folder down to this one, each with its path."""
    names = [name for name in path.split("/") if name]
    trail = [{"name": "Home", "path": "/"}]
    for depth, name in enumerate(names, start=1):
        trail.append({"name": name, "path": "/" + "/".join(names[:depth])})
    return trail


def row(entry: Entry, folder_path: str) -> dict[str, object]:
    is_file = entry.kind == Entry.Kind.FILE
    return {
        "id": str(entry.id),
        "kind": "file" if is_file else "folder",
        "name": entry.name,
        "path": folder_path.rstrip("/") + "/" + entry.name,
        "size": entry.size if is_file else None,
        "modified": entry.modified_at,
    }


def columns(path: str, sort: str, order: str) -> list[dict[str, str]]:
    """The sortable column headings: a link each, that flips the order of the current one."""
    shown = []
    for key, title in (("name", "Name"), ("size", "Size"), ("modified", "Modified")):
        current = key == sort
        flipped = "desc" if current and order == "asc" else "asc"
        shown.append(
            {
                "title": title,
                "url": "?" + urlencode({"path": path, "sort": key, "order": flipped}),
                "sorted": ("ascending" if order == "asc" else "descending") if current else "none",
            }
        )
    return shown
