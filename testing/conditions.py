"""Waiting on a condition, not for a time: a test polls what it waits for, up to a bound."""

from __future__ import annotations

import time
from collections.abc import Callable


def eventually(condition: Callable[[], object], timeout: float = 15.0) -> None:
    """Return once `condition()` is true; fail the test if it is still false after `timeout`
    seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"the condition never held in {timeout} s"
        time.sleep(0.05)
