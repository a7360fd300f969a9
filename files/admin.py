from django.contrib import admin

from files.models import File


@admin.register(File)
class FileAdmin(admin.ModelAdmin):
    list_display = ["name", "size", "chunk_count", "sha256", "created_at"]
    search_fields = ["name", "id"]
    date_hierarchy = "created_at"
