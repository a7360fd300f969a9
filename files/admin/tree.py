"""The tree in the admin, for staff: folders (each one's files and folders a click away), every
file's versions with a restore action, and the trash with restore and purge actions."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils.html import format_html

from files.models import Folder, TrashEntry, Version
from files.tree.roots import path_of
from files.tree.trash import purge_item, restore
from files.tree.versions import restore_version
from labdropbox.admin_tools import CheckedActionsMixin, UuidSearchMixin
from labdropbox.api.callers import caller_for_user
from labdropbox.api.errors import ClientError


class ReadOnly(admin.ModelAdmin):
    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest) -> bool:
        # A folder's contents are linked to as ?parent__id__exact=<folder id>.
        return lookup == "parent__id__exact" or super().lookup_allowed(lookup, value, request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Folder)
class FolderAdmin(UuidSearchMixin, ReadOnly):
    list_display = ["__str__", "path", "owner", "created_at", "contents"]
    list_filter = [("owner", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["owner"]
    search_fields = ["name"]
    search_help_text = "Search by name, or paste a folder id."
    fields = ("id", "name", "path", "owner", "created_at", "contents")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Folder]:
        return super().get_queryset(request).filter(trash=None)

    @admin.display(description="path")
    def path(self, folder: Folder) -> str:
        return path_of(folder)

    @admin.display(description="contents")
    def contents(self, folder: Folder) -> str:
        files = reverse("admin:files_file_changelist") + f"?parent__id__exact={folder.id}"
        folders = reverse("admin:files_folder_changelist") + f"?parent__id__exact={folder.id}"
        return format_html('<a href="{}">files</a> · <a href="{}">folders</a>', files, folders)


@admin.register(Version)
class VersionAdmin(CheckedActionsMixin, UuidSearchMixin, ReadOnly):
    list_display = ["id", "file", "created_at", "size", "state"]
    list_filter = [("file__owner", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["file", "blob"]
    search_fields = ["file__name"]
    search_help_text = "Search by file name, or paste a version id."
    date_hierarchy = "created_at"
    actions = ["make_current"]

    @admin.display(description="size")
    def size(self, version: Version) -> str:
        return filesizeformat(version.blob.size)

    @admin.display(description="state")
    def state(self, version: Version) -> str:
        if version.replaced_at is None:
            return "current"
        return f"replaced {version.replaced_at:%Y-%m-%d %H:%M}"

    def has_make_current_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("files.change_file")

    @admin.action(description="Make current again (a new version; nothing is lost)",
                  permissions=["make_current"])  # fmt: skip
    def make_current(self, request: HttpRequest, queryset: QuerySet[Version]) -> None:
        for version in queryset.select_related("file"):
            try:
                restore_version(version.file, str(version.id), request.user.pk)
            except ClientError as exc:
                self.message_user(request, f"{version.file}: {exc.detail}", messages.ERROR)
            else:
                self.message_user(request, f"{version.file}: restored", messages.SUCCESS)


@admin.register(TrashEntry)
class TrashAdmin(CheckedActionsMixin, ReadOnly):
    list_display = ["original_path", "kind", "owner", "trashed_at", "trashed_by"]
    list_filter = [("owner", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["entry", "owner", "trashed_by"]
    search_fields = ["original_path"]
    date_hierarchy = "trashed_at"
    actions = ["put_back", "purge"]

    @admin.display(description="kind")
    def kind(self, item: TrashEntry) -> str:
        return item.entry.get_kind_display()

    def has_trash_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("files.delete_file")

    @admin.action(description="Restore to where it was", permissions=["trash"])
    def put_back(self, request: HttpRequest, queryset: QuerySet[TrashEntry]) -> None:
        caller = caller_for_user(request.user)
        for item in queryset:
            try:
                restore(str(item.id), caller)
            except ClientError as exc:
                self.message_user(request, f"{item}: {exc.detail}", messages.ERROR)
            else:
                self.message_user(request, f"{item}: restored", messages.SUCCESS)

    @admin.action(description="Purge for good (its content goes if nothing else needs it)",
                  permissions=["trash"])  # fmt: skip
    def purge(self, request: HttpRequest, queryset: QuerySet[TrashEntry]) -> None:
        items = list(queryset.select_related("root"))
        for item in items:
            purge_item(item)
        self.message_user(request, f"{len(items)} purged", messages.SUCCESS)
