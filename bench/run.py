"""The benchmark harness: every measurement side by side, in one run, on one machine.

    python -m bench.run            # make bench: the full run, writes bench/results.json
    python -m bench.run --smoke    # make bench-smoke: tiny sizes, checks every figure is produced

It starts what it needs on loopback — a moto S3 server, a latency-injecting proxy in front of it
(testing/faultproxy.py, in its own process), gunicorn with deploy/gunicorn.conf.py, nginx — and
compares the service with the same work done directly (boto3 on the same S3 server, nginx on the
same bytes, a trivial Django view on the same gunicorn config). Every figure is a ratio or a
latency taken in this run, each measurement the median of repeated runs. MariaDB and Redis rows
use the database and Redis that TIDB_* and REDIS_* point at (`make bench` sets them). What each
figure means and why its goal is what it is: docs/architecture.md, "Performance goals".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import latency, memory, resumable, small, throughput, tree, webapp, webdav
from bench.harness import FULL, SMOKE, Harness, Plan
from testing.servers import PROJECT_DIR

# figure -> (comparison, goal); None: reported without a goal.
GOALS: dict[str, tuple[str, float] | None] = {
    "parallel_read_ratio_10": ("<=", 1.6),
    "latency_read_vs_direct_10": ("<=", 1.15),
    "s3_direct_read_ratio_10": None,
    "parallel_speedup_10": None,
    "parallel_speedup_100": None,
    "upload_rss_growth_mib": ("<=", 64),
    "download_rss_growth_mib": ("<=", 64),
    # The chunk budget (CHUNK_MEMORY_MB, 128 by default) plus 64 MiB.
    "concurrent_reads_rss_growth_mib": ("<=", 128 + 64),
    "download_vs_s3_direct": (">=", 0.8),
    # ÷ boto3 that checks each chunk's SHA-256 too, as the service does.
    "download_vs_s3_direct_sha256": (">=", 0.95),
    # The service's CPU seconds per GiB read ÷ that careful boto3 client's.
    "read_cpu_per_gib_vs_sha256_client": ("<=", 1.2),
    "upload_vs_s3_direct": (">=", 0.8),
    "fs_download_vs_nginx": (">=", 0.35),
    # The price of reach: chunks through django-storages' S3Storage ÷ the boto3 store.
    "django_s3_download_vs_boto3": (">=", 0.5),
    "django_s3_upload_vs_boto3": (">=", 0.5),
    "tus_upload_vs_write": (">=", 0.85),
    "tus_upload_rss_growth_mib": ("<=", 64),
    # What 4 parallel uploads buy: their final concatenation re-reads parts 2-4 to hash them.
    "tus_js_parallel_4_vs_1": None,
    "small_read_vs_floor": (">=", 0.5),
    # A token check costs no query while the token is cached.
    "small_read_token_vs_open": (">=", 0.9),
    # Metrics cost at most 3% of a small read's time.
    "small_read_metrics_on_vs_off": (">=", 0.97),
    "small_read_vs_floor_s3_redis": None,
    # The stack's 1 KiB reads ÷ boto3's GetObject of the same objects on the same S3 server:
    # reads a second with as many clients, and the p99 of one after another.
    "small_read_vs_s3_get": (">=", 0.6),
    "small_read_p99_vs_s3_get_p99": ("<=", 1.5),
    "cache_hit_p50_ms": None,
    "cache_hit_p99_ms": None,
    "cache_miss_p50_ms": None,
    "cache_miss_p99_ms": None,
    # The tree: each the cost of more work ÷ the cost of less (1: it does not grow).
    "folder_deep_page_vs_first": ("<=", 1.5),
    "copy_big_vs_small": ("<=", 2),
    "move_folder_10k_vs_1": ("<=", 5),
    "path_put_vs_name_put": (">=", 0.9),
    # WebDAV: rclone to and from /dav/ ÷ to and from nginx's WebDAV on the same disk (rates).
    "webdav_big_up_vs_nginx": (">=", 0.5),
    # The same, each until the bytes are on disk (the service's 201 waits for it; nginx's not).
    "webdav_big_up_on_disk_vs_nginx": (">=", 0.5),
    "webdav_big_down_vs_nginx": (">=", 0.5),
    "webdav_small_up_vs_nginx": (">=", 0.3),
    "webdav_small_up_on_disk_vs_nginx": (">=", 0.3),
    "webdav_small_down_vs_nginx": (">=", 0.3),
    "propfind_10k_seconds": None,
    # The answer is streamed: the worker's memory does not grow with the folder.
    "propfind_10k_rss_growth_mib": ("<=", 16),
    # The web app: a big upload through the page (tus-js-client in Chromium) ÷ tuspy's.
    "web_upload_vs_tuspy": (">=", 0.7),
}

MEASUREMENTS: dict[str, tuple[list[str], Callable[[Harness], None]]] = {
    "latency": (latency.FIGURES, latency.measure_latency_hiding),
    "memory": (memory.FIGURES[:2], memory.measure_memory),
    "concurrent": (memory.FIGURES[2:], memory.measure_concurrent_reads),
    "throughput": (throughput.FIGURES, throughput.measure_throughput),
    "resumable": (resumable.FIGURES, resumable.measure_resumable),
    "small": (small.FIGURES, small.measure_small_files),
    "tree": (tree.FIGURES, tree.measure_tree),
    "webdav": (webdav.FIGURES, webdav.measure_webdav),
    "webapp": (webapp.FIGURES, webapp.measure_webapp),
}


def run_measurements(plan: Plan, names: list[str], s3_kind: str) -> Harness:
    with tempfile.TemporaryDirectory(prefix="labdropbox-bench-") as folder:
        harness = Harness(plan, Path(folder), list(GOALS), s3_kind)
        try:
            for name in names:
                MEASUREMENTS[name][1](harness)
        finally:
            harness.close()
    return harness


def report(harness: Harness) -> dict[str, dict[str, Any]]:
    """Each figure with its value, goal, whether it was met, and a note when it is missing."""
    rows = {}
    for figure, goal in GOALS.items():
        value = harness.results.figures.get(figure)
        met = None
        if value is not None and goal is not None:
            comparison, target = goal
            met = value <= target if comparison == "<=" else value >= target
        rows[figure] = {
            "value": None if value is None else round(value, 3),
            "goal": None if goal is None else f"{goal[0]} {goal[1]:g}",
            "met": met,
            "note": harness.results.notes.get(figure, ""),
        }
    return rows


def machine() -> dict[str, Any]:
    memory_kib = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text())
    cpu = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text())
    return {
        "cores": os.cpu_count(),
        "cpu": cpu.group(1) if cpu else platform.processor(),
        "memory_gib": round(int(memory_kib.group(1)) / 1024 / 1024, 1) if memory_kib else None,
        "python": platform.python_version(),
        "system": platform.platform(),
    }


def print_table(rows: dict[str, dict[str, Any]]) -> None:
    print(f"{'figure':32} {'value':>10} {'goal':>8}  met")
    for figure, row in rows.items():
        value = "—" if row["value"] is None else f"{row['value']:.3f}"
        met = {True: "yes", False: "NO", None: ""}[row["met"]]
        print(f"{figure:32} {value:>10} {row['goal'] or '':>8}  {met} {row['note']}")


def draw_chart(curve: dict[str, dict[int, float]], plan: Plan, path: Path) -> None:
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


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: check it all runs")
    parser.add_argument(
        "--s3",
        choices=("moto", "rgw"),
        default="moto",
        help="the S3 server: moto, or Ceph's RADOS Gateway (a real S3; Debian's ceph packages)",
    )
    parser.add_argument("--out", type=Path, help="default: bench/results.json (-rgw with --s3 rgw)")
    parser.add_argument("--chart", type=Path, help="default: docs/read-latency.png (-rgw …)")
    parser.add_argument(
        "--only",
        default=",".join(MEASUREMENTS),
        help=f"comma-separated measurements to run (default: all of {', '.join(MEASUREMENTS)})",
    )
    return parser.parse_args()


def main() -> None:
    args = parse_arguments()
    suffix = "" if args.s3 == "moto" else f"-{args.s3}"
    args.out = args.out or PROJECT_DIR / "bench" / f"results{suffix}.json"
    args.chart = args.chart or PROJECT_DIR / "docs" / f"read-latency{suffix}.png"
    plan = SMOKE if args.smoke else FULL
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labdropbox.settings")
    started = time.monotonic()
    harness = run_measurements(plan, args.only.split(","), args.s3)
    rows = report(harness)
    results = {
        "smoke": args.smoke,
        "s3": args.s3,
        "machine": machine(),
        "plan": asdict(plan),
        "seconds": round(time.monotonic() - started),
        "figures": rows,
        "raw": harness.results.raw,
    }
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    if "read_seconds" in harness.results.raw:
        draw_chart(harness.results.raw["read_seconds"], plan, args.chart)
    print_table(rows)
    print(f"\nwrote {args.out} and {args.chart} in {results['seconds']} s")
    missing = [name for name, row in rows.items() if row["value"] is None]
    unexplained = [name for name in missing if not rows[name]["note"]]
    if unexplained or (args.smoke and missing):
        raise SystemExit(f"figures not produced: {missing}")


if __name__ == "__main__":
    main()
