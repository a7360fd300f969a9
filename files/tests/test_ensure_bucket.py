from __future__ import annotations

import subprocess
import sys
import uuid

import pytest
from django.core.management import CommandError, call_command

from files.storage import get_store
from files.storage.s3 import s3_store
from testing.fixtures import point_store_at
from testing.servers import PROJECT_DIR


@pytest.mark.both_stores
def test_ensure_bucket_creates_a_missing_bucket_then_reports_it_exists(
    settings, capsys, store_kind, request
):
    point_store_at(request, settings, store_kind, f"missing-{uuid.uuid4().hex[:12]}")

    call_command("ensure_bucket")
    call_command("ensure_bucket")

    first, second = capsys.readouterr().out.splitlines()
    assert first.startswith("created ")
    assert second.startswith("already exists: ")
    get_store().check()


def test_ensure_bucket_fails_when_storage_is_unreachable(settings):
    settings.MINIO_ENDPOINT = "127.0.0.1:9"
    settings.STORAGE_MAX_ATTEMPTS = 1

    with pytest.raises(CommandError, match="could not reach S3 bucket"):
        call_command("ensure_bucket")


def test_bucket_is_created_when_the_service_starts(s3_server, tmp_path):
    bucket = f"startup-{uuid.uuid4().hex[:12]}"
    env = {
        "PATH": "/usr/bin:/bin",
        "DATA_DIR": str(tmp_path),
        **s3_server.service_env,
        "MINIO_BUCKET": bucket,
        "SECRET_KEY": "test",
    }

    subprocess.run(
        [sys.executable, "-c", "import labdropbox.wsgi"], cwd=PROJECT_DIR, env=env, check=True
    )

    s3_store(s3_server.endpoint, bucket).check()
