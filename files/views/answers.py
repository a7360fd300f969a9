"""How files, folders, versions, trash entries and links look in the API's answers, and the
request values the tree's endpoints share (a JSON body's path, conditional headers, pages)."""

from __future__ import annotations

import uuid
from typing import Any

from django.http import HttpRequest

from files.models import Entry, ShareLink, TrashEntry, Version
from files.tree.place import Conditions
from files.tree.roots import path_of
from labdropbox.api.bodies import json_object
from labdropbox.api.errors import InvalidParameter
from labdropbox.api.requests import query_int

DEFAULT_PAGE, MAX_PAGE, MAX_OFFSET = 50, 1000, 10**9


def file_json(file: Entry, path: str | None = None) -> dict[str, Any]:
    shown = {
        "file_id": str(file.id),
        "file_name": file.name,
        "file_size": file.size,
        "chunk_count": file.chunk_count,
        "sha256": file.sha256,
        "created_at": file.created_at.isoformat(),
        "modified_at": file.modified_at.isoformat(),
        "version_id": str(file.current_id) if file.current_id else None,
        "folder_id": str(file.parent_id) if file.parent_id else None,
    }
    if path is not None:
        shown["path"] = path
    return shown


def folder_json(folder: Entry, path: str | None = None) -> dict[str, Any]:
    return {
        "folder_id": str(folder.id),
        "name": folder.name,
        "path": path if path is not None else path_of(folder),
        "created_at": folder.created_at.isoformat(),
        "parent_id": str(folder.parent_id) if folder.parent_id else None,
    }


def entry_json(entry: Entry, folder_path: str) -> dict[str, Any]:
    """One line of a folder's listing."""
    is_file = entry.kind == Entry.Kind.FILE
    shown: dict[str, Any] = {
        "kind": "file" if is_file else "folder",
        "name": entry.name,
        "path": folder_path.rstrip("/") + "/" + entry.name,
        ("file_id" if is_file else "folder_id"): str(entry.id),
        "size": entry.size,
        "modified": entry.modified_at.isoformat(),
    }
    if is_file:
        shown["sha256"] = entry.sha256
    return shown


def version_json(version: Version, current_id: uuid.UUID | None) -> dict[str, Any]:
    return {
        "version_id": str(version.id),
        "size": version.blob.size,
        "sha256": version.blob.sha256,
        "created_at": version.created_at.isoformat(),
        "replaced_at": version.replaced_at.isoformat() if version.replaced_at else None,
        "current": version.id == current_id,
    }


def trash_json(item: TrashEntry) -> dict[str, Any]:
    entry = item.entry
    is_file = entry.kind == Entry.Kind.FILE
    return {
        "trash_id": str(item.id),
        "kind": "file" if is_file else "folder",
        "name": entry.name,
        "original_path": item.original_path,
        ("file_id" if is_file else "folder_id"): str(entry.id),
        "size": entry.size if is_file else None,
        "trashed_at": item.trashed_at.isoformat(),
    }


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


# --- what requests say ---------------------------------------------------------------------------


def target_path(request: HttpRequest, optional: bool = False) -> str | None:
    """The `path` of a JSON body (`{"path": "/a/b"}`): where something goes."""
    body = json_object(request, fields=("path",))
    path = body.get("path")
    if path is None and optional:
        return None
    if not isinstance(path, str):
        raise InvalidParameter('send {"path": "/where/it/goes"}')
    return path


def conditions(request: HttpRequest) -> Conditions:
    """If-None-Match and If-Match of a write: `*` or entity tags (the SHA-256s, quoted)."""
    none_match = etags(request.headers.get("If-None-Match"))
    match = etags(request.headers.get("If-Match"))
    return Conditions(
        none_match=none_match == {"*"},
        none_match_tags=frozenset(none_match - {"*"}),
        match_any=match == {"*"},
        match=None if not match or match == {"*"} else frozenset(match),
    )


def etags(header: str | None) -> set[str]:
    if header is None:
        return set()
    tags = {tag.strip().removeprefix("W/").strip('"') for tag in header.split(",") if tag.strip()}
    return tags


def page_bounds(request: HttpRequest) -> tuple[int, int]:
    # At least one item a page: with limit=0 the next page would be this one, forever.
    limit = query_int(request, "limit", DEFAULT_PAGE, 1, MAX_PAGE)
    offset = query_int(request, "offset", 0, 0, MAX_OFFSET)
    return limit, offset


def paged(items: list[Any], limit: int, offset: int) -> dict[str, Any]:
    """A page of `items` (fetched one past `limit`, to know whether another page follows)."""
    return {
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if len(items) > limit else None,
    }
