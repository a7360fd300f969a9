"""A file's versions: every content it has had, newest first, kept VERSION_RETENTION_DAYS after
it was replaced. Restoring one makes it current again as a new version, so restoring loses
nothing either."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from files import spans
from files.metadata import drop_cached_meta, forget_cached, mark_deleted_in_cache
from files.models import Entry, Version
from files.spans import tracer
from files.tree.collect import delete_released, hold_blob, release_blobs
from files.tree.moves import live
from files.tree.place import make_current
from files.tree.roots import locked_tree, root_above, root_of
from labdropbox.api.errors import VersionNotFound


def versions_of(file: Entry) -> QuerySet[Version]:
    return Version.objects.filter(file=file).select_related("blob").order_by("-created_at", "-id")


def version_of(file: Entry, raw_version_id: str) -> Version:
    try:
        version_id = uuid.UUID(str(raw_version_id))
    except ValueError:
        raise VersionNotFound() from None
    version = Version.objects.select_related("blob").filter(pk=version_id, file=file).first()
    if version is None:
        raise VersionNotFound()
    return version


def restore_version(file: Entry, raw_version_id: str, created_by: int | None) -> Version:
    """Make an earlier content current again, as a new version (the one it replaces is kept)."""
    with tracer.start_as_current_span(spans.RESTORE_VERSION) as span, locked_tree(root_above(file)):
        file = live(file.id)
        old = version_of(file, raw_version_id)
        span.set_attributes({"file.id": str(file.id), "version.id": str(old.id)})
        version = make_current(file, hold_blob(old.blob_id), created_by)
    drop_cached_meta(file.id)
    return version


def expire_versions(now: datetime | None = None) -> int:
    """Remove the versions replaced more than VERSION_RETENTION_DAYS ago, tree by tree, and the
    content nothing needs after them; how many went."""
    cutoff = retention_cutoff(now)
    expired = Version.objects.filter(replaced_at__lte=cutoff)
    owners = set(expired.values_list("file__owner_id", flat=True).distinct())
    removed = 0
    for owner_id in owners:
        removed += expire_in_tree(owner_id, cutoff)
    return removed


def expired_versions(now: datetime | None = None) -> int:
    """How many versions `expire_versions` would remove now."""
    return Version.objects.filter(replaced_at__lte=retention_cutoff(now)).count()


def retention_cutoff(now: datetime | None) -> datetime:
    return (now or timezone.now()) - timedelta(days=settings.VERSION_RETENTION_DAYS)


def expire_in_tree(owner_id: int | None, cutoff: datetime) -> int:
    with locked_tree(root_of(owner_id)):
        expired = Version.objects.filter(replaced_at__lte=cutoff, file__owner_id=owner_id)
        gone = list(expired.values_list("pk", "blob_id", "file_id"))
        expired.delete()
        keys = release_blobs({blob_id for _, blob_id, _ in gone})
    # /read/{version_id} answers 404 at once. A file's first version has the file's id: that
    # one is not marked gone (the file reads on). Every file that lost versions is looked up
    # afresh: an entry a reader cached just before an overwrite must not outlive its content.
    files = {file_id for _, _, file_id in gone}
    mark_deleted_in_cache(pk for pk, _, _ in gone if pk not in files)
    forget_cached(files)
    delete_released(owner_id, keys)
    return len(gone)
