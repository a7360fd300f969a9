"""One file (its versions and share links), one folder, and the trash. What can be done to them
is done by the page's script through the API, under the member's session and CSRF token."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from files.models import Entry, ShareLink, TrashEntry
from files.operations.links import file_links
from files.tree.roots import path_of, tree_of, visible
from files.tree.versions import versions_of
from labdropbox.api.callers import Caller
from labdropbox.api.requests import query_int
from web.pages import member_page, storage_of
from web.views.browse import crumbs

SHOWN = 50  # versions, links and trash entries on a page


@member_page
def file_page(request: HttpRequest, caller: Caller, file_id: str) -> HttpResponse:
    file = visible(file_id, caller, Entry.Kind.FILE)
    path = path_of(file)
    folder_path = path.rsplit("/", 1)[0] or "/"
    versions = list(versions_of(file)[: SHOWN + 1])
    links = list(file_links(file_id, caller)[: SHOWN + 1])
    return render(
        request,
        "web/file.html",
        {
            "file": file,
            "path": path,
            "folder_path": folder_path,
            "crumbs": crumbs(folder_path),  # its folders; its name is the page's title
            "versions": versions[:SHOWN],
            "more_versions": len(versions) > SHOWN,
            "links": [link_state(link) for link in links[:SHOWN]],
            "more_links": len(links) > SHOWN,
            "storage": storage_of(caller),
            "nav": "files",
        },
    )


def link_state(link: ShareLink) -> dict[str, object]:
    """A link as its row shows it: whether it still works, and if not, why."""
    if link.revoked_at is not None:
        state = "revoked"
    elif link.expires_at is not None and link.expires_at <= timezone.now():
        state = "expired"
    elif link.is_spent or (link.max_downloads is not None and link.downloads >= link.max_downloads):
        state = "used up"  # (a download it began may still be resumed)
    else:
        state = "live"
    return {"link": link, "state": state}


@member_page
def folder_page(request: HttpRequest, caller: Caller, folder_id: str) -> HttpResponse:
    folder = visible(folder_id, caller, Entry.Kind.FOLDER)
    path = path_of(folder)
    return render(
        request,
        "web/folder.html",
        {
            "folder": folder,
            "path": path,
            "parent_path": path.rsplit("/", 1)[0] or "/",
            "crumbs": crumbs(path),
            "is_root": folder.root_key is not None,
            "storage": storage_of(caller),
            "nav": "files",
        },
    )


@member_page
def trash_page(request: HttpRequest, caller: Caller) -> HttpResponse:
    """What is in the trash, newest first, a page at a time (`?page=2`)."""
    number = query_int(request, "page", 1, 1, 10**6)
    items = TrashEntry.objects.filter(root=tree_of(caller)).select_related("entry")
    start = (number - 1) * SHOWN
    page = list(items.order_by("-trashed_at", "-id")[start : start + SHOWN + 1])
    return render(
        request,
        "web/trash.html",
        {
            "items": page[:SHOWN],
            "previous_page": number - 1 if number > 1 else None,
            "next_page": number + 1 if len(page) > SHOWN else None,
            "storage": storage_of(caller),
            "nav": "trash",
        },
    )
