"""Share links in the admin: which file, whose, how used, and a revoke action. A link's URL is
never shown: only a hash of its token is kept."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from files.models import ShareLink
from labdropbox.admin_tools import CheckedActionsMixin


@admin.register(ShareLink)
class ShareLinkAdmin(CheckedActionsMixin, admin.ModelAdmin):
    list_display = ["__str__", "file", "created_by", "created_at", "expires_at", "usage", "state"]
    list_filter = [("created_by", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["file", "created_by"]
    search_fields = ["file__name", "prefix"]
    fields = (
        "file",
        "prefix",
        "created_by",
        "created_at",
        "expires_at",
        "max_downloads",
        "usage",
        "revoked_at",
    )
    readonly_fields = fields
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # made through the API, which shows the link's URL to its maker once

    def has_change_permission(self, request: HttpRequest, obj: ShareLink | None = None) -> bool:
        return False

    @admin.display(description="downloads")
    def usage(self, link: ShareLink) -> str:
        limit = "" if link.max_downloads is None else f" of {link.max_downloads}"
        return f"{link.downloads}{limit}"

    @admin.display(description="state")
    def state(self, link: ShareLink) -> str:
        if link.revoked_at is not None:
            return "revoked"
        if link.expires_at is not None and link.expires_at <= timezone.now():
            return "expired"
        if link.is_spent:
            return "used up"
        if link.max_downloads is not None and link.downloads >= link.max_downloads:
            return "downloads used (resumable)"
        return "live"

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("files.change_sharelink")

    @admin.action(description="Revoke (the link stops working at once)", permissions=["revoke"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ShareLink]) -> None:
        revoked = queryset.filter(revoked_at=None).update(revoked_at=timezone.now())
        self.message_user(request, f"{revoked} link(s) revoked", messages.SUCCESS)
