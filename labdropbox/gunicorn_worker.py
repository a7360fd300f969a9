"""gunicorn's gthread worker, made safe against slow, idle and hostile clients.

gunicorn 27's ThreadWorker hands every new connection to a pool thread, which then reads the
request head with blocking reads and no deadline; request bodies and responses are blocking
socket I/O with no floor on the transfer rate. A client that sends half a head, trickles a body
or never reads its response therefore keeps a thread for as long as it likes, and a handful of
them take every thread of a worker. This worker changes four things:

1. The request head (request line and headers) is read by the main event loop, without
   blocking, within REQUEST_HEAD_TIMEOUT_SECONDS: an idle or half-sent connection costs a socket
   and a buffer, never a thread. Only a complete head goes to a thread, its bytes given back to
   gunicorn's own parser, which parses and validates it exactly as before.
2. Every blocking read and write of a connection (the body, the response) goes through
   RateFloorSocket (labdropbox/rate_floor.py), which cuts a peer that moves fewer than
   MIN_TRANSFER_BYTES in a window of MIN_TRANSFER_WINDOW_SECONDS spent waiting on it. A cut
   upload surfaces in the application as a failed read of wsgi.input; a cut download as a reset.
3. Liveness probes (GET or HEAD /health) run on threads of their own: they never wait behind
   transfers in the pool's queue.
4. Connections are closed "gracefully" (FIN, then drain what the peer still sends) from the
   event loop: gunicorn waits up to 2 s per connection on the loop itself, which stalls accept()
   and every other connection while a peer takes its time.

With the rate floor, a thread is held by a slow client for a bounded time; with many threads
(GUNICORN_THREADS, 256), holding them all costs an attacker real bandwidth. The chunk memory
budget (files/buffers.py) keeps many concurrent transfers from growing memory.

It relies on gunicorn 27.0.1's internals (pinned in requirements/base.txt): ThreadWorker's
enqueue_req (the one way into the pool), accept, murder_pending (called on every turn of the
loop), handle and finish_request; TConn's parser, data_ready and close; the parser's unreader
(unread, take_buffered). tests/test_connections.py proves the behaviour; recheck on an upgrade.
Plain HTTP/1.x only: with TLS or HTTP/2 prior knowledge it falls back to the stock worker.
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import struct
import time
from collections import deque
from concurrent import futures
from functools import partial
from typing import Any

from gunicorn import http, util
from gunicorn.workers import gthread

from labdropbox.env import env_float, env_int
from labdropbox.rate_floor import RateFloorSocket

HEAD_TIMEOUT = env_float("REQUEST_HEAD_TIMEOUT_SECONDS", 10.0, minimum=0.1)
HEAD_MAX = env_int("REQUEST_HEAD_MAX_BYTES", 64 * 1024, minimum=1024)
LINGER_SECONDS = 2.0
LINGER_MAX_BYTES = 64 * 1024  # what gunicorn's own graceful close drains at most
LIVENESS_THREADS = 2
LIVENESS_REQUESTS = (b"GET /health ", b"HEAD /health ", b"GET /health?", b"HEAD /health?")


def head_is_complete(head: bytes | bytearray) -> bool:
    """True once gunicorn's parser can finish or refuse the head without waiting for more."""
    return (
        b"\r\n\r\n" in head
        or len(head) > HEAD_MAX
        # A bare LF: gunicorn refuses the head at once.
        or head.count(b"\n") != head.count(b"\r\n")
    )


class GuardedConnection(gthread.TConn):
    def __init__(self, cfg: Any, sock: RateFloorSocket, client: Any, server: Any, worker: Any):
        super().__init__(cfg, sock, client, server)
        self.worker = worker
        self.head = bytearray()
        self.head_deadline = 0.0
        self.linger_left = LINGER_MAX_BYTES

    def close(self, graceful: bool = False) -> None:
        if self.sock.cut_while_sending:
            # A response cut because its peer does not read: what is still queued would sit in
            # the kernel (and the peer would not know it was cut) for minutes. Reset instead.
            with contextlib.suppress(OSError):
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            util.close(self.sock)
        elif graceful:
            self.worker.linger(self)
        else:
            util.close(self.sock)


class GuardedThreadWorker(gthread.ThreadWorker):
    def init_process(self) -> None:
        http2 = getattr(self.cfg, "http2_cleartext", None) in ("prior-knowledge", "both")
        self.guarded = not (self.cfg.is_ssl or http2)
        self.heads: deque[GuardedConnection] = deque()  # oldest deadline first
        self.lingering: deque[tuple[float, GuardedConnection]] = deque()
        self.liveness_pool = futures.ThreadPoolExecutor(LIVENESS_THREADS, "liveness")
        super().init_process()

    def run(self) -> None:
        if not self.guarded:
            self.log.warning("GuardedThreadWorker: TLS or HTTP/2 prior knowledge: unguarded")
        super().run()

    def accept(self, listener: socket.socket) -> None:
        """gunicorn's accept(), with the socket and the connection guarded."""
        if not self.guarded:
            super().accept(listener)
            return
        try:
            client_sock, client_addr = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        sock = RateFloorSocket.adopt(client_sock)
        self.enqueue_req(
            GuardedConnection(self.cfg, sock, client_addr, listener.getsockname(), self)
        )

    # --- 1. the head is read here, not in a thread ---------------------------------------------

    def enqueue_req(self, conn: Any) -> None:
        """Every way into the pool (a new connection, a kept-alive one, bytes read ahead)."""
        if not isinstance(conn, GuardedConnection):
            super().enqueue_req(conn)
            return
        if conn.parser is not None:
            conn.head += conn.parser.unreader.take_buffered()  # pipelined bytes, if any
        if head_is_complete(conn.head):
            self.dispatch(conn)
            return
        conn.sock.setblocking(False)
        conn.head_deadline = time.monotonic() + HEAD_TIMEOUT
        self.heads.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.read_head, conn))
        self.read_head(conn, conn.sock)  # often already there: no extra turn of the loop

    def read_head(self, conn: GuardedConnection, _sock: socket.socket) -> None:
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.drop_head(conn)
            return
        conn.head += data
        if head_is_complete(conn.head):
            self.poller.unregister(conn.sock)
            self.heads.remove(conn)
            self.dispatch(conn)

    def dispatch(self, conn: GuardedConnection) -> None:
        if conn.parser is None:  # what TConn.init() does for plain HTTP/1.x
            conn.parser = http.get_parser(self.cfg, conn.sock, conn.client)
        liveness = conn.head.startswith(LIVENESS_REQUESTS)
        conn.parser.unreader.unread(bytes(conn.head))
        conn.head = bytearray()
        conn.data_ready = True  # handle() must not wait for data again
        conn.sock.setblocking(True)
        conn.sock.start_request()
        if liveness:
            # 3. A probe never waits behind transfers in the pool's queue.
            done = self.liveness_pool.submit(self.handle, conn)
            done.add_done_callback(
                lambda future: self.method_queue.defer(self.finish_request, conn, future)
            )
        else:
            super().enqueue_req(conn)

    def drop_head(self, conn: GuardedConnection) -> None:
        self.poller.unregister(conn.sock)
        self.heads.remove(conn)
        self.nr_conns -= 1
        conn.close()

    # --- deadlines: gunicorn's run() calls murder_pending() on every turn of its loop ----------

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        while self.heads and self.heads[0].head_deadline <= now:
            self.drop_head(self.heads[0])
        while self.lingering and self.lingering[0][0] <= now:
            self.end_linger(self.lingering[0][1])

    # --- 4. a graceful close that does not block the loop --------------------------------------

    def linger(self, conn: GuardedConnection) -> None:
        try:
            conn.sock.setblocking(False)
            conn.sock.shutdown(socket.SHUT_WR)
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.drain, conn))
        except (OSError, ValueError, KeyError):
            util.close(conn.sock)
            return
        self.lingering.append((time.monotonic() + LINGER_SECONDS, conn))

    def drain(self, conn: GuardedConnection, _sock: socket.socket) -> None:
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        conn.linger_left -= len(data)
        if not data or conn.linger_left <= 0:
            self.end_linger(conn)

    def end_linger(self, conn: GuardedConnection) -> None:
        for position, (_deadline, lingering) in enumerate(self.lingering):
            if lingering is conn:
                del self.lingering[position]
                break
        with contextlib.suppress(OSError, KeyError, ValueError):
            self.poller.unregister(conn.sock)
        util.close(conn.sock)
