"""The Django admin: browse and upload files, verify them, move them to the trash, and see their
versions and recorded traces (as waterfalls). Stored content is immutable: the admin never edits
it; folders, versions and the trash have their pages in files/admin/tree.py."""

from __future__ import annotations

import contextlib

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.middleware.csrf import CsrfViewMiddleware
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html, format_html_join
from django.views.decorators.csrf import csrf_exempt

from files.maintenance.verify import verify_versions, versions_to_check
from files.models import Chunk, Entry, File
from files.names import parse_path, validate_name
from files.operations.write import write_file
from files.tree.roots import path_of
from files.tree.trash import trash
from files.tree.versions import versions_of
from labdropbox.admin_tools import CheckedActionsMixin, UuidSearchMixin
from labdropbox.api.callers import Caller, caller_for_user
from labdropbox.api.errors import (
    BodyTooLarge,
    EntryNotFound,
    InvalidName,
    NameTaken,
    NotAFolder,
    QuotaExceeded,
    StorageRejected,
    StorageUnavailable,
)
from labdropbox.api.requests import parse_count
from traces.admin import trace_url
from traces.models import RecordedTrace

RECENT_TRACES = 10


class UploadForm(forms.Form):
    file = forms.FileField()
    folder = forms.CharField(
        initial="/", max_length=4096, help_text="The folder it goes into (made if missing)."
    )
    name = forms.CharField(
        required=False, max_length=255, help_text="Stored name; defaults to the file's own name."
    )


@admin.register(File)
class FileAdmin(CheckedActionsMixin, UuidSearchMixin, admin.ModelAdmin):
    list_display = ["name", "owner", "human_size", "short_sha256", "modified_at", "in_trash"]
    list_filter = [
        ("owner", admin.RelatedOnlyFieldListFilter),
        ("trash", admin.EmptyFieldListFilter),
    ]
    list_select_related = ["owner", "current__blob"]
    search_fields = ["name"]
    search_help_text = "Search by name, or paste a file id."
    date_hierarchy = "created_at"
    fields = (
        "id",
        "name",
        "path",
        "owner",
        "human_size",
        "chunk_count",
        "sha256",
        "created_at",
        "modified_at",
        "download",
        "version_table",
        "chunk_table",
        "recent_traces",
    )
    readonly_fields = fields
    actions = ["verify_integrity", "trash_selected"]
    change_list_template = "admin/files/file/change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # files arrive through the upload view, never as a blank form

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest) -> bool:
        # A folder's files are linked to as ?parent__id__exact=<folder id> (files/admin/tree.py).
        return lookup == "parent__id__exact" or super().lookup_allowed(lookup, value, request)

    def has_change_permission(self, request: HttpRequest, obj: File | None = None) -> bool:
        return False

    @admin.display(description="size", ordering="size")
    def human_size(self, file: File) -> str:
        return f"{filesizeformat(file.size)} ({file.size:,} bytes)"

    @admin.display(description="SHA-256")
    def short_sha256(self, file: File) -> str:
        return file.sha256[:12]

    @admin.display(description="in the trash", boolean=True)
    def in_trash(self, file: File) -> bool:
        return file.trash_id is not None

    @admin.display(description="path")
    def path(self, file: File) -> str:
        return "(in the trash)" if file.trash_id is not None else path_of(file)

    @admin.display(description="versions")
    def version_table(self, file: File) -> str:
        rows = format_html_join(
            "",
            '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>',
            (
                (
                    f"{reverse('read', args=[file.id])}?version={v.id}",
                    v.id,
                    f"{v.created_at:%Y-%m-%d %H:%M:%S}",
                    filesizeformat(v.blob.size),
                    "current"
                    if v.id == file.current_id
                    else f"replaced {v.replaced_at:%Y-%m-%d %H:%M}",
                )
                for v in versions_of(file)
            ),
        )
        return format_html(
            '<table class="version-table"><thead><tr><th>version</th><th>stored</th><th>size</th>'
            "<th></th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="download")
    def download(self, file: File) -> str:
        return format_html('<a href="{}">{}</a>', reverse("read", args=[file.id]), file.name)

    @admin.display(description="chunks")
    def chunk_table(self, file: File) -> str:
        # Chunk has a composite primary key, which Django 5.2's admin can neither register nor
        # inline: its rows are drawn here instead.
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td></tr>",
            ((c.index, c.size, c.sha256, c.key) for c in current_chunks(file)),
        )
        return format_html(
            '<table class="chunk-table"><thead><tr><th>index</th><th>size</th><th>SHA-256</th>'
            "<th>object key</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="recent traces")
    def recent_traces(self, file: File) -> str:
        traces = RecordedTrace.objects.filter(file_id=file.id)[:RECENT_TRACES]
        if not traces:
            return "none recorded"
        return format_html_join(
            "",
            '<div><a href="{}">{}</a> {} · {} ms</div>',
            (
                (trace_url(t), t.name, f"{t.started_at:%Y-%m-%d %H:%M:%S}", f"{t.duration_ms:.1f}")
                for t in traces
            ),
        )

    # --- actions -------------------------------------------------------------------------------

    @admin.action(description="Verify integrity (re-read and hash every chunk of every version)")
    def verify_integrity(self, request: HttpRequest, queryset: QuerySet[File]) -> None:
        for file in queryset:
            try:
                checked = list(verify_versions(versions_to_check([file.id])))
            except (StorageUnavailable, StorageRejected) as exc:
                self.message_user(request, f"{file.name}: storage failed ({exc})", "error")
                continue
            problems = [problem for check in checked for problem in check.problems]
            if problems:
                self.message_user(request, f"{file.name}: {'; '.join(problems)}", messages.ERROR)
            else:
                self.message_user(
                    request,
                    f"{file.name}: every chunk of its {len(checked)} versions intact",
                    messages.SUCCESS,
                )

    def has_delete_permission(self, request: HttpRequest, obj: File | None = None) -> bool:
        return False  # a file goes to the trash (the action below); purged from the trash's page

    def has_trash_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("files.delete_file")

    @admin.action(description="Move to the trash", permissions=["trash"])
    def trash_selected(self, request: HttpRequest, queryset: QuerySet[File]) -> None:
        files = list(queryset)
        for file in files:
            move_to_trash(file, caller_for_user(request.user))
        self.message_user(request, f"{len(files)} moved to the trash", messages.SUCCESS)

    # --- upload --------------------------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        upload = path(
            "upload/", self.admin_site.admin_view(self.upload_view), name="files_file_upload"
        )
        return [upload, *super().get_urls()]

    # Django's CSRF check reads the form — the whole upload — before any view runs: here it
    # runs after the size check, so that a too-large upload is refused unread.
    @method_decorator(csrf_exempt)
    def upload_view(self, request: HttpRequest) -> HttpResponseBase:
        if not request.user.has_perm("files.add_file"):
            raise PermissionDenied
        too_large = upload_too_large(request)
        if too_large:
            response = self.upload_page(request, UploadForm(), too_large, status=413)
            response["Connection"] = "close"  # the rest of the body is not worth reading
            return response
        forged = csrf_failure(request)
        if forged is not None:
            return forged
        form = UploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            uploaded = form.cleaned_data["file"]
            try:
                # Django has spooled a large upload to a temporary file: it is read from there
                # chunk by chunk, through the same pipeline as PUT /write.
                name = form.cleaned_data["name"] or uploaded.name
                names = [*parse_path(form.cleaned_data["folder"]), validate_name(name)]
                caller = caller_for_user(request.user)
                file = write_file(names, uploaded, uploaded.size, caller).file
            except (InvalidName, BodyTooLarge, QuotaExceeded, NameTaken, NotAFolder) as exc:
                form.add_error(None, str(exc))
            except (StorageUnavailable, StorageRejected, DatabaseError) as exc:
                form.add_error(None, f"nothing was stored: {exc}")
            else:
                self.message_user(request, f"Uploaded {file.name} ({file.chunk_count} chunks).")
                return HttpResponseRedirect(reverse("admin:files_file_change", args=[file.id]))
        return self.upload_page(request, form)

    def upload_page(
        self, request: HttpRequest, form: UploadForm, refused: str = "", status: int = 200
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Upload a file",
            "form": form,
            "refused": refused,
        }
        return TemplateResponse(request, "admin/files/file/upload.html", context, status=status)


def current_chunks(file: Entry) -> QuerySet[Chunk]:
    if file.current is None:
        return Chunk.objects.none()
    return Chunk.objects.filter(blob_id=file.current.blob_id).order_by("index")


def move_to_trash(file: Entry, caller: Caller) -> None:
    """The admin's delete: to the trash, like the API's (purged from the trash's page)."""
    with contextlib.suppress(EntryNotFound):  # in the trash already
        trash(file, caller)


def csrf_failure(request: HttpRequest) -> HttpResponseBase | None:
    """Django's CSRF check run by hand, for a view exempt from the automatic one: the 403 to
    answer, or None if the request carries a valid token."""
    return CsrfViewMiddleware(_never_called).process_view(request, _never_called, (), {})


def _never_called(request: HttpRequest) -> HttpResponseBase:
    # The check only needs a view without `csrf_exempt`; it never calls it.
    raise NotImplementedError


# What a multipart form adds around the file: boundaries, the name field, part headers.
FORM_OVERHEAD = 64 * 1024


def upload_too_large(request: HttpRequest) -> str:
    """Why a POSTed upload form is refused for its announced size, or "" if it is not."""
    if request.method != "POST":
        return ""
    length = parse_count(request.META.get("CONTENT_LENGTH", ""))
    limit = settings.MAX_UPLOAD_BYTES
    if length is None or length <= limit + FORM_OVERHEAD:
        return ""
    return f"the upload is {filesizeformat(length)}; the limit is {filesizeformat(limit)}"
