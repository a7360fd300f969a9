"""All chunk object I/O: an S3 bucket when MINIO_ENDPOINT is set, else a folder under DATA_DIR;
any Django storage backend (STORAGES["chunks"]) with CHUNK_STORAGE=django.

Library errors never leave this package (files/storage/errors.py maps them). Callers see three
exceptions of labdropbox.api.errors, whatever the backend: ChunkNotFound (the object is not
there), StorageUnavailable (the store could not be reached or failed for now: try again) and
StorageRejected (it answered and refused for good: credentials, bucket, permissions).
"""

from __future__ import annotations

import functools
import logging
import os
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from labdropbox.api.errors import StorageRejected, StorageUnavailable

log = logging.getLogger(__name__)

CHUNK_PREFIX = "chunks/"


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    modified: datetime


def chunk_key(file_id: uuid.UUID | str, index: int) -> str:
    return f"{CHUNK_PREFIX}{file_id}/{index}"


class ChunkStore(Protocol):
    description: str

    def put(self, key: str, data: bytes, sha256_hex: str | None = None) -> None:
        """Store the object; `sha256_hex`, its SHA-256 when the caller has it, spares a store
        that uses one (S3 signs it) hashing the bytes again."""

    def get(self, key: str, start: int = 0, stop: int | None = None) -> bytes:
        """The object's bytes [start, stop); stop=None reads to the end."""

    def delete_many(self, keys: Iterable[str]) -> list[str]:
        """Delete objects (missing ones count as deleted); returns the keys that failed."""

    def list(self, prefix: str = CHUNK_PREFIX) -> Iterator[StoredObject]:
        """The objects under `prefix`, in key order."""

    def ensure_bucket(self) -> bool:
        """Create the bucket or folder if it is missing; True if it was created."""

    def check(self) -> None:
        """Raise StorageUnavailable unless the store answers."""


@functools.cache
def get_store() -> ChunkStore:
    """The process's chunk store, created on first use (after gunicorn forks)."""
    if settings.CHUNK_STORAGE == "django":
        from files.storage.django import DjangoStore

        return DjangoStore(settings.STORAGES.get("chunks", {}))
    if settings.MINIO_ENDPOINT:
        from files.storage.s3 import s3_store

        return s3_store(settings.MINIO_ENDPOINT, settings.MINIO_BUCKET)
    from files.storage.filesystem import FilesystemStore

    return FilesystemStore(settings.CHUNK_DIR)


def _forget_store() -> None:
    # A forked worker must not reuse the parent's clients and their pooled connections.
    get_store.cache_clear()


os.register_at_fork(after_in_child=_forget_store)

STORE_SETTINGS = {
    "CHUNK_STORAGE",
    "STORAGES",
    "MINIO_ENDPOINT",
    "MINIO_BUCKET",
    "MINIO_ACCESS_KEY",
    "MINIO_SECRET_KEY",
    "MINIO_SECURE",
    "MINIO_REGION",
    "CHUNK_DIR",
    "STORAGE_CONNECT_TIMEOUT",
    "STORAGE_READ_TIMEOUT",
    "STORAGE_MAX_ATTEMPTS",
    "CHUNK_IO_THREADS",
}


@receiver(setting_changed)
def _forget_store_on_change(setting: str, **kwargs: object) -> None:
    if setting in STORE_SETTINGS:
        get_store.cache_clear()


def delete_chunk_objects(store: ChunkStore, owner: object, keys: Iterable[str]) -> list[str]:
    """Delete what can be deleted now; what storage refuses is left for `manage.py cleanup`
    (and returned)."""
    failed = store.delete_many(keys)
    if failed:
        log.warning("%s: %d chunk objects left for `manage.py cleanup`", owner, len(failed))
    return failed


def ensure_bucket_at_startup() -> None:
    """Create the bucket if it is missing; an unreachable store must not stop the service."""
    store = get_store()
    try:
        if store.ensure_bucket():
            log.info("created %s", store.description)
    except (StorageUnavailable, StorageRejected) as exc:
        log.warning("object storage not ready at start-up (%s); /health/ready will say so", exc)
