"""Clients that a service must survive, and a prober that measures whether it does.

Everything is bounded (a fixed number of connections, for a fixed time) and talks to 127.0.0.1
only. The hostile clients are the three ways a client can hold a server's thread without
sending or reading anything worth its time:

- `head`: half a request line, or half the headers, and then nothing;
- `trickle`: an upload announcing 10 MB that sends one byte every few seconds;
- `unread`: a download that is never read (a tiny receive buffer, nothing taken from it).

Each one opens again as soon as the server lets go of it, so the server faces `count` of them
for the whole run. Meanwhile `probe` asks for /health and for a small ranged read every half
second on fresh connections and records every latency.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

HOST = "127.0.0.1"
PROBE_TIMEOUT = 10.0
TRICKLE_EVERY = 3.0


@dataclass
class Probes:
    """Latencies (seconds) of the probes, and what went wrong with the failed ones."""

    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(int(fraction * len(ordered)), len(ordered) - 1)]

    def summary(self) -> str:
        return (
            f"{len(self.latencies)} probes, p50 {self.percentile(0.5):.3f} s, "
            f"p99 {self.percentile(0.99):.3f} s, max {max(self.latencies):.3f} s, "
            f"{len(self.failures)} failed {Counter(self.failures).most_common(3)}"
        )


@dataclass
class Hostility:
    """How many hostile connections of each kind were opened, and how many the server cut."""

    opened: Counter[str] = field(default_factory=Counter)
    cut: Counter[str] = field(default_factory=Counter)


async def probe(
    port: int, requests: list[tuple[str, dict[str, str], int]], seconds: float
) -> Probes:
    """Every 0.5 s, each (path, headers, expected status) on a fresh connection."""
    probes = Probes()
    started = time.monotonic()
    tasks = []
    for tick in range(int(seconds / 0.5)):
        await asyncio.sleep(max(0.0, started + tick * 0.5 - time.monotonic()))
        for path, headers, status in requests:
            tasks.append(asyncio.create_task(one_probe(port, path, headers, status, probes)))
    await asyncio.gather(*tasks)
    return probes


async def one_probe(
    port: int, path: str, headers: dict[str, str], status: int, probes: Probes
) -> None:
    started = time.monotonic()
    try:
        got = await asyncio.wait_for(get(port, path, headers), PROBE_TIMEOUT)
    except (TimeoutError, OSError, ValueError) as exc:
        probes.failures.append(type(exc).__name__)
        probes.latencies.append(time.monotonic() - started)
        return
    probes.latencies.append(time.monotonic() - started)
    if got != status:
        probes.failures.append(f"status {got}")


async def get(port: int, path: str, headers: dict[str, str]) -> int:
    """One GET on a fresh connection (asyncio streams: no thread, so the probes' own waiting
    never adds to what they measure); the response's status once its body has arrived."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        lines = [f"GET {path} HTTP/1.1", "Host: localhost", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        answer = await reader.read()  # Connection: close: the body ends with the connection
        return int(answer.split(b" ", 2)[1])
    finally:
        writer.close()


async def hostile_connections(
    port: int, count: int, seconds: float, download_path: str, upload_path: str
) -> Hostility:
    """`count` hostile connections, a third of each kind, held for `seconds`."""
    hostility = Hostility()
    deadline = time.monotonic() + seconds
    kinds: list[Callable[[socket.socket, float], Awaitable[bool]]] = [
        half_head,
        lambda sock, until: trickle(sock, until, upload_path),
        lambda sock, until: never_read(sock, until, download_path),
    ]
    names = ["head", "trickle", "unread"]
    await asyncio.gather(
        *(keep_hostile(port, names[n % 3], kinds[n % 3], deadline, hostility) for n in range(count))
    )
    return hostility


async def keep_hostile(
    port: int,
    name: str,
    behave: Callable[[socket.socket, float], Awaitable[bool]],
    deadline: float,
    hostility: Hostility,
) -> None:
    """One slot: a hostile connection, opened again each time the server cuts it."""
    while time.monotonic() < deadline:
        try:
            sock = await connect(port, small_receive_buffer=name == "unread")
        except OSError:
            await asyncio.sleep(0.2)
            continue
        hostility.opened[name] += 1
        try:
            if await behave(sock, deadline):
                hostility.cut[name] += 1
        except OSError:
            hostility.cut[name] += 1
        finally:
            sock.close()
        await asyncio.sleep(0.1)


async def connect(port: int, small_receive_buffer: bool = False) -> socket.socket:
    sock = socket.socket()
    sock.setblocking(False)
    if small_receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (HOST, port)), 5)
    except BaseException:
        sock.close()
        raise
    return sock


async def half_head(sock: socket.socket, deadline: float) -> bool:
    """Half a request line or half the headers; True if the server let go before the end."""
    loop = asyncio.get_running_loop()
    await loop.sock_sendall(sock, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Wait: a")
    return await server_lets_go(sock, deadline)


async def trickle(sock: socket.socket, deadline: float, path: str) -> bool:
    loop = asyncio.get_running_loop()
    head = f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10000000\r\n\r\n"
    await loop.sock_sendall(sock, head.encode())
    while time.monotonic() < deadline:
        if await server_lets_go(sock, min(deadline, time.monotonic() + TRICKLE_EVERY)):
            return True
        await loop.sock_sendall(sock, b"x")
    return False


async def never_read(sock: socket.socket, deadline: float, path: str) -> bool:
    loop = asyncio.get_running_loop()
    await loop.sock_sendall(sock, f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    while time.monotonic() < deadline:
        await asyncio.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        if not established(sock):
            return True
    return False


async def server_lets_go(sock: socket.socket, until: float) -> bool:
    """Wait until `until` for the server to answer or close; True if it did."""
    try:
        await asyncio.wait_for(
            asyncio.get_running_loop().sock_recv(sock, 4096), max(0.0, until - time.monotonic())
        )
    except TimeoutError:
        return False
    return True


def established(sock: socket.socket) -> bool:
    tcp_established = 1
    try:
        return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0] == tcp_established
    except OSError:
        return False


async def concurrent_downloads(port: int, path: str, count: int) -> list[int]:
    """`count` clients downloading `path` at once; the bytes each received."""
    return list(
        await asyncio.gather(*(asyncio.to_thread(download, port, path) for _ in range(count)))
    )


def download(port: int, path: str) -> int:
    connection = http.client.HTTPConnection(HOST, port, timeout=120)
    buffer = bytearray(1024 * 1024)
    received = 0
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        while count := response.readinto(buffer):
            received += count
        return received if response.status == 200 else -response.status
    finally:
        connection.close()


async def concurrent_uploads(port: int, count: int, size: int) -> list[dict]:
    """`count` clients uploading `size` bytes each at once; the 201 bodies (JSON)."""
    return list(
        await asyncio.gather(*(asyncio.to_thread(upload, port, n, size) for n in range(count)))
    )


def upload(port: int, number: int, size: int) -> dict:
    block = bytes([number % 251]) * (1024 * 1024)
    body = (block[: min(len(block), size - sent)] for sent in range(0, size, len(block)))
    connection = http.client.HTTPConnection(HOST, port, timeout=120)
    try:
        connection.request(
            "PUT", f"/write?name=load-{number}", body=body, headers={"Content-Length": str(size)}
        )
        response = connection.getresponse()
        answer = json.loads(response.read())
        assert response.status == 201, answer
        return answer
    finally:
        connection.close()
