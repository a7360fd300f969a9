"""Latency hiding: with a fixed delay on every S3 request, a 10-chunk read should cost little more
than a 1-chunk read, because the chunks are fetched in parallel."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

from bench.harness import (
    Harness,
    chunk_keys,
    medians_interleaved,
    read_seconds,
    store_file,
)
from testing.servers import GunicornServer

FIGURES = [
    "parallel_read_ratio_10",
    "latency_read_vs_direct_10",
    "s3_direct_read_ratio_10",
    "parallel_speedup_10",
    "parallel_speedup_100",
]


def measure_latency_hiding(harness: Harness) -> None:
    counts = sorted({1, 10, 100, *harness.plan.curve})
    behind_proxy = {**harness.s3_settings("bench-latency", through_proxy=True), "DATA": "latency"}
    with harness.service("latency", **behind_proxy) as server:
        ids = {count: upload_chunks(harness, server, count) for count in counts}
        parallel, direct = read_times(harness, server, ids), direct_times(harness, server, ids)
    with harness.service("sequential", READ_CONCURRENCY="1", **behind_proxy) as server:
        sequential = read_times(harness, server, ids)
    figures = harness.results.figures
    figures["parallel_read_ratio_10"] = parallel[10] / parallel[1]
    figures["latency_read_vs_direct_10"] = parallel[10] / direct[10]
    figures["parallel_speedup_10"] = sequential[10] / parallel[10]
    figures["parallel_speedup_100"] = sequential[100] / parallel[100]
    # The same ratio for boto3 alone: what the S3 server's own bandwidth allows.
    figures["s3_direct_read_ratio_10"] = direct[10] / direct[1]
    harness.results.raw["read_seconds"] = {"parallel": parallel, "sequential": sequential}
    harness.results.raw["s3_direct_seconds"] = {str(count): direct[count] for count in direct}


def upload_chunks(harness: Harness, server: GunicornServer, count: int) -> str:
    size = count * harness.plan.chunk_size
    file_id = store_file(server, f"c{count}", os.urandom(size), size)
    read_seconds(server, file_id)  # metadata cached, connections warm
    return file_id


def read_times(harness: Harness, server: GunicornServer, ids: dict[int, str]) -> dict[int, float]:
    """The median time to read each file, all counts interleaved."""
    for file_id in ids.values():
        read_seconds(server, file_id)
    counts = list(ids)
    times = medians_interleaved(
        harness.plan.repeats, *[lambda c=count: read_seconds(server, ids[c]) for count in counts]
    )
    return dict(zip(counts, times, strict=True))


def direct_times(harness: Harness, server: GunicornServer, ids: dict[int, str]) -> dict[int, float]:
    """boto3 fetching the objects of the 1- and 10-chunk files through the same proxy, 16 at a
    time (READ_CONCURRENCY), with warm connections as the service's are."""
    client = harness.s3_client(through_proxy=True)
    keys = {count: chunk_keys(server, ids[count]) for count in (1, 10)}

    def fetch(key: str) -> bytes:
        return client.get_object(Bucket="bench-latency", Key=key)["Body"].read()

    with ThreadPoolExecutor(16) as pool:

        def direct(count: int) -> float:
            started = time.perf_counter()
            list(pool.map(fetch, keys[count]))
            return time.perf_counter() - started

        direct(10)
        one, ten = medians_interleaved(harness.plan.repeats, lambda: direct(1), lambda: direct(10))
    return {1: one, 10: ten}
