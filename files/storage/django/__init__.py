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

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.core.files.storage import Storage
from django.utils.module_loading import import_string

from files import spans
from files.storage import CHUNK_PREFIX, StoredObject
from files.storage.django.backends import (
    FOLDER_MAKERS,
    FOLDER_REMOVERS,
    OVERWRITE_OPTIONS,
    SILENT_DELETES,
    adapted,
    create_container,
    describe,
    is_kind,
)
from files.storage.errors import storage_error
from labdropbox.api.errors import ChunkNotFound, StorageRejected, StorageUnavailable
from metrics.registry import (
    CHUNK_BYTES_READ,
    CHUNK_BYTES_WRITTEN,
    STORAGE_CALL_DURATION,
    STORAGE_CALL_ERRORS,
    labelled,
)

log = logging.getLogger(__name__)


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

    def put(self, key: str, data: bytes, sha256_hex: str | None = None) -> None:
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
