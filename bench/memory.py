"""Bounded memory: how far a worker's resident memory rises while it uploads and downloads a file
much larger than its chunk window, and while it serves many reads at once (its chunk budget)."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.harness import MIB, Harness, delete, read_seconds, repeated, store_file

FIGURES = ["upload_rss_growth_mib", "download_rss_growth_mib", "concurrent_reads_rss_growth_mib"]


def measure_memory(harness: Harness) -> None:
    size = harness.plan.rss_file
    block = os.urandom(MIB)
    settings = harness.s3_settings("bench-rss")
    with harness.service("memory", **settings) as server:
        pid = worker_pid(server.process.pid)
        store_file(server, "warm", block, len(block))  # imports, pools, first allocations
        stored: list[str] = []
        figures = harness.results.figures
        figures["upload_rss_growth_mib"] = peak_rss_growth_mib(
            pid, lambda: stored.append(store_file(server, "big", repeated(size, block), size))
        )
        figures["download_rss_growth_mib"] = peak_rss_growth_mib(
            pid, lambda: read_seconds(server, stored[0])
        )
        delete(server, stored[0])  # moto and RGW's memstore keep objects in memory


def measure_concurrent_reads(harness: Harness) -> None:
    """Peak RSS growth of one worker serving many reads of one file at once: each would hold
    READ_CONCURRENCY chunks on its own; together they hold what the chunk budget allows."""
    plan = harness.plan
    with harness.service("concurrent") as server:
        pid = worker_pid(server.process.pid)
        file_id = store_file(server, "big", os.urandom(plan.concurrent_file), plan.concurrent_file)
        read_seconds(server, file_id)

        def read_all_at_once() -> None:
            with ThreadPoolExecutor(plan.concurrent_reads) as pool:
                list(
                    pool.map(lambda _: read_seconds(server, file_id), range(plan.concurrent_reads))
                )

        harness.results.figures["concurrent_reads_rss_growth_mib"] = peak_rss_growth_mib(
            pid, read_all_at_once
        )


def worker_pid(master_pid: int) -> int:
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    if len(children) != 1:
        raise RuntimeError(f"expected one gunicorn worker, found {children}")
    return int(children[0])


def rss_kib(pid: int, field: str) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no {field} in /proc/{pid}/status")
    return int(found.group(1))


def peak_rss_growth_mib(pid: int, work: Callable[[], object]) -> float:
    """How far the process's resident memory rose above where it started, during work()."""
    baseline = rss_kib(pid, "VmRSS")
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # restart the kernel's peak (VmHWM)
    except OSError:  # not allowed here: sample instead
        return sampled_peak_growth_mib(pid, baseline, work)
    work()
    return (rss_kib(pid, "VmHWM") - baseline) / 1024


def sampled_peak_growth_mib(pid: int, baseline: int, work: Callable[[], object]) -> float:
    peak = [baseline]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.005):
            peak[0] = max(peak[0], rss_kib(pid, "VmRSS"))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        work()
    finally:
        done.set()
        sampler.join()
    return (peak[0] - baseline) / 1024
