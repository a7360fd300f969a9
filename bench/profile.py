"""Where a worker's CPU goes: flame graphs of one gunicorn worker (py-spy, on-CPU samples of all
its threads) while it stores a big file and while it serves it, on moto or Ceph's RGW.

    python -m bench.profile --s3 rgw              # docs/flame-read-rgw.svg, flame-write-rgw.svg
    python -m bench.profile --s3 rgw --gil        # only what holds the GIL: …-rgw-gil.svg
    python -m bench.profile --s3 rgw --out /tmp   # elsewhere

The service is the benchmark's (bench/harness.py); the client is curl for the reads and the
harness for the write, so neither is in the picture. docs/performance.md says what the graphs
showed.
"""

from __future__ import annotations

import argparse
import html
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench.harness import FULL, MIB, Harness, curl_bytes_per_second, repeated, store_file
from bench.memory import worker_pid
from testing.conditions import eventually
from testing.servers import PROJECT_DIR

SAMPLES_PER_SECOND = 200


def profiled(
    pid: int, output: Path, title: str, work: Callable[[], object], gil: bool = False
) -> None:
    """Run `work` while py-spy samples process `pid`; the flame graph, titled, into `output`.
    Without `gil`, every thread not waiting on I/O is sampled (running Python, in C without the
    GIL — hashing, copying — or waiting for the GIL); with it, only the thread holding the GIL."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    log_path = output.with_suffix(".log")
    with log_path.open("w") as log:
        recorder = subprocess.Popen(
            [
                py_spy, "record", "--pid", str(pid), "--output", str(output),
                "--rate", str(SAMPLES_PER_SECOND), "--nonblocking", *(["--gil"] if gil else []),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        eventually(lambda: "Sampling" in log_path.read_text() or recorder.poll() is not None)
        if recorder.poll() is not None:
            raise RuntimeError(f"py-spy did not start:\n{log_path.read_text()}")
        work()
    finally:
        recorder.send_signal(signal.SIGINT)  # py-spy writes the graph when interrupted
        recorder.wait(timeout=120)
    if not output.exists():
        raise RuntimeError(f"py-spy wrote no {output}:\n{log_path.read_text()}")
    log_path.unlink()
    # py-spy titles the graph with its own command line.
    graph = re.sub(
        r'(<text id="title"[^>]*>)[^<]*', rf"\g<1>{html.escape(title)}", output.read_text()
    )
    output.write_text(graph)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--s3", choices=("moto", "rgw"), default="rgw")
    parser.add_argument("--out", type=Path, default=PROJECT_DIR / "docs")
    parser.add_argument("--size-mib", type=int, default=1024, help="the file (default 1 GiB)")
    parser.add_argument("--reads", type=int, default=3, help="reads of it profiled (default 3)")
    parser.add_argument("--gil", action="store_true", help="only samples holding the GIL")
    args = parser.parse_args()
    suffix = f"{args.s3}-gil" if args.gil else args.s3
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labdropbox.settings")
    size, block = args.size_mib * MIB, os.urandom(MIB)
    with tempfile.TemporaryDirectory(prefix="labdropbox-profile-") as folder:
        harness = Harness(FULL, Path(folder), [], args.s3)
        try:
            with harness.service("profile", **harness.s3_settings("bench-profile")) as server:
                pid = worker_pid(server.process.pid)
                store_file(server, "warm", block, len(block))
                ids: list[str] = []
                profiled(
                    pid,
                    args.out / f"flame-write-{suffix}.svg",
                    f"A worker's CPU: PUT /write of {args.size_mib} MiB on {args.s3}",
                    lambda: ids.append(store_file(server, "big", repeated(size, block), size)),
                    args.gil,
                )
                url = f"{server.url}/read/{ids[0]}"
                profiled(
                    pid,
                    args.out / f"flame-read-{suffix}.svg",
                    f"A worker's CPU: {args.reads} × GET /read of {args.size_mib} MiB on {args.s3}",
                    lambda: [curl_bytes_per_second(url) for _ in range(args.reads)],
                    args.gil,
                )
        finally:
            harness.close()
    print(f"wrote {args.out}/flame-{{write,read}}-{suffix}.svg")


if __name__ == "__main__":
    main()
