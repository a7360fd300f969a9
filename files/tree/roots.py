"""A caller's tree, its lock, and the walk along a path."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import IntegrityError, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from files.models import Entry
from files.names import join_path, name_key, numbered, sort_name
from labdropbox.api.callers import Caller
from labdropbox.api.errors import EntryNotFound, FileNotFound, FolderNotFound, NameTaken, NotAFolder

SHARED = "shared"
# Paths up to this deep are found with one query (a join a level); deeper ones a level at a
# time.
JOINED_LEVELS = 8
TABLE = Entry._meta.db_table


def root_key(owner_id: int | None) -> str:
    return SHARED if owner_id is None else f"user:{owner_id}"


def root_of(owner_id: int | None) -> Entry:
    """The root folder of `owner_id`'s tree (None: the shared tree), made on first use."""
    key = root_key(owner_id)
    root = Entry.objects.filter(root_key=key).first()
    if root is not None:
        return root
    try:
        with transaction.atomic():
            return Entry.objects.create(
                kind=Entry.Kind.FOLDER,
                owner_id=owner_id,
                name="",
                name_key=name_key(""),
                sort_name="",
                root_key=key,
            )
    except IntegrityError:  # another request made it first
        return Entry.objects.get(root_key=key)


def tree_of(caller: Caller) -> Entry:
    """The tree a caller's paths are in: their own; the shared tree for the open API's
    anonymous caller and for API_TOKEN's holder."""
    return root_of(caller.user_id)


def root_above(entry: Entry) -> Entry:
    """The root of the tree an entry is in (for a trashed one, the tree it was trashed from)."""
    return root_of(entry.owner_id) if entry.root_key is None else entry


@contextmanager
def locked_tree(root: Entry) -> Iterator[Entry]:
    """A transaction holding the tree's lock: its root's row, FOR UPDATE. Every change to the
    tree's shape takes it, so they happen one at a time."""
    with transaction.atomic():
        yield Entry.objects.select_for_update().get(pk=root.pk)


def child(folder: Entry, name: str) -> Entry | None:
    """The live entry called `name` (as names compare) in a folder."""
    return Entry.objects.filter(parent=folder, name_key=name_key(name)).first()


def at_path(root: Entry, names: list[str]) -> Entry | None:
    """The entry at a path in one query (a join a level), for paths of up to JOINED_LEVELS
    names; None if it is not there — or deeper (then walk it a level at a time)."""
    if not names:
        return root
    found = path_query(root, names)
    return None if found is None else found.first()


def path_query(root: Entry, names: list[str]) -> QuerySet[Entry] | None:
    """The entry at a (non-empty) path as one query, or None if the path is too deep for one."""
    if len(names) > JOINED_LEVELS:
        return None
    lookups: dict[str, object] = {"name_key": name_key(names[-1])}
    above = ""
    for name in reversed(names[:-1]):
        above += "parent__"
        lookups[f"{above}name_key"] = name_key(name)
        lookups[f"{above}kind"] = Entry.Kind.FOLDER
    lookups[f"{above}parent"] = root
    return Entry.objects.filter(**lookups)


def folder_and_child(root: Entry, names: list[str]) -> tuple[Entry, Entry | None] | None:
    """The folder above a path and the entry at it (None if there is none yet), in one query
    for a new file (two for an existing one); None if the folder is not there, or not simply
    (then make_folders and child() find out)."""
    if len(names) == 1:
        return root, child(root, names[0])
    if len(names) - 1 > JOINED_LEVELS:
        return None
    # Written out rather than built by the ORM: building the joins costs more than running them,
    # and this is every write's path.
    joins, conditions = [], ["e.name_key = %s", "e.kind = %s"]
    params: list[object] = [name_key(names[-2]), Entry.Kind.FOLDER]
    for level, name in enumerate(reversed(names[:-2]), start=1):
        below = "e" if level == 1 else f"p{level - 1}"
        joins.append(f"JOIN {TABLE} p{level} ON {below}.parent_id = p{level}.id")
        conditions += [f"p{level}.name_key = %s", f"p{level}.kind = %s"]
        params += [name_key(name), Entry.Kind.FOLDER]
    top = "e" if len(names) == 2 else f"p{len(names) - 2}"
    conditions.append(f"{top}.parent_id = %s")
    params.append(as_db_id(root.id))
    # Only the table's name and aliases are formatted in; every value is a parameter.
    in_it = f"SELECT c.id FROM {TABLE} c WHERE c.parent_id = e.id AND c.name_key = %s"  # noqa: S608
    sql = (
        f"SELECT e.*, ({in_it} LIMIT 1) AS child_id FROM {TABLE} e {' '.join(joins)} "  # noqa: S608
        f"WHERE {' AND '.join(conditions)}"
    )
    folder = next(iter(Entry.objects.raw(sql, [name_key(names[-1]), *params])), None)
    if folder is None:
        return None
    child_id = getattr(folder, "child_id", None)
    return folder, None if child_id is None else Entry.objects.get(pk=child_id)


def as_db_id(entry_id: uuid.UUID) -> object:
    return Entry._meta.pk.get_db_prep_value(entry_id, connection)


def resolve(root: Entry, names: list[str]) -> Entry:
    """The entry at a path (`names` from the root down); EntryNotFound naming the first name
    that is missing, NotAFolder if a file stands where a folder should."""
    folder = at_path(root, names[:-1])  # the usual case: one query, none for the root
    if names and folder is not None and folder.kind == Entry.Kind.FOLDER:
        found = child(folder, names[-1])
        if found is None:
            raise EntryNotFound(f"nothing at {join_path(names)}")
        return found
    entry = root  # to say where the path breaks off
    for depth, name in enumerate(names):
        if entry.kind != Entry.Kind.FOLDER:
            raise NotAFolder(f"{join_path(names[:depth])} is a file, not a folder")
        found = child(entry, name)
        if found is None:
            raise EntryNotFound(f"nothing at {join_path(names[: depth + 1])}")
        entry = found
    return entry


def make_folders(root: Entry, names: list[str], beside_files: bool = False) -> Entry:
    """The folder at a path, made with every missing folder above it (under the tree's lock).
    A file where a folder should be is NotAFolder — or, `beside_files`, the folder is made
    beside it under the first free numbered name (for content that must find a place)."""
    found = at_path(root, names)
    if found is not None and found.kind == Entry.Kind.FOLDER:
        return found  # the usual case: it is all there
    folder = root
    for depth, name in enumerate(names):
        found = child(folder, name)
        if found is not None and found.kind != Entry.Kind.FOLDER:
            if not beside_files:
                raise NotAFolder(f"{join_path(names[: depth + 1])} is a file, not a folder")
            name, found = free_name(folder, name), None
        if found is None:
            found = new_entry(folder, name, Entry.Kind.FOLDER)
        folder = found
    return folder


def new_entry(folder: Entry, name: str, kind: int, entry_id: uuid.UUID | None = None) -> Entry:
    """A new file or folder called `name` in `folder` (NameTaken if the name is taken)."""
    now = timezone.now()
    entry = Entry(
        id=entry_id or uuid.uuid4(),
        kind=kind,
        owner_id=folder.owner_id,
        parent=folder,
        name=name,
        name_key=name_key(name),
        sort_name=sort_name(name),
        created_at=now,
        modified_at=now,
    )
    try:
        with transaction.atomic():  # a savepoint: the caller's transaction goes on
            entry.save(force_insert=True)
    except IntegrityError:
        raise NameTaken(f"{name!r} is taken in that folder") from None
    return entry


def free_name(folder: Entry, name: str) -> str:
    """`name`, or the first of `name (2)`, `name (3)`… that is free in the folder."""
    candidate, number = name, 1
    while child(folder, candidate) is not None:
        number += 1
        candidate = numbered(name, number)
    return candidate


def path_of(entry: Entry, known: dict[uuid.UUID, str] | None = None) -> str:
    """The entry's path in its tree (`/` for a root). `known` remembers folders' paths across
    calls: a listing of files in a few folders costs a few walks, not one per file."""
    known = {} if known is None else known
    chain: list[Entry] = []  # the entry and its folders, up to the root or a known folder
    prefix, current = "", entry
    while current.parent_id is not None:
        if current.parent_id in known:
            prefix = known[current.parent_id]
            break
        chain.append(current)
        current = Entry.objects.only("id", "name", "kind", "parent_id").get(pk=current.parent_id)
    path = prefix.rstrip("/")
    for node in reversed(chain):
        path = f"{path}/{node.name}"
        if node.kind == Entry.Kind.FOLDER:
            known[node.id] = path
    return path or "/"


def visible(raw_id: str, caller: Caller, kind: int) -> Entry:
    """The live file or folder with this id, if the caller may see it; else the kind's 404 —
    for another user's as for one that does not exist."""
    missing = FileNotFound(raw_id) if kind == Entry.Kind.FILE else FolderNotFound()
    try:
        entry_id = uuid.UUID(str(raw_id))
    except ValueError:
        raise missing from None
    entry = Entry.objects.select_related("current__blob").filter(pk=entry_id, kind=kind).first()
    if entry is None or entry.trash_id is not None or not caller.may_access(entry.owner_id):
        raise missing
    return entry
