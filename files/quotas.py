"""Hard storage quotas: space is reserved before bytes are stored, under a lock on the user's
quota row, so concurrent uploads can never together store more than the quota.

A user's usage is what their tree stores — every content (blob) that one of their files' current
or earlier versions, or a file in their trash, points at, each counted once however many copies
and versions share it — plus the space their uploads in progress hold (Reservation rows). A
reservation is released when its upload fails, and replaced by the content in the transaction
that commits it; one left behind by a dead worker stops counting when it expires (a resumable
upload's, when the upload does). Purging frees space at once: the content goes in that purge's
transaction.

A check reads the files' and the reservations' sums in two statements, so nothing may turn a
reservation into a file between them: the commit of a file takes the same lock (settle()). The
sums are read after the lock is granted, at READ COMMITTED (Django's isolation level on MySQL
and TiDB; SQLite takes its write lock when a transaction begins), so they include everything
committed by whoever held the lock before.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet, Sum
from django.utils import timezone

from accounts.models import Quota, Reservation
from files.models import Blob, Version
from labdropbox.api.errors import QuotaExceeded

MIB = 1024 * 1024
# A /write's reservation outlives a worker that died mid-upload by at most this long.
WRITE_RESERVATION_LIFETIME = timedelta(minutes=10)


@dataclass(frozen=True)
class Usage:
    stored: int  # bytes of every content the tree keeps
    reserved: int  # bytes held by uploads in progress
    limit: int | None  # None: unlimited

    @property
    def used(self) -> int:
        return self.stored + self.reserved


@dataclass(frozen=True)
class Stored:
    """What a tree stores, split: current versions of live files, what only earlier versions
    keep, and what only the trash keeps (each content counted once, where it is first needed)."""

    current: int
    versions: int
    trash: int


def stored_bytes(versions: QuerySet[Version]) -> int:
    blobs = Blob.objects.filter(pk__in=versions.values("blob_id"))
    return blobs.aggregate(total=Sum("size"))["total"] or 0


def stored_split(user_id: int | None) -> Stored:
    everything = Version.objects.filter(file__owner_id=user_id)
    live = everything.filter(file__trash=None)
    current = stored_bytes(live.filter(replaced_at=None))
    kept_live = stored_bytes(live)
    return Stored(current, kept_live - current, stored_bytes(everything) - kept_live)


def limit_for(user_id: int | None) -> int | None:
    """The user's quota in bytes; None for unlimited (and for files that belong to no one)."""
    if user_id is None:
        return None
    quota = Quota.objects.filter(pk=user_id).first()
    if quota is not None and (quota.unlimited or quota.limit_bytes is not None):
        return None if quota.unlimited else quota.limit_bytes
    default = settings.DEFAULT_QUOTA_MB
    return None if default is None else default * MIB


def usage_of(user_id: int | None, leaving_out: Reservation | None = None) -> Usage:
    stored = stored_bytes(Version.objects.filter(file__owner_id=user_id))
    reserved = None
    if user_id is not None:  # files of no one have no quota, so nothing is reserved for them
        held = live_reservations(user_id)
        if leaving_out is not None:
            held = held.exclude(pk=leaving_out.pk)
        reserved = held.aggregate(total=Sum("bytes"))["total"]
    return Usage(stored or 0, reserved or 0, limit_for(user_id))


def live_reservations(user_id: int) -> QuerySet[Reservation]:
    now = timezone.now()
    return Reservation.objects.filter(user_id=user_id).filter(
        Q(upload__isnull=True, expires_at__gt=now)
        | Q(upload__completed_at__isnull=False)
        | Q(upload__expires_at__gt=now)
    )


class Space:
    """The quota space one upload holds. cover(n) before the upload stores its first n bytes;
    release() when it fails; settle() in the transaction that commits it."""

    def __init__(self, user_id: int | None, upload_id: uuid.UUID | None = None) -> None:
        self.user_id = user_id
        self.upload_id = upload_id
        self.limit = limit_for(user_id)
        self.reservation: Reservation | None = None
        if self.limit is not None and upload_id is not None:
            self.reservation = Reservation.objects.filter(upload_id=upload_id).first()

    @property
    def held(self) -> int:
        return self.reservation.bytes if self.reservation is not None else 0

    def cover(self, total: int) -> None:
        """Hold at least `total` bytes, or raise QuotaExceeded (holding what was held). A
        /write's reservation is also renewed while its bytes keep coming."""
        if self.limit is None or self.user_id is None:
            return
        if total <= self.held and self.renewed():
            return
        Quota.objects.get_or_create(user_id=self.user_id)
        with transaction.atomic():
            # Every reservation of this user queues here: the check and the update are one step.
            Quota.objects.select_for_update().get(pk=self.user_id)
            usage = usage_of(self.user_id, leaving_out=self.reservation)
            if usage.used + total > self.limit:
                raise QuotaExceeded(usage.used, total, self.limit)
            self.hold(self.user_id, total)

    def renewed(self) -> bool:
        """The reservation still counts, and will for a while: a /write's is pushed back once
        half its lifetime is gone (False if it lapsed: it must be checked again, under the
        lock)."""
        reservation = self.reservation
        if reservation is None or reservation.expires_at is None:
            return True
        now = timezone.now()
        if reservation.expires_at - now > WRITE_RESERVATION_LIFETIME / 2:
            return True
        renewed_until = now + WRITE_RESERVATION_LIFETIME
        still = Reservation.objects.filter(pk=reservation.pk, expires_at__gt=now)
        if not still.update(expires_at=renewed_until):
            return False
        reservation.expires_at = renewed_until
        return True

    def hold(self, user_id: int, total: int) -> None:
        expires_at = None if self.upload_id else timezone.now() + WRITE_RESERVATION_LIFETIME
        if self.reservation is None:
            self.reservation = Reservation.objects.create(
                user_id=user_id, upload_id=self.upload_id, bytes=total, expires_at=expires_at
            )
        else:
            self.reservation.bytes, self.reservation.expires_at = total, expires_at
            self.reservation.save(update_fields=["bytes", "expires_at"])

    def release(self) -> None:
        """The upload failed: the space it held is free again."""
        if self.reservation is not None:
            Reservation.objects.filter(pk=self.reservation.pk).delete()
            self.reservation = None

    def settle(self) -> None:
        """Inside the transaction that commits the upload's file: its size counts now."""
        if self.reservation is not None:
            # Kept: if the transaction fails after all, release() deletes the row it restored.
            settle(self.user_id, Reservation.objects.filter(pk=self.reservation.pk))


def settle(user_id: int | None, reservations: QuerySet[Reservation]) -> None:
    """Inside the transaction that commits a file of the user's: the reservations it was stored
    under go, as its size starts to count. Under the user's quota lock, so that no check sees
    neither the file nor its reservation."""
    if user_id is not None:
        list(Quota.objects.select_for_update().filter(pk=user_id))
    reservations.delete()
