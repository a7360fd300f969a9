"""The benchmark harness: every measurement side by side, in one run, on one machine.

    python -m bench.run            # make bench: the full run, writes bench/results.json
    python -m bench.run --smoke    # make bench-smoke: tiny sizes, checks every figure is produced

It starts what it needs on loopback — a moto S3 server, a latency-injecting proxy in front of it
(testing/faultproxy.py, in its own process), gunicorn with deploy/gunicorn.conf.py, nginx — and
compares the service with the same work done directly (boto3 on the same S3 server, nginx on the
same bytes, a trivial Django view on the same gunicorn config). Every figure is a ratio or a
latency taken in this run, each measurement the median of repeated runs. MariaDB and Redis rows
use the database and Redis that TIDB_* and REDIS_* point at (`make bench` sets them).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from testing.mysql import recreate_mysql_database
from testing.servers import (
    EMBEDDED,
    PROJECT_DIR,
    GunicornServer,
    MotoServer,
    free_port,
    stop,
    wait_until_healthy,
)

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


FULL = Plan(MIB, 0.100, 256 * MIB, 1024 * MIB, 5, 5, 200, (1, 2, 5, 10, 20, 50, 100))
SMOKE = Plan(64 * 1024, 0.020, 4 * MIB, 8 * MIB, 1, 1, 20, (1, 10, 100))

# figure -> (comparison, goal); None: reported without a goal (docs/architecture.md explains them).
GOALS: dict[str, tuple[str, float] | None] = {
    "parallel_read_ratio_10": ("<=", 1.6),
    "latency_read_vs_direct_10": ("<=", 1.15),
    "s3_direct_read_ratio_10": None,
    "parallel_speedup_10": None,
    "parallel_speedup_100": None,
    "upload_rss_growth_mib": ("<=", 64),
    "download_rss_growth_mib": ("<=", 64),
    "download_vs_s3_direct": (">=", 0.8),
    "upload_vs_s3_direct": (">=", 0.8),
    "fs_download_vs_nginx": (">=", 0.35),
    "small_read_vs_floor": (">=", 0.5),
    "small_read_vs_floor_s3_redis": None,
    "cache_hit_p50_ms": None,
    "cache_hit_p99_ms": None,
    "cache_miss_p50_ms": None,
    "cache_miss_p99_ms": None,
}


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


def delete(port: int, file_id: str) -> None:
    """Delete a file through the API (the S3 server then frees its memory)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    connection.request("DELETE", f"/files/{file_id}")
    status = connection.getresponse().status
    connection.close()
    if status != 204:
        raise RuntimeError(f"delete of {file_id}: {status}")


# --- HTTP ----------------------------------------------------------------------------------------


def upload(port: int, name: str, body, length: int) -> str:
    """PUT a body (bytes, or an iterable of bytes for `length` bytes); the new file's id."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    connection.request("PUT", f"/write?name={name}", body=body, headers={"Content-Length": length})
    response = connection.getresponse()
    answer = response.read()
    connection.close()
    if response.status != 201:
        raise RuntimeError(f"upload failed: {response.status} {answer[:300]!r}")
    return json.loads(answer)["file_id"]


def read_seconds(port: int, file_id: str) -> float:
    """Time to read a whole file, received into a reused buffer and dropped."""
    buffer = bytearray(MIB)
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    connection.request("GET", f"/read/{file_id}")
    response = connection.getresponse()
    expected, received = int(response.getheader("Content-Length")), 0
    while count := response.readinto(buffer):
        received += count
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


def wrk_requests_per_second(url: str, seconds: int, connections: int = 8) -> float:
    done = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", url],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    )
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", done.stdout)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} error responses under load")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", done.stdout).group(1))


def pieces(length: int, block: bytes) -> Iterator[bytes]:
    """`length` bytes made of `block` repeated: a large body that is never in memory whole."""
    sent = 0
    while sent < length:
        part = block[: length - sent]
        sent += len(part)
        yield part


# --- memory ------------------------------------------------------------------------------------


def worker_pid(master_pid: int) -> int:
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    if len(children) != 1:
        raise RuntimeError(f"expected one gunicorn worker, found {children}")
    return int(children[0])


def rss_kib(pid: int, field: str) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE).group(1))


def peak_rss_growth_mib(pid: int, work: Callable[[], object]) -> float:
    """How far the process's resident memory rose above where it started, during work()."""
    baseline = rss_kib(pid, "VmRSS")
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # restart the kernel's peak (VmHWM)
        sampled = False
    except OSError:  # not allowed here: sample instead
        sampled = True
    peak = [baseline]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.005):
            peak[0] = max(peak[0], rss_kib(pid, "VmRSS"))

    sampler = threading.Thread(target=sample, daemon=True)
    if sampled:
        sampler.start()
    try:
        work()
    finally:
        done.set()
    top = peak[0] if sampled else rss_kib(pid, "VmHWM")
    return (top - baseline) / 1024


# --- the harness ---------------------------------------------------------------------------------


class Harness:
    def __init__(self, plan: Plan, folder: Path) -> None:
        self.plan = plan
        self.folder = folder
        self.moto = MotoServer(folder / "moto.log")
        self.proxy_port = free_port()
        self.proxy = subprocess.Popen(
            [
                sys.executable, "-m", "testing.faultproxy",
                "--target", self.moto.endpoint,
                "--port", str(self.proxy_port),
                "--latency-ms", str(plan.latency * 1000),
            ],
            cwd=PROJECT_DIR,
            stdout=subprocess.PIPE,
        )  # fmt: skip
        self.proxy.stdout.readline()  # "forwarding …": it listens
        self.figures: dict[str, float | None] = dict.fromkeys(GOALS)
        self.notes: dict[str, str] = {}
        self.raw: dict[str, object] = {}

    def close(self) -> None:
        stop(self.proxy)
        self.moto.stop()

    @contextmanager
    def service(self, name: str, **env: str) -> Iterator[GunicornServer]:
        data = self.folder / env.pop("DATA", name)
        settings = {
            **EMBEDDED,
            "CHUNK_SIZE_BYTES": str(self.plan.chunk_size),
            "MAX_UPLOAD_MB": str(2 * self.plan.rss_file // MIB + 1),
            "LOG_LEVEL": "WARNING",
            **env,
        }
        server = GunicornServer(data, **settings)
        try:
            yield server
        finally:
            server.stop()

    def s3(self, endpoint: str):
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3",
            endpoint_url=f"http://{endpoint}",
            aws_access_key_id="minioadmin",
            aws_secret_access_key="minioadmin",
            region_name="us-east-1",
            config=Config(
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                max_pool_connections=64,
                s3={"addressing_style": "path"},
            ),
        )

    def chunk_keys(self, server: GunicornServer, file_id: str) -> list[str]:
        status, _, body = server.request("GET", f"/files/{file_id}")
        return [chunk["key"] for chunk in json.loads(body)["chunks"]]

    # --- 1. latency hiding ---------------------------------------------------------------------

    def latency_hiding(self) -> None:
        plan = self.plan
        behind_proxy = {
            "MINIO_ENDPOINT": f"127.0.0.1:{self.proxy_port}",
            "MINIO_BUCKET": "bench-latency",
            "DATA": "latency",
        }
        counts = sorted({1, 10, 100, *plan.curve})
        curve: dict[str, dict[int, float]] = {}
        client = self.s3(f"127.0.0.1:{self.proxy_port}")
        with self.service("latency", **behind_proxy) as server, ThreadPoolExecutor(16) as pool:
            ids = {}
            for count in counts:
                size = count * plan.chunk_size
                ids[count] = upload(server.port, f"c{count}", os.urandom(size), size)
                read_seconds(server.port, ids[count])  # metadata cached, connections warm
            keys = {count: self.chunk_keys(server, ids[count]) for count in (1, 10)}

            def fetch(key: str) -> bytes:
                return client.get_object(Bucket="bench-latency", Key=key)["Body"].read()

            def direct(count: int) -> float:
                """boto3 fetching the same objects, READ_CONCURRENCY at a time."""
                started = time.perf_counter()
                list(pool.map(fetch, keys[count]))
                return time.perf_counter() - started

            direct(10)  # warm connections, as the service's are
            *times, direct_1, direct_10 = medians_interleaved(
                plan.repeats,
                *[lambda c=count: read_seconds(server.port, ids[c]) for count in counts],
                lambda: direct(1),
                lambda: direct(10),
            )
            curve["parallel"] = dict(zip(counts, times, strict=True))
        with self.service("sequential", READ_CONCURRENCY="1", **behind_proxy) as server:
            for count in counts:
                read_seconds(server.port, ids[count])
            times = medians_interleaved(
                plan.repeats,
                *[lambda c=count: read_seconds(server.port, ids[c]) for count in counts],
            )
            curve["sequential"] = dict(zip(counts, times, strict=True))
        parallel, sequential = curve["parallel"], curve["sequential"]
        self.figures["parallel_read_ratio_10"] = parallel[10] / parallel[1]
        self.figures["latency_read_vs_direct_10"] = parallel[10] / direct_10
        self.figures["parallel_speedup_10"] = sequential[10] / parallel[10]
        self.figures["parallel_speedup_100"] = sequential[100] / parallel[100]
        # The same ratio for boto3 alone: what the S3 server's own bandwidth allows.
        self.figures["s3_direct_read_ratio_10"] = direct_10 / direct_1
        self.raw["read_seconds"] = curve
        self.raw["s3_direct_seconds"] = {"1": direct_1, "10": direct_10}

    # --- 2. memory -----------------------------------------------------------------------------

    def memory(self) -> None:
        size = self.plan.rss_file
        block = os.urandom(MIB)
        with self.service(
            "memory", MINIO_ENDPOINT=self.moto.endpoint, MINIO_BUCKET="bench-rss"
        ) as server:
            pid = worker_pid(server.process.pid)
            upload(server.port, "warm", block, len(block))  # imports, pools, first allocations
            result = {}
            growth = peak_rss_growth_mib(
                pid, lambda: result.update(id=upload(server.port, "big", pieces(size, block), size))
            )
            self.figures["upload_rss_growth_mib"] = growth
            self.figures["download_rss_growth_mib"] = peak_rss_growth_mib(
                pid, lambda: read_seconds(server.port, result["id"])
            )
            delete(server.port, result["id"])  # moto keeps objects in memory

    # --- 3. throughput -------------------------------------------------------------------------

    def throughput(self) -> None:
        plan, size = self.plan, self.plan.big_file
        data = os.urandom(size)
        direct_env = {"MINIO_ENDPOINT": self.moto.endpoint, "MINIO_BUCKET": "bench-throughput"}
        with self.service("throughput", **direct_env) as server:
            ids = []

            def service_upload() -> float:
                started = time.perf_counter()
                ids.append(upload(server.port, "big", data, size))
                return size / (time.perf_counter() - started)

            up = median_of(plan.repeats, service_upload)
            for file_id in ids[:-1]:
                delete(server.port, file_id)
            url = f"http://127.0.0.1:{server.port}/read/{ids[-1]}"
            curl_bytes_per_second(url)
            down = median_of(plan.repeats, lambda: curl_bytes_per_second(url))
            keys = self.chunk_keys(server, ids[-1])
        client = self.s3(self.moto.endpoint)
        chunks = [data[i : i + plan.chunk_size] for i in range(0, size, plan.chunk_size)]

        def direct(workers: int, job: Callable) -> float:
            with ThreadPoolExecutor(workers) as pool:
                started = time.perf_counter()
                list(pool.map(job, range(len(chunks))))
                return size / (time.perf_counter() - started)

        def put(index: int) -> None:
            client.put_object(Bucket="bench-throughput", Key=f"direct/{index}", Body=chunks[index])

        def get(index: int) -> bytes:
            return client.get_object(Bucket="bench-throughput", Key=keys[index])["Body"].read()

        direct_up = median_of(plan.repeats, lambda: direct(4, put))  # UPLOAD_CONCURRENCY
        direct_down = median_of(plan.repeats, lambda: direct(16, get))  # READ_CONCURRENCY
        self.figures["upload_vs_s3_direct"] = up / direct_up
        self.figures["download_vs_s3_direct"] = down / direct_down
        self.raw["megabytes_per_second"] = {
            "service_upload": up / 1e6,
            "s3_direct_upload": direct_up / 1e6,
            "service_download": down / 1e6,
            "s3_direct_download": direct_down / 1e6,
        }
        self.filesystem_vs_nginx(data)

    def filesystem_vs_nginx(self, data: bytes) -> None:
        nginx = shutil.which("nginx") or next(
            (path for path in ("/usr/sbin/nginx",) if Path(path).exists()), None
        )
        if nginx is None:
            self.notes["fs_download_vs_nginx"] = "nginx is not installed (make bench installs it)"
            return
        with self.service("filesystem") as server, self.nginx(nginx, data) as static_url:
            file_id = upload(server.port, "big", data, len(data))
            url = f"http://127.0.0.1:{server.port}/read/{file_id}"
            curl_bytes_per_second(url)
            curl_bytes_per_second(static_url)
            service, static = medians_interleaved(
                self.plan.repeats,
                lambda: curl_bytes_per_second(url),
                lambda: curl_bytes_per_second(static_url),
            )
        self.figures["fs_download_vs_nginx"] = service / static
        self.raw["megabytes_per_second"]["service_filesystem_download"] = service / 1e6
        self.raw["megabytes_per_second"]["nginx_static"] = static / 1e6

    @contextmanager
    def nginx(self, binary: str, data: bytes) -> Iterator[str]:
        root = self.folder / "nginx"
        (root / "www").mkdir(parents=True, exist_ok=True)
        (root / "www" / "big.bin").write_bytes(data)
        # Started as root, nginx serves as an unprivileged user: it must be able to read these.
        for path in (self.folder, root, root / "www", root / "www" / "big.bin"):
            path.chmod(0o755)
        port = free_port()
        (root / "nginx.conf").write_text(
            f"""
            daemon off; worker_processes 1; pid {root}/nginx.pid; error_log {root}/error.log;
            events {{ worker_connections 64; }}
            http {{
                access_log off; sendfile on; tcp_nopush on;
                client_body_temp_path {root}/scratch; proxy_temp_path {root}/scratch;
                fastcgi_temp_path {root}/scratch; uwsgi_temp_path {root}/scratch;
                scgi_temp_path {root}/scratch;
                server {{ listen 127.0.0.1:{port}; root {root}/www; }}
            }}
            """
        )
        process = subprocess.Popen([binary, "-c", str(root / "nginx.conf"), "-p", str(root)])
        try:
            wait_until_healthy(process, port, "/big.bin")
            yield f"http://127.0.0.1:{port}/big.bin"
        finally:
            stop(process)

    # --- 4. small files ------------------------------------------------------------------------

    def small_files(self) -> None:
        seconds = self.plan.small_seconds
        kib = os.urandom(1024)
        floor_settings = {"DATA": "small", "DJANGO_SETTINGS_MODULE": "bench.floor_settings"}
        with self.service("small") as server, self.service("floor", **floor_settings) as floor:
            file_id = upload(server.port, "small", kib, len(kib))
            url = f"http://127.0.0.1:{server.port}/read/{file_id}"
            floor_url = f"http://127.0.0.1:{floor.port}/floor"
            read_seconds(server.port, file_id)
            service, trivial = medians_interleaved(
                self.plan.repeats,
                lambda: wrk_requests_per_second(url, seconds),
                lambda: wrk_requests_per_second(floor_url, seconds),
            )
        self.figures["small_read_vs_floor"] = service / trivial
        self.raw["small_reads_per_second"] = {"filesystem": service, "trivial_view": trivial}
        missing = [name for name in ("TIDB_HOST", "REDIS_HOST") if not os.environ.get(name)]
        if missing:
            note = f"{' and '.join(missing)} not set (make bench sets them)"
            for figure in GOALS:
                if figure.startswith(("cache_", "small_read_vs_floor_s3")):
                    self.notes[figure] = note
            return
        self.on_the_stack(kib, trivial)

    def on_the_stack(self, kib: bytes, trivial: float) -> None:
        """1 KiB reads on S3 + MariaDB + Redis: throughput, and cache hit/miss latency."""
        stack = {
            "MINIO_ENDPOINT": self.moto.endpoint,
            "MINIO_BUCKET": "bench-stack",
            "TIDB_HOST": os.environ["TIDB_HOST"],
            "REDIS_HOST": os.environ["REDIS_HOST"],
            "TIDB_DATABASE": recreate_mysql_database(os.environ, f"labdropbox_bench_{os.getpid()}"),
        }
        with self.service("stack", **stack) as server:
            ids = [
                upload(server.port, f"s{n}", kib, len(kib)) for n in range(self.plan.small_files)
            ]
            url = f"http://127.0.0.1:{server.port}/read/{ids[0]}"
            read_seconds(server.port, ids[0])
            reads = median_of(
                self.plan.repeats, lambda: wrk_requests_per_second(url, self.plan.small_seconds)
            )
            misses = [read_seconds(server.port, file_id) * 1000 for file_id in ids[1:]]
            hits = [read_seconds(server.port, file_id) * 1000 for file_id in ids[1:]]
        self.figures["small_read_vs_floor_s3_redis"] = reads / trivial
        self.raw["small_reads_per_second"]["s3_mariadb_redis"] = reads
        for name, latencies in (("hit", hits), ("miss", misses)):
            ordered = sorted(latencies)
            self.figures[f"cache_{name}_p50_ms"] = statistics.median(ordered)
            self.figures[f"cache_{name}_p99_ms"] = ordered[
                min(int(0.99 * len(ordered)), len(ordered) - 1)
            ]

    # --- report --------------------------------------------------------------------------------

    def report(self) -> dict:
        rows = {}
        for figure, goal in GOALS.items():
            value = self.figures[figure]
            met = None
            if value is not None and goal is not None:
                comparison, target = goal
                met = value <= target if comparison == "<=" else value >= target
            rows[figure] = {
                "value": None if value is None else round(value, 3),
                "goal": None if goal is None else f"{goal[0]} {goal[1]:g}",
                "met": met,
                "note": self.notes.get(figure, ""),
            }
        return rows


def machine() -> dict:
    memory = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text()).group(1)
    cpu = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text())
    return {
        "cores": os.cpu_count(),
        "cpu": cpu.group(1) if cpu else platform.processor(),
        "memory_gib": round(int(memory) / 1024 / 1024, 1),
        "python": platform.python_version(),
        "system": platform.platform(),
    }


def print_table(rows: dict) -> None:
    print(f"{'figure':32} {'value':>10} {'goal':>8}  met")  # noqa: T201
    for figure, row in rows.items():
        value = "—" if row["value"] is None else f"{row['value']:.3f}"
        met = {True: "yes", False: "NO", None: ""}[row["met"]]
        print(f"{figure:32} {value:>10} {row['goal'] or '':>8}  {met} {row['note']}")  # noqa: T201


def draw_chart(curve: dict, plan: Plan, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(7, 4.2), dpi=120)
    for label, style, legend in (
        ("sequential", "o--", "sequential fetching (READ_CONCURRENCY=1)"),
        ("parallel", "o-", "parallel fetching (READ_CONCURRENCY=16)"),
    ):
        counts = sorted(curve[label])
        axes.plot(counts, [curve[label][c] for c in counts], style, label=legend)
    axes.set_xlabel("chunks in the file (1 MiB each)")
    axes.set_ylabel("read time (s)")
    axes.set_title(f"Reading a file with {plan.latency * 1000:.0f} ms added to every S3 request")
    axes.grid(True, alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: check it all runs")
    parser.add_argument("--out", type=Path, default=PROJECT_DIR / "bench" / "results.json")
    parser.add_argument("--chart", type=Path, default=PROJECT_DIR / "docs" / "read-latency.png")
    parser.add_argument(
        "--only",
        default="latency,memory,throughput,small",
        help="comma-separated measurements to run (default: all)",
    )
    args = parser.parse_args()
    plan = SMOKE if args.smoke else FULL
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labdropbox.settings")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="labdropbox-bench-") as folder:
        harness = Harness(plan, Path(folder))
        try:
            measurements = {
                "latency": harness.latency_hiding,
                "memory": harness.memory,
                "throughput": harness.throughput,
                "small": harness.small_files,
            }
            for name in args.only.split(","):
                measurements[name]()
        finally:
            harness.close()
    rows = harness.report()
    results = {
        "smoke": args.smoke,
        "machine": machine(),
        "plan": asdict(plan),
        "seconds": round(time.monotonic() - started),
        "figures": rows,
        "raw": harness.raw,
    }
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    if "read_seconds" in harness.raw:
        draw_chart(harness.raw["read_seconds"], plan, args.chart)
    print_table(rows)
    print(f"\nwrote {args.out} and {args.chart} in {results['seconds']} s")  # noqa: T201
    unexplained = [name for name, row in rows.items() if row["value"] is None and not row["note"]]
    if unexplained or (args.smoke and any(row["value"] is None for row in rows.values())):
        raise SystemExit(
            f"figures not produced: {[n for n, r in rows.items() if r['value'] is None]}"
        )


if __name__ == "__main__":
    main()
