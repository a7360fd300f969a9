"""The trace recorder moved from the `files` app to `traces`: a database migrated before the move
keeps every recorded trace, span and permission."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from traces.models import RecordedSpan, RecordedTrace

BEFORE_THE_MOVE = [("files", "0003_recorded_span_deletes"), ("traces", None)]


@pytest.mark.django_db(transaction=True)
def test_a_database_from_before_the_move_keeps_its_traces_and_permissions():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE_THE_MOVE)
    auth = executor.loader.graph.leaf_nodes("auth")
    old = executor.loader.project_state([BEFORE_THE_MOVE[0], *auth]).apps
    trace = old.get_model("files", "RecordedTrace").objects.create(
        trace_id="a" * 32,
        name="GET /read/{file_id}",
        file_id="0b5d3c26-0000-4000-8000-000000000001",
        started_at=datetime(2026, 11, 1, tzinfo=UTC),
        duration_ms=12.5,
        span_count=2,
        cache_hit=False,
    )
    span_model = old.get_model("files", "RecordedSpan")
    for span_id, parent in (("1" * 16, ""), ("2" * 16, "1" * 16)):
        span_model.objects.create(
            trace=trace,
            span_id=span_id,
            parent_id=parent,
            name=f"span {span_id[0]}",
            kind="INTERNAL",
            start_ns=1,
            end_ns=2,
            attributes={"chunk.index": 3},
        )
    permission = old.get_model("auth", "Permission").objects.get(
        content_type__app_label="files", codename="view_recordedtrace"
    )
    viewer = old.get_model("auth", "User").objects.create(username="viewer", is_staff=True)
    viewer.user_permissions.add(permission)

    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    ContentType.objects.clear_cache()

    moved = RecordedTrace.objects.get()
    assert (moved.trace_id, moved.name, moved.duration_ms, moved.cache_hit) == (
        "a" * 32,
        "GET /read/{file_id}",
        12.5,
        False,
    )
    assert str(moved.file_id) == "0b5d3c26-0000-4000-8000-000000000001"
    spans = list(RecordedSpan.objects.filter(trace=moved).order_by("span_id"))
    assert [(s.span_id, s.parent_id, s.attributes) for s in spans] == [
        ("1" * 16, "", {"chunk.index": 3}),
        ("2" * 16, "1" * 16, {"chunk.index": 3}),
    ]
    assert User.objects.get(username="viewer").has_perm("traces.view_recordedtrace")
    tables = set(connection.introspection.table_names())
    assert {"traces_recordedtrace", "traces_recordedspan"} <= tables
    assert not {"files_recordedtrace", "files_recordedspan"} & tables
