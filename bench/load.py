"""A bounded load test: concurrent clients upload, read (whole and ranged) and delete files, and
every byte read back is checked against what was uploaded.

Each client works on its own files, so what it reads is exactly what it wrote: any difference is
a real mismatch. Clients act for several users (each with a token of their own), and also try
to read and list other users' files: a file of another user that answers anything but 404, or
shows up in a listing, is a mismatch too. The run stops after a fixed number of operations and
prints operations per second and latency percentiles. `make load` runs the full form (16
clients of 4 users, 1,000+ operations); the test suite runs a smaller one.

    python -m bench.load --url http://127.0.0.1:8080 --clients 16 --operations 1200 \
        --token TOKEN_OF_USER_1 --token TOKEN_OF_USER_2
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import random
import statistics
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from testing.servers import GunicornServer

KIB = 1024


@dataclass
class Stats:
    operations: Counter = field(default_factory=Counter)
    statuses: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    bytes_moved: int = 0
    server_errors: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    owners: dict[str, int] = field(default_factory=dict)  # file id -> user number

    def others_file(self, user: int, rng: random.Random) -> str | None:
        with self.lock:
            foreign = [file_id for file_id, owner in self.owners.items() if owner != user]
        return rng.choice(foreign) if foreign else None

    def owner_of(self, file_id: str) -> int | None:
        with self.lock:
            return self.owners.get(file_id)

    def record(self, kind: str, status: int, seconds: float, size: int) -> None:
        with self.lock:
            self.bytes_moved += size
            self.operations[kind] += 1
            self.statuses[status] += 1
            self.latencies.append(seconds)

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(int(fraction * len(ordered)), len(ordered) - 1)] if ordered else 0.0

    def summary(self) -> dict:
        total = sum(self.operations.values())
        return {
            "operations": total,
            "by_kind": dict(self.operations),
            "statuses": {str(code): count for code, count in sorted(self.statuses.items())},
            "server_errors": len(self.server_errors),
            "mismatches": len(self.mismatches),
            "seconds": round(self.elapsed, 2),
            "ops_per_second": round(total / self.elapsed, 1) if self.elapsed else 0.0,
            "megabytes_moved": round(self.bytes_moved / 1e6, 1),
            "latency_ms": {
                "p50": round(self.percentile(0.50) * 1000, 1),
                "p95": round(self.percentile(0.95) * 1000, 1),
                "p99": round(self.percentile(0.99) * 1000, 1),
                "mean": round(statistics.fmean(self.latencies) * 1000, 1) if self.latencies else 0,
            },
        }


class Client:
    """One simulated client of user number `user`: its own files, its own keep-alive
    connection."""

    def __init__(
        self, base_url: str, chunk_size: int, seed: int, stats: Stats, headers: dict, user: int
    ):
        self.user = user
        parts = urlsplit(base_url)
        self.host, self.port = cast(str, parts.hostname), parts.port or 80
        self.chunk_size = chunk_size
        self.random = random.Random(seed)
        self.stats = stats
        self.headers = headers
        self.files: dict[str, bytes] = {}
        self.connection = http.client.HTTPConnection(self.host, self.port, timeout=60)

    def request(
        self,
        kind: str,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[http.client.HTTPResponse, bytes]:
        started = time.monotonic()
        for attempt in (1, 2):
            try:
                self.connection.request(
                    method, path, body=body, headers={**self.headers, **(headers or {})}
                )
                response = self.connection.getresponse()
                data = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # An idle keep-alive connection the server closed: reconnect once.
                self.connection.close()
                self.connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
                if attempt == 2:
                    raise
        moved = len(body or b"") + len(data)
        self.stats.record(kind, response.status, time.monotonic() - started, moved)
        if response.status >= 500:
            self.stats.server_errors.append(f"{method} {path}: {response.status} {data[:200]!r}")
        return response, data

    def random_size(self) -> int:
        """0 bytes to 5 chunks, often at or beside a chunk boundary, sometimes odd."""
        chunks = self.random.randint(0, 5)
        return max(chunks * self.chunk_size + self.random.choice([-1, 0, 0, 1, 777, -4321]), 0)

    def upload(self) -> None:
        data = self.random.randbytes(self.random_size())
        name = f"load-{uuid.uuid4().hex}"  # a new file each time: reads check its own bytes
        response, body = self.request("upload", "PUT", f"/write?name={name}", data)
        if response.status == 201:
            answer = json.loads(body)
            if answer["sha256"] != hashlib.sha256(data).hexdigest():
                self.stats.mismatches.append(f"upload {answer['file_id']}: wrong sha256")
            self.files[answer["file_id"]] = data
            with self.stats.lock:
                self.stats.owners[answer["file_id"]] = self.user

    def read(self) -> None:
        file_id, data = self.random.choice(list(self.files.items()))
        response, body = self.request("read", "GET", f"/read/{file_id}")
        if response.status == 200 and body != data:
            self.stats.mismatches.append(f"read {file_id}: {len(body)} bytes, {len(data)} uploaded")

    def ranged_read(self) -> None:
        file_id, data = self.random.choice(list(self.files.items()))
        if not data:
            return self.read()
        start = self.random.randrange(len(data))
        stop = self.random.randrange(start, len(data)) + 1
        response, body = self.request(
            "ranged read", "GET", f"/read/{file_id}", headers={"Range": f"bytes={start}-{stop - 1}"}
        )
        if response.status == 206 and body != data[start:stop]:
            self.stats.mismatches.append(f"range {start}-{stop - 1} of {file_id}: wrong bytes")

    def delete(self) -> None:
        file_id = self.random.choice(list(self.files))
        response, _ = self.request("delete", "DELETE", f"/files/{file_id}")
        if response.status == 204:
            del self.files[file_id]
            gone, _ = self.request("read", "GET", f"/read/{file_id}")
            if gone.status != 404:
                self.stats.mismatches.append(f"read after delete of {file_id}: {gone.status}")

    def snoop(self) -> None:
        """Read another user's file: it must not exist, as far as this user can tell."""
        file_id = self.stats.others_file(self.user, self.random)
        if file_id is None:
            return self.read()
        response, _ = self.request("snoop", "GET", f"/read/{file_id}")
        if response.status != 404:
            owner = self.stats.owner_of(file_id)
            self.stats.mismatches.append(
                f"user {self.user} read user {owner}'s file {file_id}: {response.status}"
            )

    def list_files(self) -> None:
        """A listing shows no file of another user."""
        response, body = self.request("list", "GET", "/files?limit=1000")
        if response.status != 200:
            return
        for listed in json.loads(body)["files"]:
            owner = self.stats.owner_of(listed["file_id"])
            if owner is not None and owner != self.user:
                self.stats.mismatches.append(
                    f"user {self.user} was listed user {owner}'s file {listed['file_id']}"
                )

    def step(self) -> None:
        if len(self.files) < 2:
            return self.upload()
        action = self.random.choices(
            [self.upload, self.read, self.ranged_read, self.delete, self.snoop, self.list_files],
            weights=[3, 3, 3, 1, 1, 1],
        )[0]
        action()


def run_load(
    base_url: str,
    clients: int = 16,
    operations: int = 1200,
    chunk_size: int = 1024 * 1024,
    seed: int = 1,
    tokens: list[str] | None = None,
) -> Stats:
    """Run `operations` steps spread over `clients` threads, acting in turn for the users whose
    `tokens` are given (none: the open API's anonymous user); returns what happened."""
    stats = Stats()
    logins = [{"Authorization": f"Bearer {token}"} for token in tokens or []] or [{}]
    users = [
        Client(
            base_url, chunk_size, seed * 1000 + n, stats, logins[n % len(logins)], n % len(logins)
        )
        for n in range(clients)
    ]
    steps_each = [operations // clients + (n < operations % clients) for n in range(clients)]

    def work(user: Client, steps: int) -> None:
        for _ in range(steps):
            user.step()
        user.connection.close()

    started = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(work, u, n) for u, n in zip(users, steps_each, strict=True)]:
            future.result()
    stats.elapsed = time.monotonic() - started
    return stats


def orphans(service: GunicornServer) -> int:
    """Chunk objects of the started service that belong to no stored content."""
    committed = {row[0].replace("-", "") for row in service.sql("SELECT id FROM files_blob")}
    return sum(
        1
        for item in service.store.list()
        if item.key.split("/")[1].replace("-", "") not in committed
    )


def run_on_started_stack(args: argparse.Namespace) -> tuple[Stats, dict[str, int]]:
    """Start moto and gunicorn (on the database and cache the environment configures), load it,
    then run `cleanup` and count orphaned chunk objects before and after."""
    import tempfile
    from pathlib import Path

    from testing.servers import start_stack

    with (
        tempfile.TemporaryDirectory() as folder,
        start_stack(Path(folder), args.chunk_size) as service,
    ):
        tokens = [
            service.manage("create_token", f"load-{n}", "--create-user").stdout.strip()
            for n in range(args.users)
        ]
        stats = run_load(
            service.url, args.clients, args.operations, args.chunk_size, args.seed, tokens
        )
        before = orphans(service)
        service.manage("cleanup", "--grace-minutes", "0")
        return stats, {"orphans_before_cleanup": before, "orphans_after_cleanup": orphans(service)}


def main() -> None:
    parser = argparse.ArgumentParser(description="Bounded load test of LabDropbox.")
    parser.add_argument("--url", help="a running service; without it, start one (moto+gunicorn)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--operations", type=int, default=1200)
    parser.add_argument("--chunk-size", type=int, default=1024 * 1024, help="the chunk size")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--token",
        action="append",
        default=[],
        help="a user's token (repeat for several users); with --url only",
    )
    parser.add_argument("--users", type=int, default=4, help="users to create, without --url")
    args = parser.parse_args()
    if args.url:
        stats = run_load(
            args.url, args.clients, args.operations, args.chunk_size, args.seed, args.token
        )
        extra: dict[str, int] = {}
    else:
        stats, extra = run_on_started_stack(args)
    print(json.dumps({"clients": args.clients, **stats.summary(), **extra}, indent=2))
    for problem in stats.server_errors[:10] + stats.mismatches[:10]:
        print("PROBLEM", problem)
    failed = stats.server_errors or stats.mismatches or extra.get("orphans_after_cleanup")
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
