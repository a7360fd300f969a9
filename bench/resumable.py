"""Resumable uploads (tus): a large upload sent in 64 MiB PATCHes ÷ the same bytes in one
PUT /write, the worker's memory meanwhile, and tus-js-client's parallel uploads ÷ one upload."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from bench.harness import MIB, Harness, delete, medians_interleaved, repeated, store_file
from bench.memory import peak_rss_growth_mib, worker_pid
from testing.servers import PROJECT_DIR, GunicornServer
from testing.uploads import TUS, tus_create

FIGURES = ["tus_upload_vs_write", "tus_upload_rss_growth_mib", "tus_js_parallel_4_vs_1"]
PATCH_SIZE = 64 * MIB
UPLOAD_JS = PROJECT_DIR / "testing" / "tus-js" / "upload.cjs"


def measure_resumable(harness: Harness) -> None:
    size = harness.plan.rss_file
    patch = min(PATCH_SIZE, size // 4)
    block = os.urandom(MIB)
    with harness.service("resumable", **harness.s3_settings("bench-tus")) as server:
        store_file(server, "warm", block, len(block))  # imports, pools, first allocations
        # Memory first, on a worker that has moved nothing big yet (as bench/memory.py does).
        pid = worker_pid(server.process.pid)
        stored: list[str] = []
        figures = harness.results.figures
        figures["tus_upload_rss_growth_mib"] = peak_rss_growth_mib(
            pid, lambda: stored.append(tus_upload(server, size, patch, block))
        )
        delete(server, stored[0])  # moto and RGW's memstore keep objects in memory

        def write_rate() -> float:
            started = time.perf_counter()
            file_id = store_file(server, "big", repeated(size, block), size)
            seconds = time.perf_counter() - started
            delete(server, file_id)
            return size / seconds

        def tus_rate() -> float:
            started = time.perf_counter()
            file_id = tus_upload(server, size, patch, block)
            seconds = time.perf_counter() - started
            delete(server, file_id)
            return size / seconds

        tus, write = medians_interleaved(harness.plan.repeats, tus_rate, write_rate)
        figures["tus_upload_vs_write"] = tus / write
        harness.results.raw.setdefault("megabytes_per_second", {}).update(
            {"tus_upload": tus / 1e6, "write_upload": write / 1e6}
        )
        tus_js_parallel(harness, server)


def tus_upload(server: GunicornServer, size: int, patch: int, block: bytes) -> str:
    """Create an upload and send it in PATCHes of `patch` bytes; the file's id."""
    path = tus_create(server, size)
    offset = 0
    while offset < size:
        length = min(patch, size - offset)
        connection = server.connection(timeout=600)
        headers = {
            **TUS,
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
            "Content-Length": str(length),
        }
        connection.request("PATCH", path, body=repeated(length, block), headers=headers)
        response = connection.getresponse()
        response.read()
        connection.close()
        if response.status != 204:
            raise RuntimeError(f"PATCH {path} at {offset}: {response.status}")
        offset = int(response.getheader("Upload-Offset") or -1)
    return path.rsplit("/", 1)[1]


def tus_js_parallel(harness: Harness, server: GunicornServer) -> None:
    """tus-js-client sending one file as 4 partial uploads at once ÷ as one upload."""
    if shutil.which("node") is None or not (UPLOAD_JS.parent / "node_modules").is_dir():
        harness.results.notes["tus_js_parallel_4_vs_1"] = "needs Node and `make node-tools`"
        return
    size = harness.plan.big_file
    path = harness.folder / "tus-js.bin"
    path.write_bytes(os.urandom(size))

    def rate(parallel: int) -> float:
        started = time.perf_counter()
        file_id = tus_js_upload(server, path, parallel, chunk_size=size // 4)
        seconds = time.perf_counter() - started
        delete(server, file_id)
        return size / seconds

    one, four = medians_interleaved(harness.plan.repeats, lambda: rate(1), lambda: rate(4))
    harness.results.figures["tus_js_parallel_4_vs_1"] = four / one
    harness.results.raw["megabytes_per_second"].update(
        {"tus_js_one_upload": one / 1e6, "tus_js_4_parallel": four / 1e6}
    )
    path.unlink()


def tus_js_upload(server: GunicornServer, path: Path, parallel: int, chunk_size: int) -> str:
    done = subprocess.run(
        [
            "node",
            str(UPLOAD_JS),
            "--endpoint",
            f"{server.url}/uploads/",
            "--file",
            str(path),
            "--parallel",
            str(parallel),
            "--chunk-size",
            str(chunk_size),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if not result["ok"]:
        raise RuntimeError(f"tus-js-client: {result} {done.stderr}")
    return str(result["url"]).rsplit("/", 1)[1]
