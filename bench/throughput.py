"""Throughput against direct storage: the service's download and upload rates ÷ boto3 talking to
the same S3 server with the same concurrency, and the embedded filesystem store ÷ nginx serving
the same bytes as a static file. And the price of reach: the service storing its chunks through
django-storages' S3Storage (CHUNK_STORAGE=django) ÷ its own boto3 store, on the same S3 server."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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
    "upload_vs_s3_direct",
    "fs_download_vs_nginx",
    "django_s3_download_vs_boto3",
    "django_s3_upload_vs_boto3",
]
BUCKET = "bench-throughput"


def measure_throughput(harness: Harness) -> None:
    data = os.urandom(harness.plan.big_file)
    service_up, service_down, keys = service_rates(harness, data, harness.s3_settings(BUCKET))
    direct_up, direct_down = direct_rates(harness, data, keys)
    harness.results.figures["upload_vs_s3_direct"] = service_up / direct_up
    harness.results.figures["download_vs_s3_direct"] = service_down / direct_down
    harness.results.raw["megabytes_per_second"] = {
        "service_upload": service_up / 1e6,
        "s3_direct_upload": direct_up / 1e6,
        "service_download": service_down / 1e6,
        "s3_direct_download": direct_down / 1e6,
    }
    reach_up, reach_down, _keys = service_rates(harness, data, django_s3_settings(harness))
    harness.results.figures["django_s3_upload_vs_boto3"] = reach_up / service_up
    harness.results.figures["django_s3_download_vs_boto3"] = reach_down / service_down
    harness.results.raw["megabytes_per_second"] |= {
        "django_s3storage_upload": reach_up / 1e6,
        "django_s3storage_download": reach_down / 1e6,
    }
    filesystem_vs_nginx(harness, data)


def django_s3_settings(harness: Harness) -> dict[str, str]:
    """A service storing chunks through django-storages' S3Storage on the harness's S3 server."""
    config = django_storage("django-s3", f"{BUCKET}-django", s3=harness.s3)
    return {**django_storage_env(config), "DATA": "throughput-django"}


def service_rates(
    harness: Harness, data: bytes, settings: dict[str, str]
) -> tuple[float, float, list[str]]:
    """Upload and download bytes/s through the service on S3; the last file's chunk keys."""
    with harness.service("throughput", **settings) as server:
        ids = []

        def upload_rate() -> float:
            started = time.perf_counter()
            ids.append(store_file(server, "big", data, len(data)))
            return len(data) / (time.perf_counter() - started)

        up = median_of(harness.plan.repeats, upload_rate)
        for file_id in ids[:-1]:
            delete(server, file_id)
        url = f"{server.url}/read/{ids[-1]}"
        curl_bytes_per_second(url)
        down = median_of(harness.plan.repeats, lambda: curl_bytes_per_second(url))
        return up, down, chunk_keys(server, ids[-1])


def direct_rates(harness: Harness, data: bytes, keys: list[str]) -> tuple[float, float]:
    """boto3's upload (4 at a time) and download (16 at a time) bytes/s on the same S3."""
    client = harness.s3_client()
    size = harness.plan.chunk_size
    chunks = [data[i : i + size] for i in range(0, len(data), size)]

    def rate(workers: int, job: Callable[[int], Any]) -> float:
        with ThreadPoolExecutor(workers) as pool:
            started = time.perf_counter()
            list(pool.map(job, range(len(chunks))))
            return len(data) / (time.perf_counter() - started)

    def put(index: int) -> None:
        client.put_object(Bucket=BUCKET, Key=f"direct/{index}", Body=chunks[index])

    def get(index: int) -> bytes:
        return client.get_object(Bucket=BUCKET, Key=keys[index])["Body"].read()

    up = median_of(harness.plan.repeats, lambda: rate(4, put))  # UPLOAD_CONCURRENCY
    down = median_of(harness.plan.repeats, lambda: rate(16, get))  # READ_CONCURRENCY
    return up, down


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
