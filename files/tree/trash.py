"""The trash: a file or a folder with everything in it moves there with its path; it can be put
back (into folders made again if they are gone), or purged — by hand, or TRASH_RETENTION_DAYS
after it was trashed — and only then is its content removed, if nothing else needs it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from files import spans
from files.metadata import forget_cached, lookup_ids, mark_deleted_in_cache
from files.models import Entry, ShareLink, TrashEntry, Version
from files.names import join_path, name_key, parse_path, parse_place, sort_name
from files.spans import tracer
from files.tree.collect import delete_released, release_blobs
from files.tree.roots import child, locked_tree, make_folders, path_of, root_above
from labdropbox.api.callers import Caller
from labdropbox.api.errors import EntryNotFound, NameTaken, TrashNotFound

# Subtrees are walked, marked and removed this many rows at a time.
BATCH = 500


@dataclass
class Trashed:
    """What went to the trash, and every id its files are read by: once the transaction that
    trashed them has committed, `announce()` makes every worker answer 404 for those at once
    (their share links too: never cached), and a read that looked one up just before cannot put
    it back in the cache."""

    item: TrashEntry
    lookup_ids: list[uuid.UUID]

    def announce(self) -> None:
        mark_deleted_in_cache(self.lookup_ids)


def trash(entry: Entry, caller: Caller) -> TrashEntry:
    """Move a live file or folder (with everything in it) to the trash."""
    with tracer.start_as_current_span(spans.TRASH) as span:
        with locked_tree(root_above(entry)):
            current = Entry.objects.filter(pk=entry.id, trash=None, root_key=None).first()
            if current is None or current.parent_id is None:
                raise EntryNotFound("it is in the trash already, or gone")
            span.set_attribute("entry.id", str(entry.id))
            trashed = trash_locked(current, caller.user_id)
        trashed.announce()
    return trashed.item


def trash_locked(entry: Entry, trashed_by: int | None) -> Trashed:
    """Under the tree's lock: detach the entry from its folder and mark its whole subtree (the
    caller announces it once its transaction has committed)."""
    root = root_above(entry)
    item = TrashEntry.objects.create(
        entry=entry,
        owner_id=entry.owner_id,
        root=root,
        original_path=path_of(entry),
        trashed_by_id=trashed_by,
    )
    subtree = [entry.id, *descendants(entry.id)]
    for batch in batches(subtree):
        Entry.objects.filter(pk__in=batch).update(trash=item)
    Entry.objects.filter(pk=entry.id).update(parent=None)
    return Trashed(item, lookup_ids(Entry.objects.filter(trash=item, kind=Entry.Kind.FILE)))


def restore(item_id: str, caller: Caller, to: str | None = None) -> Entry:
    """Put a trashed file or folder back where it was (or at `to`), making the folders above it
    if they are gone; NameTaken, naming the path, if something else has its name there now."""
    item = find(item_id, caller)
    root = item.root
    names = parse_place(to) if to is not None else parse_path(item.original_path)
    with tracer.start_as_current_span(spans.RESTORE) as span, locked_tree(root):
        span.set_attributes({"trash.id": str(item.id), "entry.path": join_path(names)})
        locked = TrashEntry.objects.select_related("entry").filter(pk=item.id).first()
        if locked is None:
            raise TrashNotFound("it has just been restored or purged")
        item = locked
        parent = make_folders(root, names[:-1])
        if child(parent, names[-1]) is not None:
            raise NameTaken(f"{join_path(names)} is taken: restore it to another path")
        entry = item.entry
        entry.parent, entry.name = parent, names[-1]
        entry.name_key, entry.sort_name = name_key(entry.name), sort_name(entry.name)
        entry.save(update_fields=["parent", "name", "name_key", "sort_name"])
        back = lookup_ids(Entry.objects.filter(trash=item, kind=Entry.Kind.FILE))
        Entry.objects.filter(trash=item).update(trash=None)
        item.delete()
    forget_cached(back)
    return entry


def purge(item_id: str, caller: Caller) -> None:
    item = find(item_id, caller)
    with tracer.start_as_current_span(spans.PURGE) as span:
        span.set_attribute("trash.id", str(item.id))
        purge_item(item)


def purge_item(item: TrashEntry) -> None:
    """Remove a trashed subtree for good: its rows, then the blobs nothing needs any more (in
    the same transaction), then, once committed, their chunk objects."""
    with locked_tree(item.root):
        if not TrashEntry.objects.filter(pk=item.pk).exists():
            return  # restored or purged meanwhile
        levels = list(subtree_levels(item.entry_id))
        blobs = set(
            Version.objects.filter(file__trash=item).values_list("blob_id", flat=True).distinct()
        )
        for level in reversed(levels):  # the deepest first: a folder goes after its contents
            for batch in batches(level):
                ShareLink.objects.filter(file_id__in=batch).delete()
                Version.objects.filter(file_id__in=batch).delete()
                Entry.objects.filter(pk__in=batch).update(current=None)
                Entry.objects.filter(pk__in=batch).delete()
        TrashEntry.objects.filter(pk=item.pk).delete()
        keys = release_blobs(blobs)
    delete_released(item.entry_id, keys)


def expired_trash(now: datetime | None = None) -> list[TrashEntry]:
    cutoff = (now or timezone.now()) - timedelta(days=settings.TRASH_RETENTION_DAYS)
    return list(TrashEntry.objects.filter(trashed_at__lte=cutoff).select_related("root"))


def find(item_id: str, caller: Caller) -> TrashEntry:
    try:
        item = TrashEntry.objects.select_related("root").get(pk=uuid.UUID(str(item_id)))
    except (ValueError, TrashEntry.DoesNotExist):
        raise TrashNotFound() from None
    if not caller.may_access(item.owner_id):
        raise TrashNotFound()
    return item


def descendants(entry_id: uuid.UUID) -> list[uuid.UUID]:
    return [entry for level in list(subtree_levels(entry_id))[1:] for entry in level]


def subtree_levels(entry_id: uuid.UUID) -> Iterator[list[uuid.UUID]]:
    """The ids of an entry's subtree, a level at a time: the entry, its children, theirs…"""
    level = [entry_id]
    while level:
        yield level
        below: list[uuid.UUID] = []
        for batch in batches(level):
            below.extend(Entry.objects.filter(parent_id__in=batch).values_list("pk", flat=True))
        level = below


def batches(ids: list[uuid.UUID]) -> Iterator[list[uuid.UUID]]:
    for start in range(0, len(ids), BATCH):
        yield ids[start : start + BATCH]
