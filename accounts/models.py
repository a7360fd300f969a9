"""Who uses the service: API tokens of Django users, and each user's storage quota.

A token is stored as the SHA-256 of its text, never the text itself: it is 256 random bits, so a
fast hash is enough, and a database dump holds no working token. `prefix` (its first
characters) lets a person recognise a token in the admin.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class ApiToken(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, blank=True, help_text="what the token is for")
    prefix = models.CharField(max_length=16, editable=False)
    digest = models.CharField("SHA-256", max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField("last used", null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="empty: never")
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})" if self.name else f"{self.prefix}…"

    def is_live(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class Quota(models.Model):
    """A user's storage limit; a user without a row has DEFAULT_QUOTA_MB. Its row is also what
    uploads lock while they reserve space, so that two of them never both take the last bytes."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="quota"
    )
    limit_bytes = models.PositiveBigIntegerField(
        "limit (bytes)", null=True, blank=True, help_text="empty: DEFAULT_QUOTA_MB"
    )
    unlimited = models.BooleanField(default=False, help_text="no limit, whatever the default")

    def __str__(self) -> str:
        return f"quota of {self.user}"


class Reservation(models.Model):
    """Space an upload in progress holds against its user's quota: taken before its bytes are
    stored, released when it fails, turned into the file's size when it is committed (in the same
    transaction). A resumable upload's lives as long as the upload; a /write's expires on its own
    if the worker dies mid-way."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reservations"
    )
    bytes = models.PositiveBigIntegerField(default=0)
    upload = models.OneToOneField(
        "files.Upload", null=True, blank=True, on_delete=models.CASCADE, related_name="reservation"
    )
    expires_at = models.DateTimeField(null=True, blank=True, help_text="empty: the upload's")

    def __str__(self) -> str:
        return f"{self.bytes} bytes for {self.user}"
