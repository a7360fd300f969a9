"""Chunk objects as files under one folder: the embedded store."""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from files.storage import CHUNK_PREFIX, StoredObject
from labdropbox.api.errors import ChunkNotFound, StorageUnavailable
from metrics.registry import CHUNK_BYTES_READ, CHUNK_BYTES_WRITTEN

log = logging.getLogger(__name__)


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

    def put(self, key: str, data: bytes, sha256_hex: str | None = None) -> None:
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
        CHUNK_BYTES_WRITTEN.inc(len(data))

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
            data = b"".join(parts)
            CHUNK_BYTES_READ.inc(len(data))
            return data
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
