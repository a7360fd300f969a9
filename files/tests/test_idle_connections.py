"""Idle connections cost sockets, never the service: past GUNICORN_WORKER_CONNECTIONS a new
connection takes the place of the longest-idle one, so health probes and small reads from the
same and from other addresses are answered while a client holds far more idle connections than
a worker may keep, reopening each one the worker closes.

The head deadline is long here (60 s): a worker that, at its limit, stopped accepting (gunicorn's
own behaviour) would leave every probe in the backlog until an idle connection timed out — past
the probes' 10 s — so a starved service fails these tests however fast the machine is.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from testing.conditions import eventually
from testing.idle import IdleConnections, loopback_sources, probe
from testing.mysql import own_database
from testing.servers import GunicornServer
from testing.uploads import upload

LIMIT = 200


def start(folder: Path, workers: int) -> GunicornServer:
    settings = {
        "GUNICORN_WORKER_CONNECTIONS": str(LIMIT),
        "REQUEST_HEAD_TIMEOUT_SECONDS": "60",
        "MINIO_ENDPOINT": "",
    }
    return GunicornServer(folder, **settings, **own_database(f"idle_{workers}", workers))


@pytest.fixture
def one_worker(tmp_path: Path):
    server = start(tmp_path / "one", workers=1)
    yield server
    server.stop()


def probes_answered(server: GunicornServer, sources: list[str], file_id: str) -> list[float]:
    """/health and a 1 KiB read, twice from each address, each on a fresh connection."""
    paths = ["/health", f"/read/{file_id}"] * 2
    return [probe(server.port, path, source) for source in sources for path in paths]


def test_a_worker_at_its_limit_sheds_idle_connections_for_new_ones(one_worker):
    sources = loopback_sources(3)
    file_id = upload(one_worker, b"x" * 1024)["file_id"]
    idle = IdleConnections(one_worker.port, 3 * LIMIT, sources[:2])
    try:
        eventually(lambda: idle.opened >= 3 * LIMIT)  # all made once: the worker shed some
        answered = probes_answered(one_worker, sources, file_id)
        # Some were shed and reopened: the worker accepts past its limit by closing the
        # longest idle (the kernel's backlog took the first ones before the worker saw them).
        eventually(lambda: idle.opened > 3 * LIMIT)
    finally:
        idle.stop()

    assert len(answered) == 12
    assert one_worker.request("GET", "/health")[0] == 200


@pytest.mark.stack
def test_several_workers_stay_reachable_under_thousands_of_idle_connections(tmp_path):
    server = start(tmp_path / "three", workers=3)
    sources = loopback_sources(4)
    try:
        file_id = upload(server, b"y" * 1024)["file_id"]
        idle = IdleConnections(server.port, 3 * 3 * LIMIT, sources[:3])
        try:
            eventually(lambda: idle.opened >= 3 * 3 * LIMIT)
            answered = probes_answered(server, sources, file_id)
        finally:
            idle.stop()
    finally:
        server.stop()

    assert len(answered) == 16
