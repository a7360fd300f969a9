"""What WebDAV keeps beside the tree: the dead properties clients set on files and folders, and
the locks they take. Both are rows of the database, so every worker of every instance sees the
same ones, and a lock is checked in the same transaction, under the tree's lock, as the change
it guards."""

from __future__ import annotations

import hashlib

from django.db import models

from files.models import Entry


class DeadProperty(models.Model):
    """A property a client set with PROPPATCH (Finder's and Office's metadata, litmus's tests):
    kept as the XML element it was sent as, namespaces and all, and given back unchanged."""

    entry = models.ForeignKey(Entry, on_delete=models.CASCADE, related_name="+")
    # The SHA-256 of namespace and name: what is unique and looked up, because MySQL's and
    # TiDB's usual collations take `Color` and `color` for the same text, and XML does not.
    key = models.CharField(max_length=64)
    namespace = models.CharField(max_length=255, blank=True)
    name = models.CharField(max_length=255)
    xml = models.TextField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["entry", "key"], name="dav_property_unique")]

    def __str__(self) -> str:
        return f"{{{self.namespace}}}{self.name}"


class Lock(models.Model):
    """A WebDAV lock on a path of a tree (locks belong to names, not to what is at them: a
    LOCK of a path with nothing there makes an empty file, and MOVE leaves the lock behind).
    `path_key` is the path as names compare (`/` + each name's key), so a lock on a folder
    with depth infinity covers every path that starts with its key and `/`."""

    token = models.CharField(max_length=80, primary_key=True)
    root = models.ForeignKey(Entry, on_delete=models.CASCADE, related_name="+")
    path = models.TextField()  # as the client named it, for lockroot
    path_key = models.TextField()
    exclusive = models.BooleanField(default=True)
    infinite = models.BooleanField(default=False)  # depth infinity (a folder and all below)
    owner_xml = models.TextField(blank=True)  # the client's <owner>, given back as sent
    timeout_seconds = models.PositiveIntegerField()
    expires_at = models.DateTimeField(db_index=True)
    created_by_id = models.IntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{'exclusive' if self.exclusive else 'shared'} lock on {self.path}"


def property_key(namespace: str, name: str) -> str:
    return hashlib.sha256(f"{namespace}\n{name}".encode()).hexdigest()
