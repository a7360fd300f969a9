"""What every measurement shares: the plan (sizes, repeats), the servers the harness starts, the
figures it collects, and the clients that time the work (HTTP, curl, wrk, boto3)."""

from __future__ import annotations

import http.client
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testing.servers import (
    EMBEDDED,
    PROJECT_DIR,
    GunicornServer,
    MotoServer,
    S3Endpoint,
    free_port,
    stop,
)
from testing.uploads import send, upload

MIB = 1024 * 1024


@dataclass(frozen=True)
class Plan:
    chunk_size: int
    latency: float  # seconds added to every S3 request by the proxy
    big_file: int  # throughput measurements
    rss_file: int  # peak-memory measurements
    repeats: int
    small_seconds: int  # each wrk run
    small_files: int  # files read once (miss) then again (hit) for the latency percentiles
    curve: tuple[int, ...]  # chunk counts for the read-time chart
    concurrent_reads: int  # reads of one file at once, for the memory budget's figure
    concurrent_file: int


FULL = Plan(MIB, 0.100, 256 * MIB, 1024 * MIB, 5, 5, 200, (1, 2, 5, 10, 20, 50, 100), 50, 64 * MIB)
SMOKE = Plan(64 * 1024, 0.020, 4 * MIB, 8 * MIB, 1, 1, 20, (1, 10, 100), 8, 4 * MIB)


@dataclass
class Results:
    figures: dict[str, float | None]
    notes: dict[str, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)


class Harness:
    """The servers every measurement can use: an S3 server (moto, or Ceph's RGW with --s3 rgw),
    a latency proxy in front of it (in its own process, so that its event loop does not compete
    with the harness's threads), and gunicorn services started on demand."""

    def __init__(self, plan: Plan, folder: Path, figures: list[str], s3_kind: str) -> None:
        self.plan = plan
        self.folder = folder
        self.results = Results(dict.fromkeys(figures))
        self.s3 = start_s3(s3_kind, folder)
        self.proxy_port = free_port()
        self.proxy = subprocess.Popen(
            [
                sys.executable, "-m", "testing.faultproxy",
                "--target", self.s3.endpoint,
                "--port", str(self.proxy_port),
                "--latency-ms", str(plan.latency * 1000),
            ],
            cwd=PROJECT_DIR,
            stdout=subprocess.PIPE,
        )  # fmt: skip
        assert self.proxy.stdout is not None
        self.proxy.stdout.readline()  # "forwarding …": it listens

    def close(self) -> None:
        stop(self.proxy)
        self.s3.stop()

    def s3_settings(self, bucket: str, through_proxy: bool = False) -> dict[str, str]:
        """The settings of a service on the S3 server (or on the latency proxy in front)."""
        settings = {**self.s3.service_env, "MINIO_BUCKET": bucket}
        if through_proxy:
            settings["MINIO_ENDPOINT"] = f"127.0.0.1:{self.proxy_port}"
        return settings

    def s3_client(self, through_proxy: bool = False) -> Any:
        """boto3 as a program talking to S3 directly would use it: the yardstick of the S3
        rows."""
        import boto3
        from botocore.config import Config

        endpoint = f"127.0.0.1:{self.proxy_port}" if through_proxy else self.s3.endpoint
        return boto3.session.Session().client(
            "s3",
            endpoint_url=f"http://{endpoint}",
            aws_access_key_id=self.s3.access_key,
            aws_secret_access_key=self.s3.secret_key,
            region_name="us-east-1",
            config=Config(
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                max_pool_connections=64,
                s3={"addressing_style": "path"},
            ),
        )

    @contextmanager
    def service(self, name: str, **env: str) -> Iterator[GunicornServer]:
        """gunicorn with the production config, embedded unless `env` says otherwise."""
        data = self.folder / env.pop("DATA", name)
        settings = {
            **EMBEDDED,
            "CHUNK_SIZE_BYTES": str(self.plan.chunk_size),
            "MAX_UPLOAD_MB": str(2 * self.plan.rss_file // MIB + 1),
            "LOG_LEVEL": "WARNING",
            **env,
        }
        server = GunicornServer(data, timeout=600, **settings)
        try:
            yield server
        finally:
            server.stop()


# --- timing --------------------------------------------------------------------------------------


def median_of(repeats: int, measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(repeats))


def medians_interleaved(repeats: int, *measures: Callable[[], float]) -> list[float]:
    """Each measure's median over `repeats` rounds of all of them in turn, so that whatever
    else the machine is doing meanwhile weighs on every side of a ratio alike."""
    samples: list[list[float]] = [[] for _ in measures]
    for _ in range(repeats):
        for sample, measure in zip(samples, measures, strict=True):
            sample.append(measure())
    return [statistics.median(sample) for sample in samples]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(fraction * len(ordered)), len(ordered) - 1)]


# --- clients -------------------------------------------------------------------------------------


def store_file(server: GunicornServer, name: str, body: Any, length: int) -> str:
    """Upload `length` bytes (bytes, or an iterable of bytes); the new file's id."""
    return upload(server, body, name, headers={"Content-Length": str(length)})["file_id"]


def delete(server: GunicornServer, file_id: str) -> None:
    """Delete a file through the API (the S3 server then frees its memory)."""
    reply = send(server, "DELETE", f"/files/{file_id}")
    if reply.status != 204:
        raise RuntimeError(f"delete of {file_id}: {reply.status}")


def read_seconds(
    server: GunicornServer, file_id: str, connection: http.client.HTTPConnection | None = None
) -> float:
    """Time to read a whole file, received into a reused buffer and dropped; on a connection of
    its own unless one is given (kept alive for the next read)."""
    buffer = bytearray(MIB)
    started = time.perf_counter()
    own = connection is None
    if connection is None:
        connection = server.connection(timeout=600)
    connection.request("GET", f"/read/{file_id}")
    response = connection.getresponse()
    expected, received = int(response.getheader("Content-Length") or -1), 0
    while count := response.readinto(buffer):
        received += count
    if own:
        connection.close()
    if response.status != 200 or received != expected:
        raise RuntimeError(f"read of {file_id}: {response.status}, {received}/{expected} bytes")
    return time.perf_counter() - started


def curl_bytes_per_second(url: str) -> float:
    """Download with curl (a C client, the same for the service and nginx), output dropped."""
    done = subprocess.run(
        ["curl", "-sSf", "-o", "/dev/null", "-w", "%{speed_download}", url],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return float(done.stdout)


def wrk_requests_per_second(
    url: str, seconds: int, connections: int = 8, headers: dict[str, str] | None = None
) -> float:
    header_options = [f"-H{name}: {value}" for name, value in (headers or {}).items()]
    done = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", *header_options, url],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    )
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", done.stdout)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} error responses under load")
    found = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    if found is None:
        raise RuntimeError(f"wrk printed no rate:\n{done.stdout}")
    return float(found.group(1))


def repeated(length: int, block: bytes) -> Iterator[bytes]:
    """`length` bytes made of `block` repeated: a large body that is never in memory whole."""
    sent = 0
    while sent < length:
        part = block[: length - sent]
        sent += len(part)
        yield part


def chunk_keys(server: GunicornServer, file_id: str) -> list[str]:
    import json

    reply = send(server, "GET", f"/files/{file_id}")
    return [chunk["key"] for chunk in json.loads(reply.body)["chunks"]]


def start_s3(kind: str, folder: Path) -> S3Endpoint:
    """moto (a Python emulator), or a throwaway Ceph cluster's RADOS Gateway (a real S3)."""
    if kind == "rgw":
        from testing.rgw import RgwServer

        return RgwServer(folder / "ceph")
    return MotoServer(folder / "moto.log")


def stack_configured() -> list[str]:
    """The MariaDB/Redis variables missing for the rows that need them (make bench sets them)."""
    return [name for name in ("TIDB_HOST", "REDIS_HOST") if not os.environ.get(name)]
