"""A burst of concurrent requests leaves at most DB_KEPT_CONNECTIONS database connections open
in the process once it is over: each thread beyond them closes its connection as its request
ends (a gunicorn worker's 256 threads would otherwise each keep one, past MySQL's limit)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections
from django.test import Client

from labdropbox import db_connections

THREADS = 8


@pytest.mark.django_db(transaction=True)
def test_threads_beyond_the_kept_ones_close_their_connections(settings, monkeypatch):
    settings.DB_KEPT_CONNECTIONS = 3
    monkeypatch.setattr(db_connections, "_keepers", set())
    closed_by: set[int] = set()
    wrapper = type(connections["default"])  # the backend's class, whichever it is
    real_close = wrapper.close

    def recorded_close(self) -> None:  # noqa: ANN001
        closed_by.add(threading.get_ident())
        real_close(self)

    monkeypatch.setattr(wrapper, "close", recorded_close)
    all_done = threading.Barrier(THREADS)

    def request() -> int:
        assert Client(HTTP_HOST="localhost").get("/me").status_code == 200  # queries
        all_done.wait(timeout=30)  # every thread alive at once: none takes another's place
        return threading.get_ident()

    with ThreadPoolExecutor(THREADS) as pool:
        threads = set(pool.map(lambda _: request(), range(THREADS)))

    assert len(threads) == THREADS
    assert len(closed_by & threads) == THREADS - 3
    assert db_connections._keepers == threads - closed_by
