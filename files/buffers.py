"""One memory budget per worker process for chunk buffers, shared by all its transfers.

Every chunk held in memory — read from a client before it is stored, or fetched from storage
before it is sent — is reserved here first and released when it is gone. A transfer's first
buffer is *essential* (without it, it cannot move): it waits until the budget has room. The
buffers that let a transfer work ahead (upload several chunks at once, fetch ahead of its client)
are *extra*: granted only while a quarter of the budget stays free for other transfers' first
buffers, and never waited for. So more concurrent transfers means each works ahead less, and
then that each waits its turn: never that memory grows without bound (CHUNK_MEMORY_MB).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from files.errors import ServerBusy

# The share of the budget that extra buffers leave free for other transfers' first ones.
RESERVE_FRACTION = 0.25


class BufferBudget:
    def __init__(self, limit: int, wait_seconds: float) -> None:
        self.limit = limit
        self.wait_seconds = wait_seconds
        self.in_use = 0
        self.peak = 0
        self._headroom = int(limit * RESERVE_FRACTION)
        self._room = threading.Condition()

    def acquire(self, size: int) -> None:
        """Reserve an essential buffer, waiting for room; ServerBusy after `wait_seconds`."""
        deadline = time.monotonic() + self.wait_seconds
        with self._room:
            while self.in_use + size > self.limit:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._room.wait(remaining):
                    if self.in_use + size <= self.limit:
                        break
                    raise ServerBusy(
                        f"no room for {size} bytes in the chunk memory budget within "
                        f"{self.wait_seconds:g} s ({self.in_use} of {self.limit} in use)"
                    )
            self._take(size)

    def try_acquire(self, size: int) -> bool:
        """Reserve an extra buffer if that leaves the headroom free; never waits."""
        with self._room:
            if self.in_use + size > self.limit - self._headroom:
                return False
            self._take(size)
            return True

    def release(self, size: int) -> None:
        with self._room:
            self.in_use -= size
            self._room.notify_all()

    @contextmanager
    def holding(self, size: int) -> Iterator[None]:
        """An essential buffer for the length of the block."""
        self.acquire(size)
        try:
            yield
        finally:
            self.release(size)

    def _take(self, size: int) -> None:
        self.in_use += size
        self.peak = max(self.peak, self.in_use)


_budget: BufferBudget | None = None
_budget_lock = threading.Lock()


def chunk_budget() -> BufferBudget:
    """This process's budget, created on first use (after gunicorn forks)."""
    global _budget
    with _budget_lock:
        if _budget is None:
            _budget = BufferBudget(settings.CHUNK_MEMORY_BYTES, settings.CHUNK_MEMORY_WAIT_SECONDS)
        return _budget


def _forget_budget() -> None:
    global _budget, _budget_lock
    _budget, _budget_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_budget)


@receiver(setting_changed)
def _forget_budget_on_change(setting: str, **kwargs: object) -> None:
    if setting in {"CHUNK_MEMORY_BYTES", "CHUNK_MEMORY_WAIT_SECONDS"}:
        _forget_budget()
