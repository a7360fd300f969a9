"""Throughput against direct storage: the service's download and upload rates ÷ boto3 talking to
the same S3 server with the same concurrency — as a plain script does, and as a careful one does,
checking each chunk's SHA-256 as the service does — with the CPU seconds per GiB that each side
and the S3 server spend; and the embedded filesystem store ÷ nginx serving the same bytes as a
static file. And the price of reach: the service storing its chunks through django-storages'
S3Storage (CHUNK_STORAGE=django) ÷ its own S3 store, on the same S3 server."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.cpu import measuring
from bench.harness import (
    Harness,
    chunk_keys,
    curl_bytes_per_second,
    delete,
    median_of,
    medians_interleaved,
    store_file,
)
from testing.nginx import NginxServer, nginx_binary
from testing.storages import django_storage, django_storage_env

FIGURES = [
    "download_vs_s3_direct",
    "download_vs_s3_direct_sha256",
    "read_cpu_per_gib_vs_sha256_client",
    "upload_vs_s3_direct",
    "fs_download_vs_nginx",
    "django_s3_download_vs_boto3",
    "django_s3_upload_vs_boto3",
]
BUCKET = "bench-throughput"


# A way's bytes/s, and the CPU seconds per GiB that each process group spent on it.
Measured = tuple[float, dict[str, float]]


def measure_throughput(harness: Harness) -> None:
    data = os.urandom(harness.plan.big_file)
    service, keys = service_rates(harness, data, harness.s3_settings(BUCKET))
    direct = direct_rates(harness, data, keys)
    rate = {f"service_{way}": service[way][0] for way in service} | {
        f"s3_direct_{way}": direct[way][0] for way in direct
    }
    figures = harness.results.figures
    figures["upload_vs_s3_direct"] = rate["service_upload"] / rate["s3_direct_upload"]
    figures["download_vs_s3_direct"] = rate["service_download"] / rate["s3_direct_download"]
    figures["download_vs_s3_direct_sha256"] = (
        rate["service_download"] / rate["s3_direct_download_sha256"]
    )
    figures["read_cpu_per_gib_vs_sha256_client"] = (
        service["download"][1]["service"] / direct["download_sha256"][1]["client"]
    )
    harness.results.raw["megabytes_per_second"] = {name: r / 1e6 for name, r in rate.items()}
    harness.results.raw["cpu_seconds_per_gib"] = {
        f"service_{way}": service[way][1] for way in service
    } | {f"s3_direct_{way}": direct[way][1] for way in direct}
    reach, _keys = service_rates(harness, data, django_s3_settings(harness))
    figures["django_s3_upload_vs_boto3"] = reach["upload"][0] / rate["service_upload"]
    figures["django_s3_download_vs_boto3"] = reach["download"][0] / rate["service_download"]
    harness.results.raw["megabytes_per_second"] |= {
        "django_s3storage_upload": reach["upload"][0] / 1e6,
        "django_s3storage_download": reach["download"][0] / 1e6,
    }
    filesystem_vs_nginx(harness, data)


def django_s3_settings(harness: Harness) -> dict[str, str]:
    """A service storing chunks through django-storages' S3Storage on the harness's S3 server."""
    config = django_storage("django-s3", f"{BUCKET}-django", s3=harness.s3)
    return {**django_storage_env(config), "DATA": "throughput-django"}


def service_rates(
    harness: Harness, data: bytes, settings: dict[str, str]
) -> tuple[dict[str, Measured], list[str]]:
    """Upload and download through the service on S3 (curl the client, its CPU not counted);
    the last file's chunk keys."""
    repeats = harness.plan.repeats
    with harness.service("throughput", **settings) as server:
        ids: list[str] = []
        processes = {"service": [server.process.pid], "s3": harness.s3.pids}

        def upload_rate() -> float:
            started = time.perf_counter()
            ids.append(store_file(server, f"big-{len(ids)}", data, len(data)))
            return len(data) / (time.perf_counter() - started)

        with measuring(**processes) as uploading:
            up = median_of(repeats, upload_rate)
        for file_id in ids[:-1]:
            delete(server, file_id)
        url = f"{server.url}/read/{ids[-1]}"
        curl_bytes_per_second(url)
        with measuring(**processes) as downloading:
            down = median_of(repeats, lambda: curl_bytes_per_second(url))
        moved = repeats * len(data)
        return {
            "upload": (up, {side: uploading.per_gib(side, moved) for side in processes}),
            "download": (down, {side: downloading.per_gib(side, moved) for side in processes}),
        }, chunk_keys(server, ids[-1])


def direct_rates(harness: Harness, data: bytes, keys: list[str]) -> dict[str, Measured]:
    """boto3's upload (4 at a time) and download (16 at a time) on the same S3; and its download
    checking each chunk's SHA-256 before taking it, as the service does."""
    client = harness.s3_client()
    size = harness.plan.chunk_size
    chunks = [data[i : i + size] for i in range(0, len(data), size)]
    digests = [hashlib.sha256(chunk).hexdigest() for chunk in chunks]
    repeats = harness.plan.repeats

    def rate(workers: int, job: Callable[[int], Any]) -> float:
        with ThreadPoolExecutor(workers) as pool:
            started = time.perf_counter()
            list(pool.map(job, range(len(chunks))))
            return len(data) / (time.perf_counter() - started)

    def measured(workers: int, job: Callable[[int], Any]) -> Measured:
        with measuring(s3=harness.s3.pids) as use:
            bytes_per_second = median_of(repeats, lambda: rate(workers, job))
        moved = repeats * len(data)
        return bytes_per_second, {side: use.per_gib(side, moved) for side in use.seconds}

    def put(index: int) -> None:
        client.put_object(Bucket=BUCKET, Key=f"direct/{index}", Body=chunks[index])

    def get(index: int) -> bytes:
        return client.get_object(Bucket=BUCKET, Key=keys[index])["Body"].read()

    def get_verified(index: int) -> bytes:
        body = get(index)
        if hashlib.sha256(body).hexdigest() != digests[index]:
            raise RuntimeError(f"chunk {index} does not match its SHA-256")
        return body

    return {
        "upload": measured(4, put),  # UPLOAD_CONCURRENCY
        "download": measured(16, get),  # READ_CONCURRENCY
        "download_sha256": measured(16, get_verified),
    }


def filesystem_vs_nginx(harness: Harness, data: bytes) -> None:
    """The embedded filesystem store's download rate ÷ nginx sending the same bytes."""
    try:
        nginx_binary()
    except RuntimeError as exc:
        harness.results.notes["fs_download_vs_nginx"] = str(exc)
        return
    with harness.service("filesystem") as server, static_nginx(harness.folder, data) as static:
        url = f"{server.url}/read/{store_file(server, 'big', data, len(data))}"
        curl_bytes_per_second(url)
        curl_bytes_per_second(static)
        service, nginx_rate = medians_interleaved(
            harness.plan.repeats,
            lambda: curl_bytes_per_second(url),
            lambda: curl_bytes_per_second(static),
        )
    harness.results.figures["fs_download_vs_nginx"] = service / nginx_rate
    rates = harness.results.raw["megabytes_per_second"]
    rates["service_filesystem_download"] = service / 1e6
    rates["nginx_static"] = nginx_rate / 1e6


@contextmanager
def static_nginx(folder: Path, data: bytes) -> Iterator[str]:
    """nginx serving `data` as a static file with sendfile; yields its URL."""
    www = folder / "www"
    www.mkdir(parents=True, exist_ok=True)
    (www / "big.bin").write_bytes(data)
    # Started as root, nginx serves as an unprivileged user: it must be able to read these.
    for path in (folder, www, www / "big.bin"):
        path.chmod(0o755)
    server = NginxServer(
        folder / "nginx",
        f"sendfile on; tcp_nopush on; server {{ listen 127.0.0.1:{{port}}; root {www}; }}",
        health_path="/big.bin",
    )
    try:
        yield f"{server.url}/big.bin"
    finally:
        server.stop()
