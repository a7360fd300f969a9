"""Files in the Django admin. Stored files are immutable: the admin shows, never edits."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html, format_html_join

from files.models import File


@admin.register(File)
class FileAdmin(admin.ModelAdmin):
    list_display = ["name", "size", "chunk_count", "sha256", "created_at"]
    search_fields = ["name", "id"]
    date_hierarchy = "created_at"
    readonly_fields = ["id", "name", "size", "chunk_count", "sha256", "created_at", "chunk_table"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="chunks")
    def chunk_table(self, file: File) -> str:
        # Chunk has a composite primary key, which Django 5.2's admin cannot register or inline.
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td></tr>",
            ((c.index, c.size, c.sha256, c.key) for c in file.chunks.order_by("index")),
        )
        return format_html(
            "<table><thead><tr><th>index</th><th>size</th><th>SHA-256</th><th>object key</th>"
            "</tr></thead><tbody>{}</tbody></table>",
            rows,
        )
