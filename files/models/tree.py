"""Where files are: every file and folder is an Entry in its owner's tree, below one root folder
per owner (and one shared root for files that belong to no one).

Files and folders share one table so that one unique index keeps a name unique within its folder
whatever its kind, the same on SQLite, MariaDB and TiDB: the index is on `name_key`, a SHA-256 of
the name as Windows and macOS compare names (NFC, case folded), so no database collation is
involved. A folder's contents point at it (`parent`): moving a folder of 10,000 files writes one
row. Whatever is in the trash has `trash` set (the top of a trashed subtree also loses its
parent, so its name no longer takes a place), so a file's own row says whether it is live.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from files.spans import file_attributes


class EntryQuerySet(models.QuerySet["Entry"]):
    def live(self) -> EntryQuerySet:
        return self.filter(trash=None)


class Entry(models.Model):
    class Kind(models.IntegerChoices):
        FOLDER = 0, "folder"  # 0: folders sort first
        FILE = 1, "file"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.PositiveSmallIntegerField(choices=Kind.choices)
    # None: no one's (the shared tree of the open API). A deleted user's tree becomes no one's.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # None: a root, or the top of something in the trash.
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    name = models.CharField(max_length=255, blank=True)
    name_key = models.CharField(max_length=64, editable=False)
    sort_name = models.CharField(max_length=255, editable=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    modified_at = models.DateTimeField(default=timezone.now)
    # A file's current content, repeated from its current version for listing and sorting.
    size = models.PositiveBigIntegerField(default=0, help_text="bytes")
    sha256 = models.CharField("SHA-256", max_length=64, blank=True)
    current = models.ForeignKey(
        "files.Version", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    trash = models.ForeignKey(
        "files.TrashEntry", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Only on roots: `user:<id>`, or `shared` for the tree of files that belong to no one.
    root_key = models.CharField(max_length=40, null=True, blank=True, unique=True, editable=False)

    objects = EntryQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "entries"
        constraints = [
            models.UniqueConstraint(fields=["parent", "name_key"], name="entry_unique_name")
        ]
        indexes = [
            # A folder's listing, by each order, resumed from a cursor (keyset pagination).
            models.Index(fields=["parent", "kind", "sort_name", "id"], name="entry_by_name"),
            models.Index(fields=["parent", "kind", "modified_at", "id"], name="entry_by_modified"),
            models.Index(fields=["parent", "kind", "size", "id"], name="entry_by_size"),
            models.Index(fields=["owner", "kind", "-created_at"], name="entry_flat_listing"),
        ]

    def __str__(self) -> str:
        return self.name or "/"

    @property
    def is_file(self) -> bool:
        return self.kind == Entry.Kind.FILE

    @property
    def span_attributes(self) -> dict[str, str | int]:
        return file_attributes(self.id, self.name, self.size, self.chunk_count)

    @property
    def chunk_count(self) -> int:
        return self.current.blob.chunk_count if self.current is not None else 0


class KindManager(models.Manager[Any]):
    def __init__(self, kind: int) -> None:
        super().__init__()
        self.kind = kind

    def get_queryset(self) -> models.QuerySet[Any]:
        return EntryQuerySet(self.model, using=self._db).filter(kind=self.kind)


class File(Entry):
    """An entry that is a file: the id a file keeps through moves, renames and new versions."""

    # The proxy's own manager (only its kind): django-stubs types a proxy's manager as the
    # base's, which a manager that filters cannot be.
    objects = KindManager(Entry.Kind.FILE)  # type: ignore[assignment,misc]

    class Meta:
        proxy = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.kind = Entry.Kind.FILE
        super().save(*args, **kwargs)


class Folder(Entry):
    objects = KindManager(Entry.Kind.FOLDER)  # type: ignore[assignment,misc]

    class Meta:
        proxy = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.kind = Entry.Kind.FOLDER
        super().save(*args, **kwargs)


class TrashEntry(models.Model):
    """A file or folder (with everything in it) moved to the trash: where it was, and when.
    Restoring puts it back there; purging, or TRASH_RETENTION_DAYS, removes it for good."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    entry = models.OneToOneField(Entry, on_delete=models.CASCADE, related_name="trashed_as")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    root = models.ForeignKey(Entry, on_delete=models.CASCADE, related_name="+")
    original_path = models.TextField()
    trashed_at = models.DateTimeField(default=timezone.now, db_index=True)
    trashed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-trashed_at"]
        verbose_name = "trash entry"
        verbose_name_plural = "trash"

    def __str__(self) -> str:
        return self.original_path
