"""Share links: /s/{token} reads one file without a token."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

# A link serves at most this many times its downloads' bytes, however they are cut into ranges:
# room for aria2c, whose first request (for the whole file) is charged until it is closed.
BYTE_CEILING_PER_DOWNLOAD = 3


class ShareLink(models.Model):
    """A link that reads one file without a token: /s/{token}. Only the SHA-256 of the token is
    kept (like an API token's), so a database leak leaks no working link.

    `downloads` counts responses that start at the file's first byte, so a download resumed or
    split into ranges (curl -C -, aria2c -x8) counts once. Ranges from further on count only in
    `bytes_served`: past three times `max_downloads` files' worth, the link is spent whatever the
    count."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    file = models.ForeignKey("files.Entry", on_delete=models.CASCADE, related_name="links")
    prefix = models.CharField(max_length=16, editable=False)
    digest = models.CharField("SHA-256", max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="empty: never")
    max_downloads = models.PositiveIntegerField(null=True, blank=True, help_text="empty: any")
    downloads = models.PositiveIntegerField(default=0, editable=False)
    bytes_served = models.PositiveBigIntegerField(default=0, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "share link"

    def __str__(self) -> str:
        return f"/s/{self.prefix}…"

    @property
    def byte_ceiling(self) -> int:
        """The bytes it may serve in all, if it has a max_downloads (within what a 64-bit
        column holds)."""
        ceiling = BYTE_CEILING_PER_DOWNLOAD * (self.max_downloads or 0) * max(self.file.size, 1)
        return min(ceiling, 2**62)

    @property
    def is_spent(self) -> bool:
        """Nothing more may be sent: its byte ceiling is reached. (With its downloads all
        started, a download may still be resumed.)"""
        return self.max_downloads is not None and self.bytes_served >= self.byte_ceiling
