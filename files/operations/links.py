"""Share links: /s/{token} reads one file without a token, until it expires, is revoked, has
served its downloads, or the file is deleted.

A link is looked up in the database on every request, never in a cache: a revoked link stops
working on every worker of every instance with the next request. Only the SHA-256 of its token
is stored (192 random bits: a fast hash is enough), so a database leak leaks no working link.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, IntegrityError
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from accounts.tokens import digest_of
from files.metadata import get_visible_file_meta
from files.models import ShareLink
from labdropbox.api.bodies import CountedBody
from labdropbox.api.callers import Caller
from labdropbox.api.errors import FileNotFound, LinkNotFound, TooManyLinks

log = logging.getLogger(__name__)

TOKEN_BYTES = 24


def create_link(
    raw_file_id: str, caller: Caller, expires_in_seconds: int | None, max_downloads: int | None
) -> tuple[ShareLink, str]:
    """A new link to the caller's file, and its token (shown this once: only a hash is kept)."""
    meta = get_visible_file_meta(raw_file_id, caller)
    live = live_links().filter(file_id=meta.file_id).count()
    if live >= settings.MAX_LINKS_PER_FILE:
        raise TooManyLinks(
            f"this file has {live} live links (at most {settings.MAX_LINKS_PER_FILE}): "
            "revoke some first"
        )
    token = secrets.token_urlsafe(TOKEN_BYTES)
    expires_at = None
    if expires_in_seconds is not None:
        expires_at = timezone.now() + timedelta(seconds=expires_in_seconds)
    try:
        link = ShareLink.objects.create(
            file_id=meta.file_id,
            prefix=token[:8],
            digest=digest_of(token),
            created_by_id=caller.user_id,
            expires_at=expires_at,
            max_downloads=max_downloads,
        )
    except IntegrityError:  # the file was deleted a moment ago
        raise FileNotFound(raw_file_id) from None
    return link, token


def file_links(raw_file_id: str, caller: Caller) -> QuerySet[ShareLink]:
    """The file's links, newest first (the view pages them)."""
    meta = get_visible_file_meta(raw_file_id, caller)
    return (
        ShareLink.objects.filter(file_id=meta.file_id)
        .select_related("file")
        .order_by("-created_at", "-id")
    )


def revoke_link(raw_file_id: str, raw_link_id: str, caller: Caller) -> None:
    """Revoke one of the file's links (revoking a revoked link changes nothing)."""
    meta = get_visible_file_meta(raw_file_id, caller)
    try:
        link_id = uuid.UUID(raw_link_id)
    except ValueError:
        raise LinkNotFound("the file has no share link with this id") from None
    links = ShareLink.objects.filter(pk=link_id, file_id=meta.file_id)
    if not links.exists():
        raise LinkNotFound("the file has no share link with this id")
    links.filter(revoked_at=None).update(revoked_at=timezone.now())


def live_links() -> QuerySet[ShareLink]:
    now = timezone.now()
    return ShareLink.objects.filter(revoked_at=None).filter(
        Q(expires_at=None) | Q(expires_at__gt=now)
    )


def find_live_link(token: str) -> ShareLink:
    """The link this token opens: LinkNotFound if none, or it is revoked, expired or spent."""
    if not 0 < len(token) <= 100:
        raise LinkNotFound()
    found = live_links().select_related("file__owner").filter(digest=digest_of(token))
    link = found.first()
    if link is None or link.is_spent or link.file.trash_id is not None:  # trashed: until restored
        raise LinkNotFound()
    owner = link.file.owner
    if owner is not None and not owner.is_active:  # a disabled account's shares stop with it
        raise LinkNotFound()
    return link


def start_download(link: ShareLink, start: int, stop: int) -> None:
    """Admit a response body of bytes [start, stop), or LinkNotFound, in one conditional UPDATE
    (so bodies that start together cannot overshoot). From the first byte it is a new download,
    counted against max_downloads; from further on it goes on with one — a resume (curl -C -,
    wget -c) or a segment (aria2c -x8) — and is not counted again. Either way its bytes are
    charged now against the link's byte ceiling, and what is not sent is given back when the
    body is closed (link_download)."""
    links = live_links().filter(pk=link.pk)
    if link.max_downloads is not None:
        links = links.filter(bytes_served__lte=link.byte_ceiling - (stop - start))
        if start == 0:
            links = links.filter(downloads__lt=link.max_downloads)
    charged = links.update(
        downloads=F("downloads") + int(start == 0), bytes_served=F("bytes_served") + stop - start
    )
    if not charged:
        raise LinkNotFound()


def link_download(link: ShareLink, body: Iterable[bytes], charged: int) -> CountedBody:
    """A download's body through a link: when the server closes it (sent, failed or abandoned),
    the bytes charged for it but not sent are given back. Once started it finishes even if its
    link is revoked meanwhile."""
    return CountedBody(body, lambda sent: give_back(link, charged - sent))


def give_back(link: ShareLink, unsent: int) -> None:
    if unsent <= 0:
        return
    try:
        refund = F("bytes_served") - unsent
        ShareLink.objects.filter(pk=link.pk).update(bytes_served=refund)
    except DatabaseError as exc:  # the link keeps counting bytes it did not send
        log.warning("share link %s: %d unsent bytes not given back: %s", link.pk, unsent, exc)
