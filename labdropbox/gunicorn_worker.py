"""gunicorn's gthread worker, made safe against slow, idle and hostile clients.

gunicorn 27's ThreadWorker hands every new connection to a pool thread, which then reads the
request head with blocking reads and no deadline; request bodies and responses are blocking
socket I/O with no floor on the transfer rate. A client that sends half a head, trickles a body
or never reads its response therefore keeps a thread for as long as it likes, and a handful of
them take every thread of a worker. This worker changes five things:

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
5. At GUNICORN_WORKER_CONNECTIONS, a new connection takes the place of the one that has waited
   longest without a request (kept-alive first, then one still sending its head) instead of
   waiting in the backlog behind them: idle connections cost sockets, never the service.

Requests gunicorn cannot parse are answered in JSON (labdropbox/gunicorn_errors.py), and a
head over REQUEST_HEAD_MAX_BYTES is refused (431) by the event loop, before any parsing.

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
from concurrent import futures
from functools import partial
from typing import Any

from gunicorn import http, util
from gunicorn.workers import gthread

from labdropbox.descriptors import descriptors_for
from labdropbox.env import env_float, env_int
from labdropbox.gunicorn_errors import json_error_page, write_json_error
from labdropbox.rate_floor import RateFloorSocket

HEAD_TIMEOUT = env_float("REQUEST_HEAD_TIMEOUT_SECONDS", 10.0, minimum=0.1)
HEAD_MAX = env_int("REQUEST_HEAD_MAX_BYTES", 64 * 1024, minimum=1024)
LINGER_SECONDS = 2.0
LINGER_MAX_BYTES = 64 * 1024  # what gunicorn's own graceful close drains at most
LIVENESS_THREADS = 2
# Connections accepted at most per turn of the event loop.
ACCEPT_BATCH = 64
LIVENESS_REQUESTS = (b"GET /health ", b"HEAD /health ", b"GET /health?", b"HEAD /health?")


def head_is_complete(head: bytes | bytearray) -> bool:
    """True once gunicorn's parser can finish or refuse the head without waiting for more."""
    return (
        b"\r\n\r\n" in head[: HEAD_MAX + 4]
        # A bare LF: gunicorn refuses the head at once.
        or head.count(b"\n") != head.count(b"\r\n")
    )


HEAD_TOO_LARGE = json_error_page(
    431,
    "Request Header Fields Too Large",
    f"the request line and headers are over {HEAD_MAX} bytes",
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
        # Dicts as ordered sets: oldest first (every head has the same deadline), O(1) removal.
        self.heads: dict[GuardedConnection, None] = {}
        self.lingering: dict[GuardedConnection, float] = {}
        self.liveness_pool = futures.ThreadPoolExecutor(LIVENESS_THREADS, "liveness")
        util.write_error = write_json_error  # gunicorn's own error pages, as JSON
        if self.guarded:
            # The event loop bounds the whole head at REQUEST_HEAD_MAX_BYTES: its lines may be as
            # long (gunicorn's 8 KiB is less than a long path takes, percent-encoded). 0: no
            # limit of gunicorn's own on the request line.
            self.cfg.set("limit_request_line", 0)
            self.cfg.set("limit_request_field_size", HEAD_MAX)
        self.worker_connections = descriptors_for(self.cfg.worker_connections, self.log)
        super().init_process()

    def run(self) -> None:
        if not self.guarded:
            self.log.warning("GuardedThreadWorker: TLS or HTTP/2 prior knowledge: unguarded")
        super().run()

    def accept(self, listener: socket.socket) -> None:
        """gunicorn's accept(), with the socket and the connection guarded, and the backlog
        drained (up to ACCEPT_BATCH at a time, where gunicorn takes one per turn of its loop):
        while clients connect faster than that, the backlog overflows and new ones — a probe
        among them — wait a second for their SYN to be sent again."""
        if not self.guarded:
            super().accept(listener)
            return
        for _ in range(ACCEPT_BATCH):
            if self.nr_conns >= self.worker_connections:
                self.shed_idle_connection()
            try:
                client_sock, client_addr = listener.accept()
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE):  # out of descriptors: make room
                    self.shed_idle_connection()
                elif exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                    raise
                return
            self.nr_conns += 1
            sock = RateFloorSocket.adopt(client_sock)
            self.enqueue_req(
                GuardedConnection(self.cfg, sock, client_addr, listener.getsockname(), self)
            )

    # --- 5. at the limit, the longest-idle connection makes room for a new one ----------------

    def set_accept_enabled(self, enabled: bool) -> None:
        """gunicorn stops accepting at worker_connections, and then every new client — a health
        probe too — waits in the backlog behind connections that send nothing. Here accepting
        stops only while every connection is busy with a request (see accept)."""
        if self.guarded and not enabled and self.idle_connections():
            enabled = True
        super().set_accept_enabled(enabled)

    def idle_connections(self) -> int:
        return len(self.keepalived_conns) + len(self.heads) + len(self.pending_conns)

    def shed_idle_connection(self) -> None:
        """Close the connection that has waited longest without a request in it: a kept-alive
        one first (its client is done for now), then one still sending its head."""
        for idle in (self.keepalived_conns, self.pending_conns):
            if idle:
                conn = idle.popleft()
                with contextlib.suppress(OSError, KeyError, ValueError):
                    self.poller.unregister(conn.sock)
                self.nr_conns -= 1
                conn.close()
                return
        if self.heads:
            self.drop_head(next(iter(self.heads)))

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
        self.heads[conn] = None
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
            del self.heads[conn]
            self.dispatch(conn)
        elif len(conn.head) > HEAD_MAX:  # answered here, never parsed
            with contextlib.suppress(OSError):
                conn.sock.send(HEAD_TOO_LARGE)
            self.drop_head(conn)

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

    def _keepalive_after(self, conn: Any, keepalive: bool) -> bool:
        """Never keep a connection whose request body stopped early (cut, silent, reset): it
        read as ended, but the client may still send the rest, which must not be taken for a
        next request (behind a proxy that reuses its connections, that would be a smuggled
        one)."""
        if getattr(conn.sock, "ended_early", None) is not None:
            return False
        return bool(super()._keepalive_after(conn, keepalive))

    def drop_head(self, conn: GuardedConnection) -> None:
        self.poller.unregister(conn.sock)
        del self.heads[conn]
        self.nr_conns -= 1
        conn.close()

    # --- deadlines: gunicorn's run() calls murder_pending() on every turn of its loop ----------

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        while self.heads and (oldest := next(iter(self.heads))).head_deadline <= now:
            self.drop_head(oldest)
        while self.lingering and self.lingering[oldest := next(iter(self.lingering))] <= now:
            self.end_linger(oldest)

    # --- 4. a graceful close that does not block the loop --------------------------------------

    def linger(self, conn: GuardedConnection) -> None:
        try:
            conn.sock.setblocking(False)
            conn.sock.shutdown(socket.SHUT_WR)
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.drain, conn))
        except (OSError, ValueError, KeyError):
            util.close(conn.sock)
            return
        self.lingering[conn] = time.monotonic() + LINGER_SECONDS

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
        self.lingering.pop(conn, None)
        with contextlib.suppress(OSError, KeyError, ValueError):
            self.poller.unregister(conn.sock)
        util.close(conn.sock)
