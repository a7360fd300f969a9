"""The contents of small files a worker has read, kept in its memory for the next reads.

A read of a small file is mostly the wait for one GET from the store (on Ceph's RGW about 1.5
ms for 1 KiB), and a file that small is often read again and again. A file of one chunk of at
most SMALL_FILE_BYTES is kept after it was fetched and verified, under its chunk's key and
SHA-256: a chunk object never changes under the same hash, so an entry is never stale, and
whether the file may still be read is the metadata's answer, looked up first as always. Each
entry is verified again before it is sent. The least recently read go first once the worker
holds SMALL_FILE_CACHE_MB of them (0 turns the cache off).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

from django.conf import settings

from files.per_process import PerProcess

# Larger files are read from the store every time.
SMALL_FILE_BYTES = 64 * 1024


class SmallFileCache:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self._entries: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str, sha256: str) -> bytes | None:
        """The chunk's bytes if kept, and still matching its SHA-256."""
        with self._lock:
            data = self._entries.get((key, sha256))
            if data is not None:
                self._entries.move_to_end((key, sha256))
        if data is None or hashlib.sha256(data).hexdigest() != sha256:
            return None
        return data

    def put(self, key: str, sha256: str, data: bytes) -> None:
        """Keep a chunk's bytes, fetched and verified against `sha256`."""
        with self._lock:
            if self._entries.setdefault((key, sha256), data) is not data:
                return  # another read kept it first
            self.size += len(data)
            while self.size > self.limit:
                _key, dropped = self._entries.popitem(last=False)
                self.size -= len(dropped)


_cache = PerProcess(
    lambda: SmallFileCache(settings.SMALL_FILE_CACHE_BYTES), settings=("SMALL_FILE_CACHE_BYTES",)
)


def small_file_cache() -> SmallFileCache | None:
    """This process's cache, created on first use (None when SMALL_FILE_CACHE_MB is 0)."""
    if not settings.SMALL_FILE_CACHE_BYTES:
        return None
    return _cache.get()
