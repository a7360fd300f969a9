"""One object per worker process, made on first use.

Threads, locks and pooled connections do not survive a fork: what the chunk pipeline shares
within a process (its memory budget, its I/O pool, its small-file cache) is made after gunicorn
forks, made again in a forked child, and made again when a setting it was made from changes
(tests change settings).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Collection
from typing import Generic, TypeVar

from django.core.signals import setting_changed

T = TypeVar("T")


class PerProcess(Generic[T]):
    def __init__(self, make: Callable[[], T], settings: Collection[str] = ()) -> None:
        self._make = make
        self._settings = frozenset(settings)
        self._value: T | None = None
        self._lock = threading.Lock()
        os.register_at_fork(after_in_child=self.forget)
        if self._settings:
            setting_changed.connect(self._forget_on_change, weak=False)

    def get(self) -> T:
        with self._lock:
            if self._value is None:
                self._value = self._make()
            return self._value

    def forget(self) -> None:
        """Made anew on the next get() (a lock held by a thread the fork left behind too)."""
        self._value, self._lock = None, threading.Lock()

    def _forget_on_change(self, setting: str, **kwargs: object) -> None:
        if setting in self._settings:
            self.forget()
