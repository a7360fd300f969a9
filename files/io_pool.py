"""The process's chunk I/O thread pool, shared by every read, write and verify.

Created on first use, which under gunicorn is after the fork: threads do not survive a fork.
Pool threads start with an empty OpenTelemetry context, so every task is given its parent span
explicitly by its caller.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from django.conf import settings

from files.per_process import PerProcess

Item = TypeVar("Item")
Result = TypeVar("Result")

_executor = PerProcess(
    lambda: ThreadPoolExecutor(settings.CHUNK_IO_THREADS, thread_name_prefix="chunk-io")
)


def io_executor() -> ThreadPoolExecutor:
    return _executor.get()


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
