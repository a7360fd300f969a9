"""The trace recorder's admin pages: the list, the waterfall, deleting traces."""

from __future__ import annotations

import pytest

from testing.fixtures import TEST_CHUNK_SIZE
from testing.uploads import download, payload, upload
from traces.models import RecordedSpan, RecordedTrace
from traces.recorder import record_spans

pytestmark = pytest.mark.django_db

C = TEST_CHUNK_SIZE


def test_trace_list_and_waterfall_pages(admin_client, client, spans, settings):
    settings.JAEGER_UI_URL = "http://jaeger.example:16686"
    file_id = upload(client, payload(3 * C))["file_id"]
    spans.clear()
    download(client, file_id)
    (read,) = [s for s in spans.get_finished_spans() if s.name == "read_file"]
    trace_id = format(read.context.trace_id, "032x")
    record_spans(spans.get_finished_spans(), keep=10)

    listing = admin_client.get("/admin/traces/recordedtrace/").content.decode()
    page = admin_client.get(f"/admin/traces/recordedtrace/{trace_id}/change/").content.decode()

    assert "read_file" in listing and "miss" in listing and file_id[:8] in listing
    for name in ("read_file", "cache_lookup", "db_lookup", "download_chunk_2"):
        assert f'data-span="{name}"' in page
    assert f"http://jaeger.example:16686/trace/{trace_id}" in page


def test_deleting_a_trace_in_the_admin_deletes_its_spans(admin_client, client, spans):
    upload(client, payload(C))
    record_spans(spans.get_finished_spans(), keep=10)
    trace = RecordedTrace.objects.get(name="write_file")

    response = admin_client.post(
        "/admin/traces/recordedtrace/",
        {"action": "delete_selected", "_selected_action": [trace.trace_id], "post": "yes"},
    )

    assert response.status_code == 302
    assert not RecordedTrace.objects.exists()
    assert not RecordedSpan.objects.exists()
