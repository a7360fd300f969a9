"""Small files: 1 KiB cache-hit reads a second with 8 clients ÷ a trivial Django view on the same
gunicorn config; the same reads with a user's token ÷ without one; and on the S3 + MariaDB +
Redis stack the reads a second and the cache hit and miss latencies, beside what boto3 gets from
the same S3 server for the same 1 KiB objects: GetObjects a second with as many threads, and the
latency of one GetObject after another."""

from __future__ import annotations

import os
import statistics
import threading
import time
from typing import Any

from bench.harness import (
    Harness,
    chunk_keys,
    medians_interleaved,
    percentile,
    read_seconds,
    stack_configured,
    store_file,
    wrk_requests_per_second,
)
from testing.mysql import recreate_mysql_database
from testing.servers import GunicornServer
from testing.uploads import WithToken, send, upload

FIGURES = [
    "small_read_vs_floor",
    "small_read_token_vs_open",
    "small_read_metrics_on_vs_off",
    "small_read_vs_floor_s3_redis",
    "small_read_vs_s3_get",
    "small_read_p99_vs_s3_get_p99",
    "cache_hit_p50_ms",
    "cache_hit_p99_ms",
    "cache_miss_p50_ms",
    "cache_miss_p99_ms",
]
STACK_FIGURES = FIGURES[3:]
STACK_BUCKET = "bench-stack"
CLIENTS = 8  # wrk's connections, boto3's threads
# Each 1 KiB file is read this many times for the latency percentiles (after one miss each).
LATENCY_ROUNDS = 5


def measure_small_files(harness: Harness) -> None:
    kib = os.urandom(1024)
    seconds = harness.plan.small_seconds
    floor_settings = {"DATA": "small", "DJANGO_SETTINGS_MODULE": "bench.floor_settings"}
    with harness.service("small") as server, harness.service("floor", **floor_settings) as floor:
        file_id = store_file(server, "small", kib, len(kib))
        owned_id, auth = file_of_a_user(server, kib)
        read_seconds(server, file_id)
        service, trivial, with_token = medians_interleaved(
            harness.plan.repeats,
            lambda: wrk_requests_per_second(f"{server.url}/read/{file_id}", seconds),
            lambda: wrk_requests_per_second(f"{floor.url}/floor", seconds),
            lambda: wrk_requests_per_second(f"{server.url}/read/{owned_id}", seconds, headers=auth),
        )
    figures = harness.results.figures
    figures["small_read_vs_floor"] = service / trivial
    figures["small_read_token_vs_open"] = with_token / service
    harness.results.raw["small_reads_per_second"] = {
        "filesystem": service,
        "filesystem_with_token": with_token,
        "trivial_view": trivial,
    }
    metrics_cost(harness, kib)
    missing = stack_configured()
    if missing:
        note = f"{' and '.join(missing)} not set (make bench sets them)"
        harness.results.notes.update(dict.fromkeys(STACK_FIGURES, note))
        return
    small_files_on_the_stack(harness, kib, trivial)


def metrics_cost(harness: Harness, kib: bytes) -> None:
    """The p50 of one client's 1 KiB cache-hit reads with metrics off ÷ on (1: they cost
    nothing), the two services measured in turn."""
    reads = 200
    with (
        harness.service("metrics-on") as on,
        harness.service("metrics-off", METRICS_ENABLED="false") as off,
    ):
        ids = {server: store_file(server, "small", kib, len(kib)) for server in (on, off)}
        for server, file_id in ids.items():
            read_seconds(server, file_id)

        def p50(server: GunicornServer) -> float:
            return statistics.median(read_seconds(server, ids[server]) for _ in range(reads))

        with_metrics, without = medians_interleaved(
            harness.plan.repeats, lambda: p50(on), lambda: p50(off)
        )
    harness.results.figures["small_read_metrics_on_vs_off"] = without / with_metrics
    harness.results.raw["small_read_p50_seconds"] = {"metrics_on": with_metrics, "off": without}


def file_of_a_user(server: GunicornServer, kib: bytes) -> tuple[str, dict[str, str]]:
    """A user's own 1 KiB file, and the header with their token that reads it (read once: the
    token is cached from then on)."""
    token = server.manage("create_token", "bench", "--create-user").stdout.strip()
    owner = WithToken(server, token)
    file_id = upload(owner, kib, "owned")["file_id"]
    assert send(owner, "GET", f"/read/{file_id}").status == 200
    return file_id, {"Authorization": f"Bearer {token}"}


def small_files_on_the_stack(harness: Harness, kib: bytes, trivial: float) -> None:
    """1 KiB reads on S3 + MariaDB + Redis: throughput, and cache hit/miss latency, each beside
    boto3's GetObject of the same objects on the same S3 server."""
    stack = {
        **harness.s3_settings(STACK_BUCKET),
        "TIDB_HOST": os.environ["TIDB_HOST"],
        "REDIS_HOST": os.environ["REDIS_HOST"],
        "TIDB_DATABASE": recreate_mysql_database(os.environ, f"bench_{os.getpid()}"),
    }
    seconds = harness.plan.small_seconds
    client = harness.s3_client()
    with harness.service("stack", **stack) as server:
        ids = [store_file(server, f"s{n}", kib, len(kib)) for n in range(harness.plan.small_files)]
        keys = [chunk_keys(server, file_id)[0] for file_id in ids]
        url = f"{server.url}/read/{ids[0]}"
        read_seconds(server, ids[0])
        get_seconds(client, keys[0])
        reads, gets = medians_interleaved(
            harness.plan.repeats,
            lambda: wrk_requests_per_second(url, seconds, connections=CLIENTS),
            lambda: gets_per_second(client, keys[0], seconds),
        )
        connection = server.connection(timeout=60)  # kept open, as boto3 keeps its own
        misses = [read_seconds(server, file_id, connection) * 1000 for file_id in ids[1:]]
        hits: list[float] = []
        direct: list[float] = []
        for _ in range(LATENCY_ROUNDS):  # in turns: each side one after another, as it is used
            hits.extend(read_seconds(server, one, connection) * 1000 for one in ids[1:])
            direct.extend(get_seconds(client, key) * 1000 for key in keys[1:])
        connection.close()
    figures = harness.results.figures
    figures["small_read_vs_floor_s3_redis"] = reads / trivial
    figures["small_read_vs_s3_get"] = reads / gets
    figures["small_read_p99_vs_s3_get_p99"] = percentile(hits, 0.99) / percentile(direct, 0.99)
    harness.results.raw["small_reads_per_second"] |= {"s3_mariadb_redis": reads, "s3_get": gets}
    harness.results.raw["s3_get_ms"] = {
        "p50": statistics.median(direct),
        "p99": percentile(direct, 0.99),
    }
    for name, latencies in (("hit", hits), ("miss", misses)):
        figures[f"cache_{name}_p50_ms"] = statistics.median(latencies)
        figures[f"cache_{name}_p99_ms"] = percentile(latencies, 0.99)


def get_seconds(client: Any, key: str) -> float:
    """One boto3 GetObject of a small object, its body read."""
    started = time.perf_counter()
    client.get_object(Bucket=STACK_BUCKET, Key=key)["Body"].read()
    return time.perf_counter() - started


def gets_per_second(client: Any, key: str, seconds: float) -> float:
    """boto3 GetObjects of one small object a second, from CLIENTS threads for `seconds`."""
    counts = [0] * CLIENTS
    deadline = time.perf_counter() + seconds

    def loop(slot: int) -> None:
        while time.perf_counter() < deadline:
            client.get_object(Bucket=STACK_BUCKET, Key=key)["Body"].read()
            counts[slot] += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=loop, args=(slot,)) for slot in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - started)
