from __future__ import annotations

import pytest
from django.test import RequestFactory

from files.checks import (
    check_bucket_name,
    check_database_driver,
    check_open_api,
    check_trusted_proxies,
)
from labdropbox.proxies import client_address


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


def test_a_trusted_proxy_that_is_not_an_address_is_files_e003(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8", "nginx.local"]

    errors = check_trusted_proxies(None)

    assert [error.id for error in errors] == ["files.E003"]
    assert "nginx.local" in errors[0].msg


@pytest.mark.parametrize(
    ("trusted", "remote", "forwarded", "client"),
    [
        ([], "10.0.0.5", "203.0.113.9", "10.0.0.5"),  # no proxy trusted: the header is a claim
        (["10.0.0.0/8"], "10.0.0.5", "203.0.113.9", "203.0.113.9"),
        (["10.0.0.0/8"], "10.0.0.5", "1.2.3.4, 203.0.113.9", "203.0.113.9"),  # forged start
        (["10.0.0.0/8"], "10.0.0.5", "203.0.113.9, 10.0.0.7", "203.0.113.9"),  # two proxies
        (["10.0.0.0/8"], "192.0.2.1", "203.0.113.9", "192.0.2.1"),  # not via the proxy
    ],
)
def test_client_address_believes_only_trusted_proxies(settings, trusted, remote, forwarded, client):
    settings.TRUSTED_PROXIES = trusted
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)

    assert client_address(request) == client


@pytest.mark.parametrize(
    ("embedded", "hosts", "warned"),
    [
        (True, ["localhost", "127.0.0.1", "[::1]"], False),
        (True, ["files.example.org"], True),
        (False, ["localhost"], True),
    ],
)
def test_an_open_api_on_an_exposed_service_is_files_w001(settings, embedded, hosts, warned):
    settings.API_OPEN, settings.EMBEDDED, settings.ALLOWED_HOSTS = True, embedded, hosts
    assert [message.id for message in check_open_api(None)] == (["files.W001"] if warned else [])


def test_a_closed_api_is_never_warned_about(settings):
    settings.API_OPEN, settings.EMBEDDED, settings.ALLOWED_HOSTS = False, False, ["example.org"]
    assert check_open_api(None) == []
