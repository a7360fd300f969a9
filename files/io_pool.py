"""The process's chunk I/O thread pool, shared by every read, write and verify.

Created on first use, which under gunicorn is after the fork: threads do not survive a fork.
Pool threads start with an empty OpenTelemetry context, so every task is given its parent span
explicitly by its caller.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from django.conf import settings

Item = TypeVar("Item")
Result = TypeVar("Result")

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def io_executor() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(settings.CHUNK_IO_THREADS, thread_name_prefix="chunk-io")
        return _executor


def _forget_executor() -> None:
    global _executor, _executor_lock
    _executor, _executor_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_executor)


def map_bounded(
    function: Callable[[Item], Result], items: Iterable[Item], window: int
) -> Iterator[Result]:
    """function(item) on the pool with at most `window` running; results in order."""
    pending: deque[Future[Result]] = deque()
    for item in items:
        pending.append(io_executor().submit(function, item))
        if len(pending) >= window:
            yield pending.popleft().result()
    for future in pending:
        yield future.result()
