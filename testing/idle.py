"""Idle connections held against a server, as a careless or hostile client holds them: opened from
several loopback addresses, sending nothing, and opened again as soon as the server closes one.
And probes: fresh connections that each ask for one small thing, timed."""

from __future__ import annotations

import asyncio
import http.client
import socket
import threading
import time
from collections.abc import Iterable


class IdleConnections:
    """`count` connections to 127.0.0.1:`port`, spread over `sources` (loopback addresses to
    connect from), kept open — reopened when the server closes them — until stop()."""

    def __init__(self, port: int, count: int, sources: Iterable[str] = ("127.0.0.1",)) -> None:
        self.port = port
        self.count = count
        self.sources = tuple(sources)
        self.opened = 0  # connections made, reopenings included
        self.held = 0  # open right now
        self._loop = asyncio.new_event_loop()
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._hold_all())

    async def _hold_all(self) -> None:
        self._stopping = asyncio.Event()
        self._ready.set()
        holders = [self._hold(self.sources[n % len(self.sources)]) for n in range(self.count)]
        await asyncio.gather(*holders)

    async def _hold(self, source: str) -> None:
        assert self._stopping is not None
        while not self._stopping.is_set():
            try:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", self.port, local_addr=(source, 0)
                )
            except OSError:
                await asyncio.sleep(0.05)  # the backlog is full: try again shortly
                continue
            self.opened += 1
            self.held += 1
            closed = asyncio.ensure_future(reader.read(1))  # b"" once the server closes it
            stopping = asyncio.ensure_future(self._stopping.wait())
            await asyncio.wait({closed, stopping}, return_when=asyncio.FIRST_COMPLETED)
            closed.cancel()
            stopping.cancel()
            self.held -= 1
            writer.transport.abort()

    def stop(self) -> None:
        if self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(timeout=30)


def probe(port: int, path: str, source: str = "127.0.0.1", timeout: float = 10.0) -> float:
    """Seconds from connecting to the end of a GET of `path` on a fresh connection (AssertionError
    unless it is a 200)."""
    started = time.monotonic()
    connection = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=timeout, source_address=(source, 0)
    )
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        assert response.status == 200, (path, response.status)
    finally:
        connection.close()
    return time.monotonic() - started


def loopback_sources(count: int) -> list[str]:
    """`count` loopback addresses this machine can connect from (127.0.0.1, 127.0.0.2, …)."""
    sources = []
    for n in range(1, count + 1):
        address = f"127.0.0.{n}"
        with socket.socket() as sock:
            sock.bind((address, 0))
        sources.append(address)
    return sources
