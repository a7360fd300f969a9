"""One memory budget per worker process for chunk buffers, shared by all its transfers.

Every chunk held in memory — read from a client before it is stored, or fetched from storage
before it is sent — is reserved here first and released when it is gone. A transfer's first
buffer is *essential* (without it, it cannot move): it waits until the budget has room. The
buffers that let a transfer work ahead (upload several chunks at once, fetch ahead of its client)
are *extra*: never waited for, and granted only within the transfer's fair share of three
quarters of the budget — the last quarter stays free for other transfers' first buffers. So
more concurrent transfers means each works ahead less, then that each waits its turn: never
that memory grows without bound (CHUNK_MEMORY_MB), and never that a few stalled transfers
holding what they fetched ahead keep a small read from starting.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings

from files.per_process import PerProcess
from labdropbox.api.errors import ServerBusy

# The share of the budget that extra buffers leave free for other transfers' first ones.
RESERVE_FRACTION = 0.25
# A first buffer this small never waits, even on a full budget: a 1 KiB file or the edge of a
# byte range must not queue behind big transfers. A transfer asks for a first buffer only while
# it holds nothing, so this adds at most one such buffer per request thread to the budget.
SMALL_BUFFER = 64 * 1024


class BufferBudget:
    """The budget itself. Each reservation names its owner (the transfer), so that the budget
    knows how many transfers share it and how much each one holds."""

    def __init__(self, limit: int, wait_seconds: float) -> None:
        self.limit = limit
        self.wait_seconds = wait_seconds
        self.in_use = 0
        self.peak = 0
        self._held: dict[object, int] = {}  # owner -> bytes it holds
        self._headroom = int(limit * RESERVE_FRACTION)
        self._room = threading.Condition()

    @property
    def transfers(self) -> int:
        """How many transfers hold buffers now."""
        return len(self._held)

    def acquire(self, size: int, owner: object) -> None:
        """Reserve an essential buffer, waiting for room (unless it is small); ServerBusy after
        `wait_seconds`."""
        deadline = time.monotonic() + self.wait_seconds
        with self._room:
            while self.in_use + size > self.limit and size > SMALL_BUFFER:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._room.wait(remaining):
                    if self.in_use + size <= self.limit:
                        break  # room came with the last wake-up
                    raise ServerBusy(
                        f"no room for {size} bytes in the chunk memory budget within "
                        f"{self.wait_seconds:g} s ({self.in_use} of {self.limit} in use)"
                    )
            self._take(size, owner)

    def try_acquire(self, size: int, owner: object) -> bool:
        """Reserve an extra buffer if the owner stays within its fair share of what is not
        headroom, and the headroom stays free; never waits."""
        with self._room:
            shared = self.limit - self._headroom
            owners = len(self._held) + (owner not in self._held)
            if self._held.get(owner, 0) + size > shared // owners:
                return False
            if self.in_use + size > shared:
                return False
            self._take(size, owner)
            return True

    def release(self, size: int, owner: object) -> None:
        with self._room:
            self.in_use -= size
            left = self._held.pop(owner, 0) - size
            if left:
                self._held[owner] = left
            self._room.notify_all()

    @contextmanager
    def holding(self, size: int, owner: object) -> Iterator[None]:
        """An essential buffer for the length of the block."""
        self.acquire(size, owner)
        try:
            yield
        finally:
            self.release(size, owner)

    def _take(self, size: int, owner: object) -> None:
        self.in_use += size
        self.peak = max(self.peak, self.in_use)
        self._held[owner] = self._held.get(owner, 0) + size


_budget = PerProcess(
    lambda: BufferBudget(settings.CHUNK_MEMORY_BYTES, settings.CHUNK_MEMORY_WAIT_SECONDS),
    settings=("CHUNK_MEMORY_BYTES", "CHUNK_MEMORY_WAIT_SECONDS"),
)


def chunk_budget() -> BufferBudget:
    """This process's budget, created on first use (after gunicorn forks)."""
    return _budget.get()
