"""What each Django storage backend needs to serve as a chunk store: subclassed to keep names
as asked and to bound its waits (`adapted`), the options that make it overwrite, which ones make
folders, and how to create its bucket, container or folder."""

from __future__ import annotations

import functools
import io
import os
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError
from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.core.files.base import File
from django.core.files.storage import Storage

from files.storage.errors import s3_error
from labdropbox.api.errors import ChunkNotFound

# Options that make a backend refuse (Azure) or rename (Django's FileSystemStorage: it creates
# files exclusively) a name that exists. The store always overwrites, so they are set here.
OVERWRITE_OPTIONS = {
    "AzureStorage": {"overwrite_files": True},
    "FileSystemStorage": {"allow_overwrite": True},
    "S3Storage": {"file_overwrite": True},
    "GoogleCloudStorage": {"file_overwrite": True},
}
# Backends that make a folder before writing into it, and fail when another thread made it
# first: the first chunk of each folder is written alone.
FOLDER_MAKERS = {"SFTPStorage"}
# Backends whose delete() swallows every OSError, a lost connection included: the store asks
# whether the object is gone instead of trusting the silence.
SILENT_DELETES = {"SFTPStorage"}
# Backends with real folders, which stay when their last object is deleted, and how to remove
# one that is empty (an error if it is not). Object stores have no folders to leave behind.
FOLDER_REMOVERS: dict[str, Callable[[Any, str], None]] = {
    "SFTPStorage": lambda storage, folder: storage.sftp.rmdir(storage._remote_path(folder)),
    "FileSystemStorage": lambda storage, folder: os.rmdir(storage.path(folder)),
}


@functools.cache
def adapted(backend: type[Storage]) -> type[Storage]:
    """`backend`, keeping every name as it is asked for instead of finding a free one, and with
    the S3_* timeouts and attempts as its defaults where the backend's own would let one chunk
    hang a request for minutes (the SDKs' defaults: 60 s timeouts, ten retries, none at all)."""

    def get_available_name(self: Storage, name: str, max_length: int | None = None) -> str:
        if max_length is not None and len(name) > max_length:
            raise SuspiciousOperation(f"{name} is longer than {max_length} characters")
        return name

    methods: dict[str, Any] = {"get_available_name": get_available_name}
    if is_kind(backend, "S3Storage"):
        methods["__init__"] = _bounded_s3_init(backend)
        methods["_open"] = _one_request_s3_open(backend)
        methods["_save"] = _one_request_s3_save(backend)
    elif is_kind(backend, "AzureStorage"):
        methods["_get_service_client"] = _bounded_azure_client(backend)
    elif is_kind(backend, "SFTPStorage"):
        methods["_connect"] = _bounded_sftp_connect(backend)
    return type(f"Adapted{backend.__name__}", (backend,), methods)


def _bounded_s3_init(backend: Any) -> Any:
    def __init__(self: Any, **options: Any) -> None:
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        backend.__init__(self, **options)
        ours = Config(
            # As the S3 store: no CRC checksums that older S3-compatible stores reject.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            connect_timeout=settings.STORAGE_CONNECT_TIMEOUT,
            read_timeout=settings.STORAGE_READ_TIMEOUT,
            retries={"mode": "standard", "total_max_attempts": settings.STORAGE_MAX_ATTEMPTS},
            max_pool_connections=settings.CHUNK_IO_THREADS,
        )
        self.client_config = ours.merge(self.client_config)  # what OPTIONS set wins
        if "transfer_config" not in options:
            # A chunk is one GetObject: on the calling thread, so its span stays in the trace.
            self.transfer_config = TransferConfig(use_threads=False)

    return __init__


def _one_request_s3_open(backend: Any) -> Any:
    """S3Storage reads a file with a HeadObject, then a GetObject through s3transfer into a
    temporary file: two requests and a copy where a chunk needs one request. A binary read is
    one GetObject here, its body read whole as the boto3 store reads it; a gzipped storage,
    and every other mode, read the backend's way."""

    def _open(self: Any, name: str, mode: str = "rb") -> File:
        if mode != "rb" or self.gzip:
            return backend._open(self, name, mode)
        from s3transfer.constants import ALLOWED_DOWNLOAD_ARGS
        from storages.utils import clean_name

        name = clean_name(name)
        parameters = {
            option: value
            for option, value in self.get_object_parameters(name).items()
            if option in ALLOWED_DOWNLOAD_ARGS  # those a read takes: SSE-C keys, a payer
        }
        try:
            response = self.connection.meta.client.get_object(
                Bucket=self.bucket_name, Key=self._normalize_name(name), **parameters
            )
        except ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                raise FileNotFoundError(f"File does not exist: {name}") from exc
            raise
        with response["Body"] as body:
            return File(io.BytesIO(body.read()), name=name)

    return _open


def _one_request_s3_save(backend: Any) -> Any:
    """S3Storage stores a file through a boto3 resource object and s3transfer, machinery around
    the one request a chunk needs (the service's own store sent 1 MiB chunks to RGW twice as
    fast). A chunk is one PutObject here, with the backend's own write parameters (content
    type, ACL, encryption…); a gzipped storage saves the backend's way."""

    def _save(self: Any, name: str, content: File) -> str:
        if self.gzip:
            return str(backend._save(self, name, content))
        from storages.utils import clean_name

        client = self.connection.meta.client
        accepted = client.meta.service_model.operation_model("PutObject").input_shape.members
        cleaned = clean_name(name)
        key = self._normalize_name(cleaned)
        parameters = {
            option: value
            for option, value in self._get_write_parameters(key, content).items()
            if option in accepted
        }
        content.seek(0)
        client.put_object(Bucket=self.bucket_name, Key=key, Body=content.read(), **parameters)
        return str(cleaned)

    return _save


def _bounded_azure_client(backend: Any) -> Any:
    def _get_service_client(self: Any) -> Any:
        from azure.storage.blob import BlobServiceClient, LinearRetry

        self.client_options = {
            "connection_timeout": settings.STORAGE_CONNECT_TIMEOUT,
            "read_timeout": settings.STORAGE_READ_TIMEOUT,
            # Instead of the blob SDK's own retries, which wait 15 s, then 18 s…
            "retry_policy": LinearRetry(
                backoff=1, random_jitter_range=1, retry_total=settings.STORAGE_MAX_ATTEMPTS - 1
            ),
            **(self.client_options or {}),
        }
        if self.connection_string is None:
            return backend._get_service_client(self)
        # django-storages leaves client_options out when it is given a connection string.
        return BlobServiceClient.from_connection_string(
            self.connection_string, **self.client_options
        )

    return _get_service_client


def _bounded_sftp_connect(backend: Any) -> Any:
    def _connect(self: Any) -> None:
        for timeout in ("timeout", "banner_timeout", "auth_timeout"):
            self.params.setdefault(timeout, settings.STORAGE_CONNECT_TIMEOUT)
        backend._connect(self)
        if self._sftp is not None:  # and no SFTP request waits forever for its answer
            self._sftp.get_channel().settimeout(settings.STORAGE_READ_TIMEOUT)

    return _connect


def is_kind(backend: type, name: str) -> bool:
    """Whether `backend` is the class called `name` or derives from it (by name, so that no
    optional library is imported to ask)."""
    return any(cls.__name__ == name for cls in backend.__mro__)


def describe(options: dict[str, Any]) -> str:
    """Where the objects are, from the options, never with a secret."""
    for option in ("bucket_name", "azure_container", "root_path", "location", "host"):
        if options.get(option):
            return f"{option}={options[option]}"
    return "default options"


# --- buckets -----------------------------------------------------------------------------------


def create_container(storage: Any) -> bool:
    """Create the bucket, container or folder the backend writes to, if the backend has one
    that can be made; True if it was created. A backend not known here is left as it is."""
    for kind, (exists, create) in CONTAINERS.items():
        if is_kind(type(storage), kind):
            if exists(storage):
                return False
            create(storage)
            return True
    return False


def _s3_bucket_exists(storage: Any) -> bool:
    try:
        storage.connection.meta.client.head_bucket(Bucket=storage.bucket_name)
    except ClientError as exc:
        if isinstance(s3_error(storage.bucket_name, exc), ChunkNotFound):
            return False
        raise
    return True


# backend class name -> (whether its container exists, how to create it)
CONTAINERS: dict[str, tuple[Callable[[Any], bool], Callable[[Any], object]]] = {
    "S3Storage": (
        _s3_bucket_exists,
        lambda storage: storage.connection.meta.client.create_bucket(Bucket=storage.bucket_name),
    ),
    "AzureStorage": (
        lambda storage: storage.client.exists(),
        lambda storage: storage.client.create_container(),
    ),
    "GoogleCloudStorage": (
        lambda storage: storage.bucket.exists(),
        lambda storage: storage.bucket.create(),
    ),
    "SFTPStorage": (
        lambda storage: storage._path_exists(storage.root_path or "."),
        lambda storage: storage._mkdir(storage.root_path or "."),
    ),
    "FileSystemStorage": (
        lambda storage: storage.exists(""),
        lambda storage: os.makedirs(storage.location, exist_ok=True),
    ),
}
