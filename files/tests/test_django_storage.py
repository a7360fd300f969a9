"""CHUNK_STORAGE=django without a server: how it is configured, how every backend's errors become
ours, and what the store does to a backend (overwrite, bounded timeouts, S3Storage's reads).
Google Cloud Storage has no emulator that installs here, so its backend is checked this way only;
the S3, Azure and SFTP backends also run the store-parametrized tests against real servers
(testing/storages.py).
"""

from __future__ import annotations

import errno
import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import paramiko
import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from botocore.exceptions import ClientError, EndpointConnectionError
from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation
from django.core.files.storage import FileSystemStorage
from google.api_core import exceptions as google
from google.auth.exceptions import DefaultCredentialsError, TransportError

from files.checks import check_chunk_storage
from files.storage import get_store
from files.storage.django import DjangoStore
from files.storage.django.backends import adapted
from files.storage.errors import storage_error
from files.tests.test_settings import load_settings
from labdropbox.api.errors import ChunkNotFound, StorageRejected, StorageUnavailable
from testing.storages import django_storage

GCS = "storages.backends.gcloud.GoogleCloudStorage"


def s3_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "GetObject",
    )


def azure_error(status: int) -> HttpResponseError:
    error = HttpResponseError(message="m")
    error.status_code = status
    return error


@pytest.mark.parametrize(
    ("raised", "becomes"),
    [
        # any backend, and Django's FileSystemStorage
        (FileNotFoundError(errno.ENOENT, "gone"), ChunkNotFound),
        (PermissionError(errno.EACCES, "no"), StorageRejected),
        (SuspiciousOperation("../x"), StorageRejected),
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), StorageUnavailable),
        (TimeoutError("slow"), StorageUnavailable),
        (RuntimeError("something else"), StorageUnavailable),
        # S3Storage (boto3): the S3 store's own rules
        (s3_error("404", 404), ChunkNotFound),
        (s3_error("NoSuchBucket", 404), StorageRejected),
        (s3_error("AccessDenied", 403), StorageRejected),
        (s3_error("SlowDown", 503), StorageUnavailable),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), StorageUnavailable),
        # AzureStorage (azure-core)
        (ResourceNotFoundError("no blob"), ChunkNotFound),
        (ClientAuthenticationError("bad key"), StorageRejected),
        (azure_error(403), StorageRejected),
        (azure_error(503), StorageUnavailable),
        (azure_error(429), StorageUnavailable),
        (ServiceRequestError("refused"), StorageUnavailable),
        # SFTPStorage (paramiko)
        (OSError(errno.ENOENT, "No such file"), ChunkNotFound),
        (paramiko.AuthenticationException("key refused"), StorageRejected),
        (paramiko.SSHException("channel closed"), StorageUnavailable),
        (EOFError(), StorageUnavailable),
        (TimeoutError("timed out"), StorageUnavailable),
        # GoogleCloudStorage (google-api-core, google-auth)
        (google.NotFound("no object"), ChunkNotFound),
        (google.Forbidden("no permission"), StorageRejected),
        (google.Unauthorized("no token"), StorageRejected),
        (google.TooManyRequests("slow down"), StorageUnavailable),
        (google.ServiceUnavailable("down"), StorageUnavailable),
        (google.InternalServerError("oops"), StorageUnavailable),
        (DefaultCredentialsError("no credentials"), StorageRejected),
        (TransportError("unreachable"), StorageUnavailable),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else "",
)
def test_every_backends_errors_become_the_error_contract(raised, becomes):
    error = storage_error("chunks/a/0", raised)

    assert type(error) is becomes
    if becomes is ChunkNotFound:
        assert "chunks/a/0" in str(error)


def test_env_configures_the_chunks_storage(tmp_path):
    options = {"bucket_name": "lab", "project_id": "p"}
    show = load_settings(
        tmp_path,
        SECRET_KEY="x",
        CHUNK_STORAGE="django",
        CHUNK_STORAGE_BACKEND=GCS,
        CHUNK_STORAGE_OPTIONS=json.dumps(options),
    )

    assert show["store"] == "DjangoStore"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CHUNK_STORAGE": "azure"}, "CHUNK_STORAGE must be one of , django"),
        ({"CHUNK_STORAGE_BACKEND": GCS, "CHUNK_STORAGE_OPTIONS": "{nope"}, "JSON object"),
        ({"CHUNK_STORAGE_BACKEND": GCS, "CHUNK_STORAGE_OPTIONS": "[1]"}, "JSON object"),
        ({"CHUNK_STORAGE": "django"}, "SECRET_KEY must be set"),  # data leaves the machine
    ],
)
def test_bad_chunk_storage_settings_stop_start_up(tmp_path, env, message):
    with pytest.raises(AssertionError, match=message):
        load_settings(tmp_path, **env)


def test_a_missing_or_unimportable_backend_is_files_e004(settings):
    settings.CHUNK_STORAGE = "django"
    settings.STORAGES = {"default": settings.STORAGES["default"]}
    assert [error.id for error in check_chunk_storage(None)] == ["files.E004"]

    settings.STORAGES = {**settings.STORAGES, "chunks": {"BACKEND": "storages.backends.nope.X"}}
    assert [error.id for error in check_chunk_storage(None)] == ["files.E004"]

    settings.STORAGES = {**settings.STORAGES, "chunks": {"BACKEND": GCS}}
    assert check_chunk_storage(None) == []


@pytest.mark.parametrize(
    ("chunks", "message"),
    [(None, "needs STORAGES\\['chunks'\\]"), ({"BACKEND": "nope.X"}, "no importable backend")],
)
def test_a_store_without_a_usable_backend_is_improperly_configured(settings, chunks, message):
    settings.CHUNK_STORAGE = "django"
    settings.STORAGES = {"default": settings.STORAGES["default"]}
    if chunks is not None:
        settings.STORAGES["chunks"] = chunks

    with pytest.raises(ImproperlyConfigured, match=message):
        get_store()


def test_google_cloud_storage_is_configured_to_overwrite_with_our_bucket(settings):
    settings.CHUNK_STORAGE = "django"
    options = {"bucket_name": "lab-chunks", "project_id": "lab", "file_overwrite": False}
    settings.STORAGES = {**settings.STORAGES, "chunks": {"BACKEND": GCS, "OPTIONS": options}}

    store = get_store()
    backend = store.storage()

    assert isinstance(store, DjangoStore)
    assert store.description == f"Django storage {GCS} (bucket_name=lab-chunks)"
    assert backend.bucket_name == "lab-chunks"
    assert backend.file_overwrite is True  # whatever OPTIONS said
    assert backend.get_available_name("chunks/a/0") == "chunks/a/0"


class Unreachable:
    """A GCS bucket object whose every call fails as google-cloud-storage does offline."""

    def exists(self):
        raise TransportError("no route to storage.googleapis.com")

    def get_blob(self, name, **kwargs):
        raise TransportError("no route to storage.googleapis.com")


def test_google_cloud_storage_offline_is_storage_unavailable(settings):
    settings.CHUNK_STORAGE = "django"
    settings.STORAGES = {
        **settings.STORAGES,
        "chunks": {"BACKEND": GCS, "OPTIONS": {"bucket_name": "b", "project_id": "p"}},
    }
    store = get_store()

    for call in (store.ensure_bucket, lambda: store.get("chunks/a/0")):
        store.storage()._bucket = Unreachable()  # a failed backend instance is replaced
        with pytest.raises(StorageUnavailable):
            call()


def test_names_are_never_changed_to_free_ones(tmp_path):
    store = DjangoStore(
        {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path), "allow_overwrite": False},
        }
    )
    store.put("chunks/a/0", b"first")
    store.put("chunks/a/0", b"second")

    assert store.get("chunks/a/0") == b"second"
    assert [item.key for item in store.list()] == ["chunks/a/0"]
    assert sorted(path.name for path in (tmp_path / "chunks" / "a").iterdir()) == ["0"]


def test_a_name_too_long_for_the_backend_is_refused_not_shortened(tmp_path):
    backend = adapted(FileSystemStorage)(location=str(tmp_path))

    with pytest.raises(SuspiciousOperation):
        backend.get_available_name("chunks/" + "a" * 300, max_length=100)


def test_an_s3storage_chunk_read_is_one_get_object(s3_server):
    config = django_storage("django-s3", f"one-get-{uuid.uuid4().hex[:12]}", s3=s3_server)
    config["OPTIONS"]["object_parameters"] = {"RequestPayer": "requester"}
    store = DjangoStore(config)
    store.ensure_bucket()
    store.put("chunks/a/0", b"0123456789")
    sent = []
    store.storage().connection.meta.client.meta.events.register(
        "before-send.s3", lambda request, **_: sent.append(request)
    )

    assert store.get("chunks/a/0", 2, 5) == b"234"
    assert [request.method for request in sent] == ["GET"]
    assert sent[0].headers["x-amz-request-payer"] == b"requester"  # the backend's parameters
    with pytest.raises(ChunkNotFound):
        store.get("chunks/a/1")
    with store.storage().open("chunks/a/0", "r") as text:  # other modes: the backend's way
        assert text.read() == "0123456789"


def test_an_s3storage_chunk_write_is_one_put_object(s3_server):
    config = django_storage("django-s3", f"one-put-{uuid.uuid4().hex[:12]}", s3=s3_server)
    config["OPTIONS"]["object_parameters"] = {"CacheControl": "no-transform"}
    store = DjangoStore(config)
    store.ensure_bucket()
    sent = []
    store.storage().connection.meta.client.meta.events.register(
        "before-send.s3", lambda request, **_: sent.append(request)
    )

    store.put("chunks/a/0", b"0123456789")

    assert [request.method for request in sent] == ["PUT"]
    assert sent[0].headers["Cache-Control"] == b"no-transform"  # the backend's parameters
    assert sent[0].headers["Content-Type"] == b"application/octet-stream"
    assert store.get("chunks/a/0") == b"0123456789"


@pytest.mark.parametrize("kind", ["FileSystemStorage", "django-sftp"])
def test_a_folder_goes_with_its_last_chunk_and_comes_back_with_the_next(kind, tmp_path, request):
    if kind == "FileSystemStorage":
        root = tmp_path
        config = {"BACKEND": f"django.core.files.storage.{kind}", "OPTIONS": {"location": root}}
    else:
        sftp = request.getfixturevalue("sftp_server")
        name = f"folders-{uuid.uuid4().hex[:12]}"
        root, config = sftp.root / name, django_storage(kind, name, sftp=sftp)
    store = DjangoStore(config)
    store.ensure_bucket()
    for key in ("chunks/a/0", "chunks/a/1", "chunks/b/0"):
        store.put(key, b"x")

    assert store.delete_many(["chunks/a/0"]) == []
    assert (root / "chunks/a").is_dir()  # chunk 1 is still in it
    assert store.delete_many(["chunks/a/1", "chunks/b/0"]) == []
    assert list((root / "chunks").iterdir()) == []

    keys = [f"chunks/a/{index}" for index in range(12)]
    with ThreadPoolExecutor(4) as pool:  # the folder is made again, once, by whichever is first
        list(pool.map(lambda key: store.put(key, b"again"), keys))
    assert {item.key for item in store.list()} == set(keys)
