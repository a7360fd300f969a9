"""A folder listed a page at a time: folders first, then files, each by name, modification time
or size, resumed from an opaque cursor. A page is one index range scan from where the last one
ended (keyset pagination), so it costs the same at the start of a folder and a million entries
in — where OFFSET would read and throw away everything before it."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet

from files.models import Entry
from files.names import parse_path
from files.tree.roots import resolve
from labdropbox.api.errors import InvalidParameter, NotAFolder

# sort -> the column after `kind`; `id` breaks ties.
SORT_COLUMNS = {"name": "sort_name", "modified": "modified_at", "size": "size"}


@dataclass(frozen=True)
class Page:
    entries: list[Entry]
    next_cursor: str | None


def folder_at(root: Entry, raw_path: str) -> tuple[Entry, list[str]]:
    """The folder at a path of the tree, as the client wrote the path, and the path's names;
    NotAFolder where the path names a file."""
    names = parse_path(raw_path)
    folder = resolve(root, names)
    if folder.kind != Entry.Kind.FOLDER:
        raise NotAFolder(f"{raw_path} is a file")
    return folder, names


def descending(order: str) -> bool:
    """A listing's `order`: asc or desc."""
    if order not in ("asc", "desc"):
        raise InvalidParameter("order is asc or desc")
    return order == "desc"


def list_folder(folder: Entry, sort: str, descending: bool, cursor: str | None, limit: int) -> Page:
    if sort not in SORT_COLUMNS:
        raise InvalidParameter(f"sort is one of {', '.join(SORT_COLUMNS)}")
    column = SORT_COLUMNS[sort]
    after = decode_cursor(cursor, column) if cursor else None
    entries: list[Entry] = []
    for kind in (Entry.Kind.FOLDER, Entry.Kind.FILE):
        if after is not None and kind < after[0]:
            continue
        rows: QuerySet[Entry] = Entry.objects.filter(parent=folder, kind=kind)
        if after is not None and kind == after[0]:
            rows = beyond(rows, column, after[1], after[2], descending)
        sign = "-" if descending else ""
        ordered = rows.order_by(f"{sign}{column}", f"{sign}id")
        entries.extend(ordered[: limit + 1 - len(entries)])
        if len(entries) > limit:
            break
    page, more = entries[:limit], len(entries) > limit
    return Page(page, encode_cursor(page[-1], column) if more else None)


def beyond(
    rows: QuerySet[Entry], column: str, key: Any, last_id: uuid.UUID, descending: bool
) -> QuerySet[Entry]:
    """The rows after (key, id) in the order: one range from `key` on, less the ties already
    listed — a form every database's optimiser turns into an index range scan."""
    if descending:
        return rows.filter(**{f"{column}__lte": key}).exclude(
            Q(**{column: key}) & Q(id__gte=last_id)
        )
    return rows.filter(**{f"{column}__gte": key}).exclude(Q(**{column: key}) & Q(id__lte=last_id))


def encode_cursor(entry: Entry, column: str) -> str:
    key = getattr(entry, column)
    value = key.isoformat() if isinstance(key, datetime) else key
    raw = json.dumps([entry.kind, value, str(entry.id)], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, column: str) -> tuple[int, Any, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        kind, value, last_id = json.loads(raw)
        if column == "modified_at":
            value = datetime.fromisoformat(value)
        elif column == "size" and not (isinstance(value, int) and 0 <= value < 2**63):
            raise ValueError("size")
        elif column == "sort_name" and not isinstance(value, str):
            raise ValueError("name")
        return int(kind), value, uuid.UUID(str(last_id))
    except (ValueError, TypeError, OverflowError, binascii.Error, json.JSONDecodeError):
        raise InvalidParameter(
            "cursor is not one this listing gave (or not for this sort)"
        ) from None
