"""API tokens: issued once, stored hashed, checked on every request.

A check costs no query while the token's entry is in the cache (TOKEN_CACHE_SECONDS); a revoked
or changed token's entry is dropped at once (accounts/signals.py), so on a shared cache (Redis)
revocation holds on every worker immediately, on a local-memory cache within that time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from accounts.models import ApiToken
from labdropbox.api.callers import SERVICE, Caller
from labdropbox.api.errors import Unauthorized

TOKEN_PREFIX = "ldb_"  # noqa: S105  (what our tokens start with, not a secret)
CACHE_VERSION = 1
# What a changed token's entry holds for a while: read from the database, never cached, so a
# request that read the token just before the change cannot put the old entry back.
CHANGED = {"changed": True}
# last_used_at is written at most this often per token: a request costs no write.
LAST_USED_EVERY_SECONDS = 60


def digest_of(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(user_id: int, name: str = "", expires_in_days: float | None = None) -> str:
    """A new token for the user; its text is returned here and nowhere else, ever."""
    expires_at = None
    if expires_in_days is not None:
        expires_at = timezone.now() + timedelta(days=expires_in_days)
    api_token = ApiToken(user_id=user_id, name=name, expires_at=expires_at)
    token = new_token_text(api_token)
    api_token.save()
    return token


def new_token_text(api_token: ApiToken) -> str:
    """Give an unsaved ApiToken its secret: the text (returned, shown once) and its hash."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    api_token.prefix, api_token.digest = token[:12], digest_of(token)
    return token


def caller_for_token(token: str) -> Caller:
    """The caller the token stands for, or Unauthorized (unknown, revoked, expired, inactive)."""
    if settings.API_TOKEN and hmac.compare_digest(token.encode(), settings.API_TOKEN.encode()):
        return SERVICE
    digest = digest_of(token)
    entry = cache.get(cache_key(digest), version=CACHE_VERSION)
    if entry is None or entry == CHANGED:
        fresh = token_entry(digest)
        if entry is None:  # add(): a change marked meanwhile must win over what was just read
            cache.add(cache_key(digest), fresh, settings.TOKEN_CACHE_SECONDS, version=CACHE_VERSION)
        entry = fresh
    if not entry:
        raise Unauthorized("the token is not valid")
    expires_at = entry["expires_at"]
    if expires_at is not None and datetime.fromisoformat(expires_at) <= timezone.now():
        raise Unauthorized("the token has expired")
    note_use(digest, entry["token_id"])
    return Caller(entry["user_id"], entry["username"], entry["is_staff"])


def token_entry(digest: str) -> dict:
    """What the cache keeps of a live token ({} for none: a wrong token is cached too)."""
    token = ApiToken.objects.select_related("user").filter(digest=digest).first()
    if token is None or token.revoked_at is not None or not token.user.is_active:
        return {}
    return {
        "token_id": token.pk,
        "user_id": token.user_id,
        "username": token.user.get_username(),
        "is_staff": token.user.is_staff,
        "expires_at": token.expires_at.isoformat() if token.expires_at else None,
    }


def note_use(digest: str, token_id: int) -> None:
    if cache.add(f"api-token-used:{digest}", 1, LAST_USED_EVERY_SECONDS):
        ApiToken.objects.filter(pk=token_id).update(last_used_at=timezone.now())


def cache_key(digest: str) -> str:
    return f"api-token:{digest}"


def forget_tokens(tokens: list[ApiToken]) -> None:
    """The cached entries of these tokens are replaced by a mark that makes every request read
    them from the database, once the change is committed (and for TOKEN_CACHE_SECONDS)."""
    keys = {cache_key(token.digest): CHANGED for token in tokens}

    def mark() -> None:
        cache.set_many(keys, settings.TOKEN_CACHE_SECONDS, version=CACHE_VERSION)

    mark()  # at once, and again after the commit: a request between them reads the old row
    transaction.on_commit(mark)


def revoke_token(token: ApiToken) -> None:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
