"""Waiting on a condition, not for a time: a test polls what it waits for, up to a bound."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(condition: Callable[[], T], timeout: float = 15.0) -> T:
    """Return what `condition()` answered once it is true (`rows = eventually(lambda: ...)`);
    fail the test if it is still false after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"the condition never held in {timeout} s"
        time.sleep(0.05)
    return value
