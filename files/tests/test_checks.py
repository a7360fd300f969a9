from __future__ import annotations

import pytest

from files.checks import check_bucket_name, check_database_driver


def test_invalid_bucket_name_is_files_e001(settings):
    settings.MINIO_ENDPOINT = "minio:9000"
    settings.MINIO_BUCKET = "Not_A_Bucket"

    assert [error.id for error in check_bucket_name(None)] == ["files.E001"]


def test_valid_bucket_name_or_no_s3_passes(settings):
    settings.MINIO_ENDPOINT = "minio:9000"
    settings.MINIO_BUCKET = "labdropbox"
    assert check_bucket_name(None) == []

    settings.MINIO_ENDPOINT = ""
    settings.MINIO_BUCKET = "Not_A_Bucket"
    assert check_bucket_name(None) == []


@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")
def test_database_backend_that_cannot_be_imported_is_files_e002(settings):
    settings.DATABASES = {"default": {"ENGINE": "no_such_tidb_backend"}}

    errors = check_database_driver(None)

    assert [error.id for error in errors] == ["files.E002"]
    assert "no_such_tidb_backend" in errors[0].msg
    assert "requirements/mysql.txt" in errors[0].hint


@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")
def test_sqlite_needs_no_driver_check(settings):
    settings.DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3"}}

    assert check_database_driver(None) == []
