"""An upload's lock: a token and a lease in its row, taken with one conditional UPDATE.

Whoever writes to an upload (a PATCH, the commit of a final upload, a termination) holds it. The
lease is renewed while the holder works, so a worker that dies holding it frees the upload when
the lease ends, not at a restart — like tusd's one Locker per store, but in the database, where
every worker of every instance sees it.
"""

from __future__ import annotations

import secrets
import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from files.models import Upload
from labdropbox.api.errors import LockLost, OffsetMismatch, UploadLocked


def lease() -> timedelta:
    """How long a request holds an upload's lock without renewing it."""
    return timedelta(seconds=settings.UPLOAD_IDLE_TIMEOUT_SECONDS)


def try_lock(upload_id: uuid.UUID, **conditions: object) -> str | None:
    """Take an unfinished upload's lock if no live request holds it (and `conditions` hold);
    the token that proves it, or None."""
    token, now = secrets.token_hex(16), timezone.now()
    free = Upload.objects.filter(pk=upload_id, completed_at=None, **conditions).filter(
        Q(lock_token="") | Q(lock_expires_at__lte=now)
    )
    return token if free.update(lock_token=token, lock_expires_at=now + lease()) else None


def release_lock(upload_id: uuid.UUID, token: str) -> None:
    Upload.objects.filter(pk=upload_id, lock_token=token).update(lock_token="")


def lock_at_offset(upload: Upload) -> str:
    """Hold the upload's lock at the offset the request was checked against (UploadLocked if a
    live request holds it; OffsetMismatch if one moved the offset meanwhile); its token."""
    token = try_lock(upload.id, offset=upload.offset)
    if token is not None:
        return token
    current = Upload.objects.filter(pk=upload.id).values_list("offset", flat=True).first()
    if current is not None and current != upload.offset:
        raise OffsetMismatch(current)
    raise UploadLocked()


class Lease:
    """The lock a request holds on an upload, renewed as it works: at most every third of the
    lease, so that renewing costs a write only now and then."""

    def __init__(self, upload_id: uuid.UUID, token: str) -> None:
        self.upload_id = upload_id
        self.token = token
        self.renewed = time.monotonic()

    @property
    def held(self) -> Q:
        """The condition of every write the holder makes to the upload's row."""
        return Q(pk=self.upload_id, lock_token=self.token)

    def renew(self) -> None:
        """Push the lease back if a third of it is gone; LockLost if another request holds it."""
        if time.monotonic() - self.renewed > lease().total_seconds() / 3:
            self.hold()

    def hold(self) -> None:
        """Push the lease back now, or raise LockLost."""
        self.renewed = time.monotonic()
        if not Upload.objects.filter(self.held).update(lock_expires_at=timezone.now() + lease()):
            raise LockLost()

    def renewed_now(self) -> None:
        """A write to the row renewed the lease too."""
        self.renewed = time.monotonic()
