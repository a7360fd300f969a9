"""Chunk objects through any Django storage backend: STORAGES["chunks"], with CHUNK_STORAGE=django.

django-storages reaches Azure Blob Storage, Google Cloud Storage, SFTP servers and S3 this way,
and Django's own FileSystemStorage works too. The object keys, the interface and the error
contract are the S3 and filesystem stores': callers cannot tell them apart, except by speed.

What the Storage API does not give, this store adds:

- Overwrite. A retried chunk must replace its object. Storage.save() would give it a new name
  (`0_a1B2c3`) when the name is taken, so the backend is subclassed to keep names as they are,
  and the options that make a backend refuse or rename an existing name are turned off.
- Errors. Every backend raises its own library's exceptions; they become ChunkNotFound,
  StorageUnavailable or StorageRejected here (see `storage_error`).
- Threads. Each chunk I/O thread has its own backend instance, so an SFTP connection or an
  Azure client is never shared between threads, and an instance whose connection failed is
  dropped and made anew on the thread's next call.
- Spans and metrics: one `Storage.<method>` span per call (under `download_chunk_{i}` or
  `upload_chunk_{i}`), timed by `labdropbox_storage_call_duration_seconds`.

A ranged read reads the whole chunk (a chunk is small) and slices it. S3Storage reads a chunk
with one GetObject instead of its HeadObject, GetObject and temporary file (`adapted`).
"""

from __future__ import annotations

import errno
import functools
import io
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation
from django.core.files.base import ContentFile, File
from django.core.files.storage import Storage
from django.utils.module_loading import import_string

from files import spans
from files.errors import ChunkNotFound, StorageRejected, StorageUnavailable
from files.storage import CHUNK_PREFIX, StoredObject
from files.storage.s3 import _client_error
from metrics.registry import (
    CHUNK_BYTES_READ,
    CHUNK_BYTES_WRITTEN,
    STORAGE_CALL_DURATION,
    STORAGE_CALL_ERRORS,
    labelled,
)

log = logging.getLogger(__name__)

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


class DjangoStore:
    """Chunk objects in the Django storage that `config` (a STORAGES entry) describes."""

    def __init__(self, config: dict[str, Any]) -> None:
        if not config.get("BACKEND"):
            raise ImproperlyConfigured(
                "CHUNK_STORAGE=django needs STORAGES['chunks']: set CHUNK_STORAGE_BACKEND"
            )
        try:
            backend = import_string(config["BACKEND"])
        except ImportError as exc:
            raise ImproperlyConfigured(
                f"STORAGES['chunks'] names no importable backend: {exc}"
            ) from exc
        self.backend_name = backend.__name__
        self.backend = adapted(backend)
        self.options = dict(config.get("OPTIONS") or {})
        for name, options in OVERWRITE_OPTIONS.items():
            if is_kind(backend, name):
                self.options.update(options)
        self.description = f"Django storage {config['BACKEND']} ({describe(self.options)})"
        self._local = threading.local()
        self._makes_folders = any(is_kind(backend, name) for name in FOLDER_MAKERS)
        self._remove_folder = next(
            (remove for name, remove in FOLDER_REMOVERS.items() if is_kind(backend, name)), None
        )
        self._folder_lock = threading.Lock()
        self._folders_made: dict[str, None] = {}  # the newest few, oldest first

    def storage(self) -> Storage:
        """This thread's backend instance."""
        storage = getattr(self._local, "storage", None)
        if storage is None:
            storage = self._local.storage = self.backend(**self.options)
        return storage

    def put(self, key: str, data: bytes) -> None:
        folder = key.rpartition("/")[0]
        if self._makes_folders and folder not in self._folders_made:
            with self._folder_lock:
                name = self._save(key, data)
                self._folders_made[folder] = None
                if len(self._folders_made) > 256:
                    del self._folders_made[next(iter(self._folders_made))]
        else:
            name = self._save(key, data)
        if name != key:  # a backend that renames in _save itself: never keep the copy
            self.delete_many([name])
            raise StorageRejected(
                f"{self.backend_name} stored {key} as {name}: the backend must overwrite"
            )
        CHUNK_BYTES_WRITTEN.inc(len(data))

    def _save(self, key: str, data: bytes) -> str:
        with self._call("save", key) as storage:
            return storage.save(key, ContentFile(data))

    def get(self, key: str, start: int = 0, stop: int | None = None) -> bytes:
        with self._call("open", key) as storage, storage.open(key, "rb") as file:
            data = file.read()
        CHUNK_BYTES_READ.inc(len(data))
        return data[start:stop] if start or stop is not None else data

    def delete_many(self, keys: Iterable[str]) -> list[str]:
        """One call per key. Once the store fails, the rest are not tried: each would wait out
        its timeouts and retries while a failed upload holds its client's answer back."""
        failed: list[str] = []
        keys = list(keys)
        for position, key in enumerate(keys):
            try:
                with self._call("delete", key) as storage:
                    storage.delete(key)
                    gone = not (self.backend_name in SILENT_DELETES and storage.exists(key))
            except ChunkNotFound:
                continue  # a missing object counts as deleted
            except (StorageUnavailable, StorageRejected):
                log.warning("could not delete chunk object %s", key, exc_info=True)
                failed.extend(keys[position:])
                break
            if not gone:
                failed.append(key)
        self._remove_empty_folders(set(keys) - set(failed))
        return failed

    def _remove_empty_folders(self, deleted: set[str]) -> None:
        """Remove the folders that `deleted` leaves empty, as the filesystem store does, so that
        deleted files leave no folder each behind on an SFTP server or a disk."""
        if self._remove_folder is None:
            return
        for folder in sorted({key.rpartition("/")[0] for key in deleted} - {""}):
            with self._folder_lock:  # a first chunk being written makes its folder under it
                self._folders_made.pop(folder, None)
                try:
                    with self._call("rmdir", folder) as storage:
                        try:
                            self._remove_folder(storage, folder)
                        except OSError:  # not empty, or already gone: nothing to do
                            continue
                except (ChunkNotFound, StorageUnavailable, StorageRejected):
                    log.info("could not remove the chunk folder %s", folder, exc_info=True)

    def list(self, prefix: str = CHUNK_PREFIX) -> Iterator[StoredObject]:
        yield from self._walk(prefix.rstrip("/"))

    def _walk(self, folder: str) -> Iterator[StoredObject]:
        try:
            with self._call("listdir", folder) as storage:
                folders, names = storage.listdir(folder)
        except ChunkNotFound:  # no such folder (SFTP, a file system): nothing stored there
            return
        for name in sorted(names):
            # Azure's listdir answers every blob under the folder by its full name.
            key = name if name.startswith(f"{folder}/") else f"{folder}/{name}"
            try:
                with self._call("size", key) as storage:
                    size, modified = storage.size(key), storage.get_modified_time(key)
            except ChunkNotFound:  # deleted while we looked
                continue
            if modified.tzinfo is None:
                modified = modified.replace(tzinfo=UTC)
            yield StoredObject(key, size, modified)
        for child in sorted(folders):
            yield from self._walk(f"{folder}/{child}")

    def ensure_bucket(self) -> bool:
        with self._call("ensure_bucket", "") as storage:
            return create_container(storage)

    def check(self) -> None:
        try:
            with self._call("listdir", "") as storage:
                storage.listdir("")
        except ChunkNotFound as exc:
            raise StorageUnavailable(
                f"{self.description}: its bucket or folder is missing"
            ) from exc

    @contextmanager
    def _call(self, method: str, key: str) -> Iterator[Storage]:
        """One call of the backend, in its own span, timed; its errors made ours. A failed
        connection is not reused: the thread's next call builds a new backend instance."""
        started = time.perf_counter()
        with spans.tracer.start_as_current_span(
            spans.storage_call(method),
            attributes={"storage.backend": self.backend_name, "storage.key": key},
        ):
            try:
                yield self.storage()
            except Exception as exc:
                error = storage_error(key, exc)
                labelled(STORAGE_CALL_ERRORS, method, type(error).__name__).inc()
                if not isinstance(error, ChunkNotFound):
                    self._forget_storage()
                if error is exc:
                    raise
                raise error from exc
            finally:
                labelled(STORAGE_CALL_DURATION, method).observe(time.perf_counter() - started)

    def _forget_storage(self) -> None:
        storage = getattr(self._local, "storage", None)
        self._local.storage = None
        close = getattr(storage, "close", None)
        if callable(close):
            try:
                close()
            except Exception:  # noqa: BLE001  (closing a broken connection may fail too)
                log.debug("closing a failed %s", self.backend_name, exc_info=True)


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
            connect_timeout=settings.S3_CONNECT_TIMEOUT,
            read_timeout=settings.S3_READ_TIMEOUT,
            retries={"mode": "standard", "total_max_attempts": settings.S3_MAX_ATTEMPTS},
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


def _bounded_azure_client(backend: Any) -> Any:
    def _get_service_client(self: Any) -> Any:
        from azure.storage.blob import BlobServiceClient, LinearRetry

        self.client_options = {
            "connection_timeout": settings.S3_CONNECT_TIMEOUT,
            "read_timeout": settings.S3_READ_TIMEOUT,
            # Instead of the blob SDK's own retries, which wait 15 s, then 18 s…
            "retry_policy": LinearRetry(
                backoff=1, random_jitter_range=1, retry_total=settings.S3_MAX_ATTEMPTS - 1
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
            self.params.setdefault(timeout, settings.S3_CONNECT_TIMEOUT)
        backend._connect(self)
        if self._sftp is not None:  # and no SFTP request waits forever for its answer
            self._sftp.get_channel().settimeout(settings.S3_READ_TIMEOUT)

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


# --- errors ------------------------------------------------------------------------------------

# By class name, so that the optional libraries need not be installed to be recognised.
NOT_FOUND_TYPES = {"FileNotFoundError", "ResourceNotFoundError", "NotFound"}
REJECTED_TYPES = {
    "PermissionError",  # the file system or SFTP server refuses
    "SuspiciousOperation",
    "AuthenticationException",  # paramiko: wrong key or password
    "BadHostKeyException",
    "ClientAuthenticationError",  # azure-core: wrong account key or SAS
    "ResourceExistsError",  # azure-core: an object that may not be overwritten
    "DefaultCredentialsError",  # google-auth: no credentials configured
    "RefreshError",  # google-auth: credentials refused
    "ImproperlyConfigured",
}


def storage_error(key: str, exc: BaseException) -> BaseException:
    """The error contract's exception for whatever a backend raised."""
    if isinstance(exc, ChunkNotFound | StorageUnavailable | StorageRejected):
        return exc
    if isinstance(exc, ClientError):  # S3Storage, through boto3: the S3 store's own rules
        return _client_error(key, exc)
    if isinstance(exc, BotoCoreError):
        return StorageUnavailable(f"S3 unreachable for {key}: {exc}")
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & NOT_FOUND_TYPES or getattr(exc, "errno", None) == errno.ENOENT:
        return ChunkNotFound(key)
    status = http_status(exc)
    if status == 404:
        return ChunkNotFound(key)
    message = f"{type(exc).__name__} for {key}: {exc}"
    if names & REJECTED_TYPES or getattr(exc, "errno", None) in (errno.EACCES, errno.EPERM):
        return StorageRejected(message)
    if status is not None and 400 <= status < 500 and status not in (408, 429):
        return StorageRejected(message)
    # Connection refused, reset or timed out, an SSH channel closed, a 5xx, a 408 or 429,
    # anything unknown: the store failed for now, and trying again may succeed.
    return StorageUnavailable(message)


def http_status(exc: BaseException) -> int | None:
    """The HTTP status an SDK's error carries: azure-core's status_code, google's code."""
    for attribute in ("status_code", "code"):
        value = getattr(exc, attribute, None)
        if isinstance(value, int) and 100 <= value < 600:
            return value
    return None


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
        if isinstance(_client_error(storage.bucket_name, exc), ChunkNotFound):
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
