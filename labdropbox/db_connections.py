"""How many database connections a process keeps between requests.

Django keeps a connection per thread (for CONN_MAX_AGE), and a gunicorn worker has
GUNICORN_THREADS threads: a burst of concurrent requests would leave that many connections open
for as long as the threads then idle — past MySQL's `max_connections` (151 by default) with a few
workers, so that the next request anywhere is refused. After each request a thread keeps its
connection only while fewer than DB_KEPT_CONNECTIONS threads of the process keep one; otherwise
it closes it, and its next request opens a new one. A burst still has a connection per request
in flight: that is what it needs, and it gives them back when it ends.
"""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from django.db import connections

_lock = threading.Lock()
_keepers: set[int] = set()


def keep_or_close(**kwargs: Any) -> None:
    """request_finished: this thread's connections stay open, or are closed (see above)."""
    me = threading.get_ident()
    with _lock:
        if me in _keepers:
            return
        if len(_keepers) >= settings.DB_KEPT_CONNECTIONS:
            _keepers.intersection_update(thread.ident for thread in threading.enumerate())
        if len(_keepers) < settings.DB_KEPT_CONNECTIONS:
            _keepers.add(me)
            return
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:  # never under a transaction someone holds
            connection.close()
