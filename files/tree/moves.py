"""Making folders, moving and renaming files and folders, and copying them — each one
transaction under the tree's lock. A move writes one row whatever a folder holds; a copy makes
new entries and versions that point at the same blobs, and copies no chunk."""

from __future__ import annotations

import uuid

from django.db import transaction
from django.utils import timezone

from files import spans
from files.metadata import drop_cached_meta
from files.models import Entry, Version
from files.names import join_path, name_key, sort_name
from files.spans import tracer
from files.tree.collect import hold_blob
from files.tree.roots import (
    child,
    locked_tree,
    make_folders,
    new_entry,
    root_above,
)
from files.tree.trash import Trashed, trash_locked
from labdropbox.api.errors import EntryNotFound, IntoItself, NameTaken


def create_folder(root: Entry, names: list[str]) -> Entry:
    """A new folder at a path, with the missing folders above it (NameTaken if the path is
    taken by a folder or a file)."""
    with tracer.start_as_current_span(spans.CREATE_FOLDER) as span, locked_tree(root):
        span.set_attribute("folder.path", join_path(names))
        parent = make_folders(root, names[:-1])
        folder = new_entry(parent, names[-1], Entry.Kind.FOLDER)
        span.set_attribute("folder.id", str(folder.id))
        return folder


def move(entry: Entry, names: list[str], replace: bool = False) -> Entry:
    """Move (and rename) a live file or folder to a path of its own tree; the missing folders
    there are made. An entry at the path is NameTaken — or, with `replace`, moved to the trash
    first (WebDAV's MOVE with Overwrite)."""
    root = root_above(entry)
    name = spans.MOVE_FILE if entry.kind == Entry.Kind.FILE else spans.MOVE_FOLDER
    with tracer.start_as_current_span(name) as span, locked_tree(root):
        entry = live(entry.id)
        span.set_attributes({"entry.id": str(entry.id), "entry.path": join_path(names)})
        parent = make_folders(root, names[:-1])
        if entry.kind == Entry.Kind.FOLDER and is_inside(parent, entry):
            raise IntoItself()
        replaced = make_room(parent, names, entry, replace)
        entry.parent, entry.name = parent, names[-1]
        entry.name_key, entry.sort_name = name_key(entry.name), sort_name(entry.name)
        entry.save(update_fields=["parent", "name", "name_key", "sort_name"])
    # Once the change is committed (in a caller's transaction: when that one commits).
    if replaced is not None:
        transaction.on_commit(replaced.announce)
    if entry.kind == Entry.Kind.FILE:
        transaction.on_commit(lambda: drop_cached_meta(entry.id))  # its name, for downloads
    return entry


def copy(entry: Entry, names: list[str], replace: bool = False) -> Entry:
    """A copy of a live file (its current content) or folder (everything in it) at a path of
    its tree: new ids, the same blobs."""
    root = root_above(entry)
    name = spans.COPY_FILE if entry.kind == Entry.Kind.FILE else spans.COPY_FOLDER
    with tracer.start_as_current_span(name) as span:
        with locked_tree(root):
            entry = live(entry.id)
            span.set_attributes({"entry.id": str(entry.id), "entry.path": join_path(names)})
            parent = make_folders(root, names[:-1])
            if entry.kind == Entry.Kind.FOLDER and is_inside(parent, entry):
                raise IntoItself("a folder cannot be copied into itself")
            replaced = make_room(parent, names, entry, replace)
            made = copy_into(entry, parent, names[-1])
            span.set_attribute("copy.id", str(made.id))
        if replaced is not None:
            transaction.on_commit(replaced.announce)
    return made


def copy_into(entry: Entry, parent: Entry, name: str) -> Entry:
    """A copy of `entry` (a folder with everything in it) called `name` in `parent`; walked
    with a list, not recursion, so no depth of folders is too deep."""
    top = copy_one(entry, parent, name)
    pending = [(entry, top)]
    while pending:
        original, made = pending.pop()
        for inner in Entry.objects.filter(parent=original).order_by("kind", "sort_name"):
            copied = copy_one(inner, made, inner.name)
            if inner.kind == Entry.Kind.FOLDER:
                pending.append((inner, copied))
    return top


def copy_one(entry: Entry, parent: Entry, name: str) -> Entry:
    """A new entry like `entry` in `parent`: a file with its current content, or an empty folder."""
    made = new_entry(parent, name, entry.kind)
    if entry.kind == Entry.Kind.FILE:
        current = Version.objects.get(file=entry, replaced_at=None)
        blob = hold_blob(current.blob_id)
        now = timezone.now()
        version = Version.objects.create(file=made, blob=blob, created_at=now)
        made.current, made.size, made.sha256 = version, blob.size, blob.sha256
        made.save(update_fields=["current", "size", "sha256"])
    return made


def make_room(parent: Entry, names: list[str], moving: Entry, replace: bool) -> Trashed | None:
    """The target name free for `moving`: NameTaken if another entry has it — or, `replace`,
    that entry trashed (announced by the caller once its transaction commits)."""
    taken = child(parent, names[-1])
    if taken is None or taken.id == moving.id:
        return None
    if not replace:
        raise NameTaken(f"{join_path(names)} is taken")
    if is_inside(moving, taken):  # it would go to the trash with what takes its place
        raise IntoItself(f"{join_path(names)} holds what is being put there")
    return trash_locked(taken, None)


def is_inside(folder: Entry, ancestor: Entry) -> bool:
    """Whether `folder` is `ancestor` or somewhere below it (a walk up to the root)."""
    current: Entry | None = folder
    while current is not None:
        if current.id == ancestor.id:
            return True
        if current.parent_id is None:
            return False
        current = Entry.objects.only("id", "parent_id").get(pk=current.parent_id)
    return False


def live(entry_id: uuid.UUID) -> Entry:
    """The entry as it is now, if it is not in the trash (read under the tree's lock)."""
    entry = Entry.objects.filter(pk=entry_id, trash=None).exclude(root_key__isnull=False).first()
    if entry is None or entry.parent_id is None:
        raise EntryNotFound("it is in the trash, or gone")
    return entry
