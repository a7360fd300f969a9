"""A database made before folders, trash and versions migrates forward with nothing lost: every
file lands in its owner's tree (or the shared one) under the same id, with its chunks, its links
and its uploads; names that now collide in one folder are numbered."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from files.models import Entry, ShareLink, Upload
from files.names import name_key
from files.operations.read import FileRead
from labdropbox.api.callers import Caller

BEFORE = [("files", "0006_owners_and_share_links"), ("accounts", "0001_tokens_quotas_reservations")]


def old_file(models, owner, name: str, size: int, day: int):  # noqa: ANN001, ANN201
    file = models.get_model("files", "File").objects.create(
        id=uuid.uuid4(),
        name=name,
        size=size,
        chunk_count=1 if size else 0,
        sha256="ab" * 32,
        owner=owner,
        created_at=datetime(2026, 11, day, tzinfo=UTC),
    )
    if size:
        chunks = models.get_model("files", "Chunk").objects
        chunks.create(file=file, index=0, size=size, sha256="cd" * 32)
    return file


@pytest.mark.django_db(transaction=True)
def test_files_from_before_folders_keep_their_ids_chunks_links_and_uploads():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    auth = executor.loader.graph.leaf_nodes("auth")
    old = executor.loader.project_state([*BEFORE, *auth]).apps
    alice = old.get_model("auth", "User").objects.create(username="alice")
    report = old_file(old, alice, "report.pdf", 10, 1)
    again = old_file(old, alice, "Report.pdf", 20, 2)  # the same name in one folder now
    slashed = old_file(old, alice, "a/b.txt", 0, 3)
    shared = old_file(old, None, "report.pdf", 30, 4)  # no one's: the shared tree
    link = old.get_model("files", "ShareLink").objects.create(
        file=report, prefix="abc", digest="ef" * 32, created_by=alice
    )
    upload = old.get_model("files", "Upload").objects.create(
        name="big.iso", chunk_size=1024, hash_state=b"", expires_at=datetime(2027, 1, 1, tzinfo=UTC)
    )

    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    files = {entry.id: entry for entry in Entry.objects.filter(kind=Entry.Kind.FILE)}
    assert set(files) == {report.id, again.id, slashed.id, shared.id}
    assert [files[report.id].name, files[again.id].name] == ["report.pdf", "Report (2).pdf"]
    assert files[slashed.id].name == "a_b.txt"
    roots = {entry.parent for entry in files.values()}
    assert {(root.root_key, root.owner_id) for root in roots} == {
        (f"user:{alice.id}", alice.id),
        ("shared", None),
    }
    for entry in files.values():
        assert entry.current_id == entry.id and entry.current.blob_id == entry.id
        assert entry.name_key == name_key(entry.name) and entry.trash_id is None
    assert ShareLink.objects.get(pk=link.pk).file_id == report.id
    assert Upload.objects.filter(pk=upload.pk).exists()
    with FileRead(str(again.id), Caller(alice.id, "alice", False)) as read:
        assert (read.meta.name, read.meta.size, len(read.meta.chunks)) == ("Report (2).pdf", 20, 1)
