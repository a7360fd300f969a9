"""manage.py verify: re-read chunks, report every problem, exit 1 on any."""

from __future__ import annotations

import uuid

import pytest
from django.core.management import CommandError, call_command

from files.models import Chunk
from files.storage import chunk_key
from testing.fixtures import TEST_CHUNK_SIZE
from testing.uploads import payload, upload

pytestmark = pytest.mark.django_db

C = TEST_CHUNK_SIZE


@pytest.mark.both_stores
def test_healthy_store_exits_zero_with_a_summary(client, capsys):
    ids = [upload(client, payload(size))["file_id"] for size in (0, 1, 3 * C + 5)]

    call_command("verify", *ids)
    call_command("verify", "--all")

    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "checked 3 files (48.0 KB): 0 with problems, 0 problems",
        "checked 3 stored contents (48.0 KB): 0 with problems, 0 problems",
    ]


@pytest.mark.both_stores
def test_missing_and_corrupt_chunks_are_reported_and_exit_1(client, store, capsys):
    damaged = upload(client, payload(4 * C), name="damaged.bin")["file_id"]
    healthy = upload(client, payload(2 * C), name="fine.bin")["file_id"]
    store.delete_many([chunk_key(damaged, 1)])
    store.put(chunk_key(damaged, 3), payload(C, seed=42))  # same size, other bytes

    with pytest.raises(SystemExit) as exited:
        call_command("verify", "--all")

    assert exited.value.code == 1
    out = capsys.readouterr().out
    assert f"{damaged} damaged.bin: chunk 1 is missing ({chunk_key(damaged, 1)})" in out
    assert f"{damaged} damaged.bin: chunk 3 is corrupt" in out
    assert "SHA-256 does not match" in out
    assert healthy not in out
    assert "checked 2 stored contents (96.0 KB): 1 with problems, 2 problems" in out


def test_a_truncated_chunk_is_a_size_problem(client, store, capsys):
    file_id = upload(client, payload(2 * C))["file_id"]
    store.put(chunk_key(file_id, 0), b"short")

    with pytest.raises(SystemExit):
        call_command("verify", file_id)

    assert f"got 5 bytes, expected {C}" in capsys.readouterr().out


def test_metadata_that_does_not_add_up_is_a_problem(client, capsys):
    file_id = upload(client, payload(3 * C))["file_id"]
    Chunk.objects.filter(blob_id=file_id, index=2).delete()

    with pytest.raises(SystemExit):
        call_command("verify", file_id)

    assert "chunk sizes do not add up to the content's size" in capsys.readouterr().out


def test_usage_errors(client):
    with pytest.raises(CommandError, match="give one or more FILE_IDs, or --all"):
        call_command("verify")
    with pytest.raises(CommandError, match="not a file id"):
        call_command("verify", "nope")
    with pytest.raises(CommandError, match="no file has id"):
        call_command("verify", str(uuid.uuid4()))


def test_unreachable_storage_fails_the_command(client, settings):
    file_id = upload(client, b"data")["file_id"]
    settings.MINIO_ENDPOINT = "127.0.0.1:9"
    settings.STORAGE_MAX_ATTEMPTS = 1

    with pytest.raises(CommandError, match="object storage failed"):
        call_command("verify", file_id)


def test_long_runs_report_progress(client, capsys, monkeypatch):
    ids = [upload(client, payload(C, seed=seed))["file_id"] for seed in range(3)]
    monkeypatch.setattr("files.management.commands.verify.PROGRESS_EVERY_SECONDS", 0)

    call_command("verify", *ids)

    progress = capsys.readouterr().err.splitlines()
    assert progress == [f"checked {n}/3 contents ({n * 16}.0 KB)" for n in (1, 2, 3)]
