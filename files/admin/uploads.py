"""Resumable uploads in progress in the admin: how far each has come, and a terminate action."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat

from files.models import Upload
from files.uploads.lifecycle import terminate_upload
from labdropbox.admin_tools import CheckedActionsMixin, UuidSearchMixin
from labdropbox.api.callers import SERVICE
from labdropbox.api.errors import ServiceError


@admin.register(Upload)
class UploadAdmin(CheckedActionsMixin, UuidSearchMixin, admin.ModelAdmin):
    list_display = ["name", "owner", "progress", "size", "created_at", "updated_at", "expires_at"]
    list_filter = ["completed_at"]
    search_fields = ["name"]
    search_help_text = "Search by name, or paste an upload id."
    fields = (
        "id",
        "name",
        "owner",
        "progress",
        "size",
        "metadata",
        "concat",
        "created_at",
        "updated_at",
        "expires_at",
        "completed_at",
    )
    readonly_fields = fields
    actions = ["terminate"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Upload]:
        # Finished uploads are files now (their rows only wait for `cleanup`).
        return super().get_queryset(request).filter(completed_at=None)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Upload | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Upload | None = None) -> bool:
        return False  # through the terminate action, which deletes the objects too

    @admin.display(description="progress")
    def progress(self, upload: Upload) -> str:
        if not upload.length:
            return f"{filesizeformat(upload.offset)} (length not told yet)"
        return f"{upload.offset / upload.length:.0%} ({filesizeformat(upload.offset)})"

    @admin.display(description="size")
    def size(self, upload: Upload) -> str:
        return "?" if upload.length is None else filesizeformat(upload.length)

    @admin.action(description="Terminate (delete the upload and what it stored)")
    def terminate(self, request: HttpRequest, queryset: QuerySet[Upload]) -> None:
        for upload in queryset:
            try:
                terminate_upload(str(upload.id), SERVICE)
            except ServiceError as exc:
                self.message_user(request, f"{upload.name}: {exc.detail}", messages.ERROR)
            else:
                self.message_user(request, f"{upload.name}: terminated", messages.SUCCESS)
