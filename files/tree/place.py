"""New content at a path: a new file, or — where a file has that name — its new version, the old
content kept as a version. Called by a write's or a resumable upload's commit, inside the
transaction that commits the blob and under the tree's lock.

`If-None-Match: *` refuses to overwrite, `If-Match: "<sha256>"` overwrites only that content:
checked here, under the lock, so two writers racing for one path cannot both win a condition.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.utils import timezone

from files.models import Blob, Entry, Version
from files.names import join_path
from files.tree.roots import child, folder_and_child, free_name, make_folders, new_entry
from labdropbox.api.errors import NameTaken, PreconditionFailed


@dataclass(frozen=True)
class Conditions:
    """What the writer said must hold of the path: nothing there (`If-None-Match: *`), not this
    content (`If-None-Match: "<sha256>"`), something there (`If-Match: *`), or a file whose
    content is one of these (`If-Match: "<sha256>"`)."""

    none_match: bool = False
    none_match_tags: frozenset[str] = frozenset()
    match_any: bool = False
    match: frozenset[str] | None = None

    @property
    def any(self) -> bool:
        return bool(self.none_match or self.none_match_tags or self.match_any or self.match)

    def check(self, existing: Entry | None) -> None:
        if existing is not None and (self.none_match or existing.sha256 in self.none_match_tags):
            raise PreconditionFailed("the file at this path is one If-None-Match refuses")
        if existing is None and (self.match_any or self.match is not None):
            raise PreconditionFailed("there is no file at this path to match (If-Match)")
        if existing is not None and self.match is not None and existing.sha256 not in self.match:
            raise PreconditionFailed("the file at this path is not the one If-Match names")


@dataclass(frozen=True)
class Placed:
    file: Entry
    version: Version
    created: bool  # a new file (else a new version of the one that was there)


def place_blob(
    root: Entry,
    names: list[str],
    blob: Blob,
    conditions: Conditions,
    created_by: int | None,
    beside_a_folder: bool = False,
) -> Placed:
    """Put a stored blob at a path of the (locked) tree `root`: the parents made as needed. A
    folder with the file's name is NameTaken, a file where a parent folder should be NotAFolder
    — or, `beside_a_folder`, the file (or that folder) takes the first free numbered name beside
    it: an upload whose bytes are all stored must find a place."""
    name = names[-1]
    place = folder_and_child(root, names)  # the usual case: the folders are there
    if place is None:
        folder = make_folders(root, names[:-1], beside_files=beside_a_folder)
        place = folder, child(folder, name)
    folder, existing = place
    if existing is not None and existing.kind == Entry.Kind.FOLDER:
        if not beside_a_folder:
            raise NameTaken(f"{join_path(names)} is a folder")
        name, existing = free_name(folder, name), None
    conditions.check(existing)
    if existing is None:
        # A new file takes its first blob's id: its chunks are chunks/{file_id}/{i}.
        file = new_entry(folder, name, Entry.Kind.FILE, entry_id=blob.id)
        return Placed(file, make_current(file, blob, created_by, version_id=blob.id), True)
    return Placed(existing, make_current(existing, blob, created_by, version_id=blob.id), False)


def make_current(
    file: Entry, blob: Blob, created_by: int | None, version_id: uuid.UUID | None = None
) -> Version:
    """A new version of `file` with `blob`'s content becomes its current one; the one it
    replaces is kept, counted from now for VERSION_RETENTION_DAYS."""
    now = timezone.now()
    version = Version(file=file, blob=blob, created_at=now, created_by_id=created_by)
    if version_id is not None:
        version.id = version_id
    version.save(force_insert=True)
    if file.current_id is not None:
        Version.objects.filter(pk=file.current_id).update(replaced_at=now)
    file.current, file.size, file.sha256, file.modified_at = version, blob.size, blob.sha256, now
    file.save(update_fields=["current", "size", "sha256", "modified_at"])
    return version
