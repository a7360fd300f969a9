"""The trace recorder in the admin: a list of recorded traces and a waterfall page per trace."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from labdropbox.admin_tools import CheckedActionsMixin, UuidSearchMixin
from traces.models import RecordedTrace
from traces.recorder import delete_traces
from traces.waterfall import waterfall_layout


def trace_url(trace: RecordedTrace) -> str:
    return reverse("admin:traces_recordedtrace_change", args=[trace.trace_id])


@admin.register(RecordedTrace)
class RecordedTraceAdmin(CheckedActionsMixin, UuidSearchMixin, admin.ModelAdmin):
    list_display = ["name", "file_link", "started_at", "duration", "span_count", "cache", "error"]
    list_filter = ["error", "cache_hit"]
    search_fields = ["trace_id", "name"]
    search_help_text = "Search by trace id or operation, or paste a file id."
    uuid_search_field = "file_id"
    date_hierarchy = "started_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: RecordedTrace | None = None) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: RecordedTrace) -> None:
        delete_traces([obj.trace_id])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[RecordedTrace]) -> None:
        delete_traces(list(queryset.values_list("trace_id", flat=True)))

    @admin.display(description="file")
    def file_link(self, trace: RecordedTrace) -> str:
        if trace.file_id is None:
            return "—"
        # The file's page, by URL name: the recorder knows files only by their id.
        url = reverse("admin:files_file_change", args=[trace.file_id])
        return format_html('<a href="{}">{}</a>', url, str(trace.file_id)[:8])

    @admin.display(description="duration", ordering="duration_ms")
    def duration(self, trace: RecordedTrace) -> str:
        return f"{trace.duration_ms:.1f} ms"

    @admin.display(description="cache")
    def cache(self, trace: RecordedTrace) -> str:
        return {True: "hit", False: "miss", None: "—"}[trace.cache_hit]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        trace = RecordedTrace.objects.filter(pk=object_id).first()
        if trace is None or not self.has_view_permission(request, trace):
            return super().change_view(request, object_id, form_url, extra_context)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": trace.name,
            "trace": trace,
            "waterfall": waterfall_layout(list(trace.spans.all())),
            "jaeger_url": f"{settings.JAEGER_UI_URL}/trace/{trace.trace_id}"
            if settings.JAEGER_UI_URL
            else "",
        }
        return TemplateResponse(request, "admin/traces/recordedtrace/waterfall.html", context)
