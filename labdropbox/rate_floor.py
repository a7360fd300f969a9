"""A TCP socket with a floor on its transfer rate: gunicorn's worker (labdropbox/gunicorn_worker.py)
wraps every client connection in one, so that a peer which trickles its body or never reads its
response holds a thread for a bounded time."""

from __future__ import annotations

import errno
import fcntl
import socket
import struct
import termios
import time
from collections.abc import Callable
from typing import Any

from labdropbox.env import env_float, env_int

MIN_BYTES = env_int("MIN_TRANSFER_BYTES", 64 * 1024, minimum=1)
WINDOW = env_float("MIN_TRANSFER_WINDOW_SECONDS", 10.0, minimum=0.1)


class SlowClient(ConnectionResetError):
    """The peer moved too few bytes in a window: ECONNRESET, which gunicorn logs at debug level
    only, and which the application sees as a failed read of the request body."""

    def __init__(self, direction: str) -> None:
        super().__init__(
            errno.ECONNRESET, f"client {direction} under {MIN_BYTES} bytes per {WINDOW:g} s"
        )


class RateFloorSocket(socket.socket):
    """A TCP socket whose blocking reads and writes cut a peer that moves fewer than MIN_BYTES
    per WINDOW seconds of waiting on it (time the application spends elsewhere does not count).

    In non-blocking mode (the event loop) every call goes straight to the socket. gettimeout()
    reports what was asked for, so the timeouts that gunicorn saves and restores, and the
    application's own (an upload's idle timeout), still apply: whichever ends first.

    A body that stops arriving — cut for its rate, silent past the caller's timeout, or reset
    by the peer — reads as its end (b""), from then on, and `ended_early` says why. Raised
    instead, the error would lose what gunicorn's body reader had received but not yet handed
    on (up to a read's worth); as an end, every byte that arrived reaches the application,
    which sees a body shorter than announced.
    """

    _wanted: float | None
    _spent: float
    _moved: int
    _queued: int
    _cut: set[str]
    ended_early: str | None

    @classmethod
    def adopt(cls, sock: socket.socket) -> RateFloorSocket:
        guarded = cls(sock.family, sock.type, sock.proto, fileno=sock.detach())
        guarded.start_request()
        return guarded

    def start_request(self) -> None:
        """A fresh window for each request handed to a thread."""
        self._wanted = super().gettimeout()
        self._spent, self._moved, self._queued = 0.0, 0, self._unacknowledged()
        self._cut = set()
        self.ended_early = None

    @property
    def cut_while_sending(self) -> bool:
        return "reading" in self._cut

    def _unacknowledged(self) -> int:
        """Bytes sent but still in the kernel's queue (Linux). send() counts what the kernel
        took, and it takes megabytes before it blocks: without this, a peer that reads nothing
        would pass its first window on that burst alone."""
        try:
            queued = fcntl.ioctl(self.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
            return int(struct.unpack("i", queued)[0])
        except OSError:
            return 0

    def settimeout(self, value: float | None) -> None:
        super().settimeout(value)
        self._wanted = super().gettimeout()

    def setblocking(self, flag: bool) -> None:
        super().setblocking(flag)
        self._wanted = super().gettimeout()

    def gettimeout(self) -> float | None:
        return self._wanted

    def _floored(self, direction: str, call: Callable[[], Any], moved: Callable[[Any], int]) -> Any:
        wanted = self._wanted
        if wanted == 0.0:  # non-blocking: the event loop's business
            return call()
        if direction in self._cut:
            raise SlowClient(direction)
        waited = 0.0  # on this call, against the caller's own timeout
        while True:
            left = WINDOW - self._spent
            if left <= 0:
                delivered = self._moved - max(0, self._unacknowledged() - self._queued)
                # A fresh window either way: the other direction can still answer (a 400).
                self._spent, self._moved, self._queued = 0.0, 0, self._unacknowledged()
                if delivered < MIN_BYTES:
                    self._cut.add(direction)
                    raise SlowClient(direction)
                left = WINDOW
            super().settimeout(max(left if wanted is None else min(left, wanted - waited), 1e-3))
            started = time.monotonic()
            try:
                result = call()
            except TimeoutError:
                elapsed = time.monotonic() - started
                self._spent += elapsed
                waited += elapsed
                if wanted is not None and waited >= wanted:
                    super().settimeout(wanted)
                    raise  # the caller's own timeout, as it expects it
                continue
            self._spent += time.monotonic() - started
            self._moved += moved(result)
            return result

    def recv(self, size: int, flags: int = 0) -> bytes:
        received = self._received(lambda: super(RateFloorSocket, self).recv(size, flags), len)
        return b"" if received is None else received

    def recv_into(self, buffer: Any, size: int = 0, flags: int = 0) -> int:
        received = self._received(
            lambda: super(RateFloorSocket, self).recv_into(buffer, size, flags), int
        )
        return 0 if received is None else received

    def _received(self, call: Callable[[], Any], moved: Callable[[Any], int]) -> Any:
        """What a blocking read got, or None once the peer's body stopped arriving (see the
        class): then every later read is an end too."""
        if self._wanted == 0.0:  # non-blocking: the event loop's business
            return call()
        if self.ended_early is not None:
            return None
        try:
            return self._floored("sending", call, moved)
        except SlowClient:
            self.ended_early = f"it sent under {MIN_BYTES} bytes per {WINDOW:g} s"
        except TimeoutError:
            self.ended_early = f"it sent nothing for {self._wanted:g} s"
        except (ConnectionResetError, ConnectionAbortedError):
            self.ended_early = "it reset the connection"
        return None

    def send(self, data: Any, flags: int = 0) -> int:
        return self._floored("reading", lambda: super(RateFloorSocket, self).send(data, flags), int)

    def sendall(self, data: Any, flags: int = 0) -> None:
        if self._wanted == 0.0:
            super().sendall(data, flags)
            return
        view = memoryview(data).cast("B")
        while view:
            view = view[self.send(view, flags) :]
