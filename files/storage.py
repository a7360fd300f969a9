"""All chunk object I/O: an S3 bucket when MINIO_ENDPOINT is set, else a folder under DATA_DIR.

Library errors never leave this module. Callers see ChunkNotFound (the object is not there) or
StorageUnavailable (the store could not be reached or refused the request), whatever the backend.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import boto3
import urllib3.exceptions
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

log = logging.getLogger(__name__)

CHUNK_PREFIX = "chunks/"
# DeleteObjects takes at most this many keys per request.
S3_DELETE_BATCH = 1000


class StorageError(Exception):
    pass


class StorageUnavailable(StorageError):
    """The object store could not be reached, timed out, or refused the request."""


class ChunkNotFound(StorageError):
    """The chunk object does not exist (or not with the bytes asked for)."""


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    modified: datetime


def chunk_key(file_id: uuid.UUID | str, index: int) -> str:
    return f"{CHUNK_PREFIX}{file_id}/{index}"


class ChunkStore(Protocol):
    description: str

    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str, start: int = 0, stop: int | None = None) -> bytes:
        """The object's bytes [start, stop); stop=None reads to the end."""

    def delete_many(self, keys: Iterable[str]) -> list[str]:
        """Delete objects (missing ones count as deleted); returns the keys that failed."""

    def list(self, prefix: str = CHUNK_PREFIX) -> Iterator[StoredObject]: ...

    def ensure_bucket(self) -> bool:
        """Create the bucket or folder if it is missing; True if it was created."""

    def check(self) -> None:
        """Raise StorageUnavailable unless the store answers."""


class FilesystemStore:
    """Chunk objects as files under one folder, written atomically (temp file, then rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.description = f"filesystem folder {root}"
        self._prefix = f"{root}{os.sep}"

    def _path_text(self, key: str) -> str:
        return self._prefix + key  # a str: get() runs per chunk and needs no Path

    def _path(self, key: str) -> Path:
        return Path(self._path_text(key))

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(temp, "wb") as out:
                out.write(data)
                # Metadata is committed once put() returns: the bytes must be on disk by then.
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temp.unlink(missing_ok=True)
            raise StorageUnavailable(f"cannot write {key}: {exc}") from exc

    def get(self, key: str, start: int = 0, stop: int | None = None) -> bytes:
        # os.pread on a bare descriptor: a buffered file object costs more than reading a small
        # chunk does, and this runs once per chunk of every read.
        try:
            descriptor = os.open(self._path_text(key), os.O_RDONLY)
        except FileNotFoundError as exc:
            raise ChunkNotFound(key) from exc
        except OSError as exc:
            raise StorageUnavailable(f"cannot read {key}: {exc}") from exc
        try:
            stop = os.fstat(descriptor).st_size if stop is None else stop
            parts = []
            while start < stop and (part := os.pread(descriptor, stop - start, start)):
                parts.append(part)
                start += len(part)
            return b"".join(parts)
        except OSError as exc:
            raise StorageUnavailable(f"cannot read {key}: {exc}") from exc
        finally:
            os.close(descriptor)

    def delete_many(self, keys: Iterable[str]) -> list[str]:
        failed = []
        for key in keys:
            path = self._path(key)
            try:
                path.unlink(missing_ok=True)
            except OSError:
                log.warning("could not delete chunk object %s", key, exc_info=True)
                failed.append(key)
                continue
            _remove_if_empty(path.parent)
        return failed

    def list(self, prefix: str = CHUNK_PREFIX) -> Iterator[StoredObject]:
        for folder, _dirs, names in os.walk(self._path(prefix)):
            for name in sorted(names):
                path = Path(folder) / name
                try:
                    stat = path.stat()
                except FileNotFoundError:  # deleted while we looked
                    continue
                yield StoredObject(
                    key=path.relative_to(self.root).as_posix(),
                    size=stat.st_size,
                    modified=datetime.fromtimestamp(stat.st_mtime, tz=UTC),
                )

    def ensure_bucket(self) -> bool:
        created = not self.root.is_dir()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageUnavailable(f"cannot create {self.root}: {exc}") from exc
        return created

    def check(self) -> None:
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise StorageUnavailable(f"{self.root} is missing or not writable")


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not empty, or already gone
        folder.rmdir()


class S3Store:
    """Chunk objects in an S3 bucket (MinIO, AWS, Ceph, moto…) through one boto3 client."""

    def __init__(self, client, bucket: str, description: str) -> None:
        self.client = client
        self.bucket = bucket
        self.description = description

    def put(self, key: str, data: bytes) -> None:
        with _s3_errors(key):
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data)

    def get(self, key: str, start: int = 0, stop: int | None = None) -> bytes:
        extra = {}
        if start or stop is not None:
            extra["Range"] = f"bytes={start}-{'' if stop is None else stop - 1}"
        with _s3_errors(key):
            response = self.client.get_object(Bucket=self.bucket, Key=key, **extra)
            with response["Body"] as body:
                return body.read()

    def delete_many(self, keys: Iterable[str]) -> list[str]:
        keys = list(keys)
        failed: list[str] = []
        for first in range(0, len(keys), S3_DELETE_BATCH):
            batch = keys[first : first + S3_DELETE_BATCH]
            try:
                with _s3_errors(batch[0]):
                    response = self.client.delete_objects(
                        Bucket=self.bucket,
                        Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
                    )
            except StorageError:
                log.warning("could not delete %d chunk objects", len(batch), exc_info=True)
                failed.extend(batch)
                continue
            failed.extend(error["Key"] for error in response.get("Errors", []))
        return failed

    def list(self, prefix: str = CHUNK_PREFIX) -> Iterator[StoredObject]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        )
        with _s3_errors(prefix):
            for page in pages:
                for item in page.get("Contents", []):
                    yield StoredObject(item["Key"], item["Size"], item["LastModified"])

    def ensure_bucket(self) -> bool:
        if self._bucket_exists():
            return False
        extra = {}
        if settings.MINIO_REGION != "us-east-1":
            extra["CreateBucketConfiguration"] = {"LocationConstraint": settings.MINIO_REGION}
        try:
            with _s3_errors(self.bucket):
                self.client.create_bucket(Bucket=self.bucket, **extra)
        except StorageUnavailable as exc:
            if _s3_error_code(exc.__cause__) == "BucketAlreadyOwnedByYou":  # a worker won the race
                return False
            raise
        return True

    def check(self) -> None:
        if not self._bucket_exists():
            raise StorageUnavailable(f"bucket {self.bucket} does not exist")

    def _bucket_exists(self) -> bool:
        try:
            with _s3_errors(self.bucket):
                self.client.head_bucket(Bucket=self.bucket)
        except ChunkNotFound:
            return False
        return True


def _s3_error_code(exc: BaseException | None) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


@contextmanager
def _s3_errors(key: str) -> Iterator[None]:
    """Turn boto3/botocore/urllib3 errors into ChunkNotFound or StorageUnavailable."""
    try:
        yield
    except ClientError as exc:
        code = _s3_error_code(exc)
        # HEAD requests carry no error body: a missing object or bucket is a bare 404.
        if code in {"NoSuchKey", "InvalidRange", "NotFound", "404"}:
            raise ChunkNotFound(key) from exc
        message = exc.response.get("Error", {}).get("Message") or code
        raise StorageUnavailable(f"S3 refused {key}: {code} {message}") from exc
    except (BotoCoreError, urllib3.exceptions.HTTPError, OSError) as exc:
        raise StorageUnavailable(f"S3 unreachable for {key}: {exc}") from exc


def s3_endpoint_url(endpoint: str, secure: bool) -> str:
    """MINIO_ENDPOINT is host:port; a full URL is accepted too."""
    if "://" in endpoint:
        return endpoint
    return f"{'https' if secure else 'http'}://{endpoint}"


def s3_client(endpoint: str):
    """A boto3 S3 client for `endpoint` with the settings' credentials, timeouts and pool."""
    return _cached_client(
        s3_endpoint_url(endpoint, settings.MINIO_SECURE),
        settings.MINIO_ACCESS_KEY,
        settings.MINIO_SECRET_KEY,
        settings.MINIO_REGION,
        settings.S3_CONNECT_TIMEOUT,
        settings.S3_READ_TIMEOUT,
        settings.S3_MAX_ATTEMPTS,
        settings.CHUNK_IO_THREADS,
    )


@functools.lru_cache(maxsize=16)
def _cached_client(
    endpoint_url: str,
    access_key: str,
    secret_key: str,
    region: str,
    connect_timeout: float,
    read_timeout: float,
    attempts: int,
    pool_size: int,
):
    # Building a client costs tens of milliseconds (botocore loads the S3 model): one per
    # configuration, shared by every thread of the process (boto3 clients are thread-safe).
    config = Config(
        # boto3 >= 1.36 adds CRC checksums by default; older MinIO and other S3-compatible
        # stores reject them. We check every chunk's SHA-256 ourselves.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"mode": "standard", "total_max_attempts": attempts},
        # Every chunk I/O thread of the process may hold a connection at once.
        max_pool_connections=pool_size,
        s3={"addressing_style": "path"},
    )
    with _session_lock:  # a boto3 Session may not create clients from two threads at once
        return _boto_session().client(
            "s3",
            endpoint_url=endpoint_url,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name=region,
            config=config,
        )


_session_lock = threading.Lock()


@functools.cache
def _boto_session() -> boto3.session.Session:
    return boto3.session.Session()


@functools.cache
def get_store() -> ChunkStore:
    """The process's chunk store, created on first use (after gunicorn forks)."""
    if settings.MINIO_ENDPOINT:
        url = s3_endpoint_url(settings.MINIO_ENDPOINT, settings.MINIO_SECURE)
        return S3Store(
            s3_client(settings.MINIO_ENDPOINT),
            settings.MINIO_BUCKET,
            f"S3 bucket {settings.MINIO_BUCKET} at {url}",
        )
    return FilesystemStore(settings.CHUNK_DIR)


def _forget_clients() -> None:
    # A forked worker must not reuse the parent's clients and their pooled connections.
    for cached in (get_store, _cached_client, _boto_session):
        cached.cache_clear()


os.register_at_fork(after_in_child=_forget_clients)

STORE_SETTINGS = {
    "MINIO_ENDPOINT",
    "MINIO_BUCKET",
    "MINIO_ACCESS_KEY",
    "MINIO_SECRET_KEY",
    "MINIO_SECURE",
    "MINIO_REGION",
    "CHUNK_DIR",
    "S3_CONNECT_TIMEOUT",
    "S3_READ_TIMEOUT",
    "S3_MAX_ATTEMPTS",
    "CHUNK_IO_THREADS",
}


@receiver(setting_changed)
def _forget_store(setting: str, **kwargs) -> None:
    if setting in STORE_SETTINGS:
        get_store.cache_clear()


def ensure_bucket_at_startup() -> None:
    """Create the bucket if it is missing; an unreachable store must not stop the service."""
    store = get_store()
    try:
        if store.ensure_bucket():
            log.info("created %s", store.description)
    except StorageUnavailable as exc:
        log.warning("object storage not ready at start-up (%s); /health/ready will say so", exc)
