"""A TCP proxy on loopback that breaks the connection to a dependency on command.

It forwards to a target (an S3 server, MariaDB, Redis…) and can, at any moment:

- add latency to every request (the first client bytes after each server reply wait first),
- stall: accept and keep connections open but forward nothing, in either direction,
- reset connections (RST), new and existing,
- refuse connections (stop listening, so connect() is refused),
- cut every response after N bytes,
- break one client's request after N bytes: reset the connection, or swallow the rest of what
  the client sends while still passing the server's answer back (a body that stops mid-way).

Tests drive it from Python (it runs its own event loop on a background thread); the benchmark
also runs it as a program: `python -m testing.faultproxy --target 127.0.0.1:9000 --latency-ms 100`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Coroutine
from typing import Any

READ_SIZE = 64 * 1024


class FaultProxy:
    def __init__(self, target_host: str, target_port: int, listen_port: int = 0) -> None:
        self.target = (target_host, target_port)
        self.latency = 0.0
        self.stalled = False
        self.resetting = False
        self.cut_after: int | None = None
        self.request_break: tuple[int, str] | None = None
        self.requests_broken = 0
        self._connections: set[tuple[asyncio.StreamWriter, ...]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server: asyncio.Server | None = None
        self.port = listen_port
        self._call(self._listen())

    # --- commands (from any thread) ------------------------------------------------------------

    def add_latency(self, seconds: float) -> None:
        self.latency = seconds

    def stall(self) -> None:
        self.stalled = True

    def reset(self) -> None:
        """Reset every connection, and every new one, until heal()."""
        self.resetting = True
        self.drop_connections()

    def refuse(self) -> None:
        """The dependency is gone: open connections are reset, new ones refused, until heal()."""
        self._call(self._stop_listening())
        self.drop_connections()

    def drop_connections(self) -> None:
        """Reset the connections open now (clients holding a pool must reconnect)."""
        self._call(self._reset_all())

    def cut_responses_after(self, size: int) -> None:
        self.cut_after = size

    def break_a_request_after(self, size: int, how: str = "reset") -> None:
        """The next connection whose client sends more than `size` bytes gets only those
        through: then it is reset (`reset`), or the rest of its bytes are dropped while the
        server's answer still reaches the client (`stall`). Once; `requests_broken` counts."""
        assert how in ("reset", "stall")
        self.request_break = (size, how)

    def heal(self) -> None:
        # Bytes swallowed by a stall or a cut leave a connection's protocol state garbled.
        garbled = self.stalled or self.cut_after is not None
        self.latency, self.stalled, self.resetting, self.cut_after = 0.0, False, False, None
        if garbled:
            self.drop_connections()
        if self._server is None:
            self._call(self._listen())

    def close(self) -> None:
        self._call(self._stop_listening())
        self._call(self._reset_all())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    # --- the proxy -----------------------------------------------------------------------------

    def _call(self, coroutine: Coroutine[Any, Any, object]) -> object:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def _reset_all(self) -> None:
        for writers in list(self._connections):
            for writer in writers:
                _reset(writer)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.resetting:
            _reset(writer)
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _reset(writer)
            return
        pair = (writer, upstream_writer)
        self._connections.add(pair)
        turn = {"awaiting_request": True}
        try:
            await asyncio.gather(
                self._pipe(reader, upstream_writer, turn, to_server=True),
                self._pipe(upstream_reader, writer, turn, to_server=False),
            )
        finally:
            self._connections.discard(pair)
            for each in pair:
                each.close()

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        turn: dict,
        to_server: bool,
    ) -> None:
        sent = 0
        swallowing = False
        try:
            while data := await reader.read(READ_SIZE):
                if self.resetting:
                    raise ConnectionResetError
                if self.stalled or swallowing:
                    continue  # swallowed: the other side waits forever
                if to_server and self.request_break and sent + len(data) > self.request_break[0]:
                    size, how = self.request_break
                    self.request_break, self.requests_broken = None, self.requests_broken + 1
                    writer.write(data[: size - sent])
                    await writer.drain()
                    if how == "reset":
                        raise ConnectionResetError
                    swallowing = True
                    continue
                if to_server and turn["awaiting_request"] and self.latency:
                    await asyncio.sleep(self.latency)
                turn["awaiting_request"] = not to_server
                if not to_server and self.cut_after is not None:
                    data = data[: max(self.cut_after - sent, 0)]
                    if not data:
                        raise ConnectionResetError
                sent += len(data)
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError):
            _reset(writer)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST rather than a FIN."""
    sock = writer.get_extra_info("socket")
    with contextlib.suppress(OSError):
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="host:port to forward to")
    parser.add_argument("--port", type=int, default=0, help="loopback port to listen on")
    parser.add_argument("--latency-ms", type=float, default=0, help="added to every request")
    args = parser.parse_args()
    host, _, port = args.target.rpartition(":")
    proxy = FaultProxy(host, int(port), args.port)
    proxy.add_latency(args.latency_ms / 1000)
    print(f"forwarding 127.0.0.1:{proxy.port} -> {args.target}", flush=True)  # noqa: T201
    threading.Event().wait()


if __name__ == "__main__":
    main()
