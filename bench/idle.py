"""How many idle connections the service holds, and what they cost the clients that want
something: gunicorn (one worker, embedded) with CONNECTIONS idle connections held against it from
three loopback addresses (reopened as the worker closes them), while fresh connections from four
addresses time `/health` and a 1 KiB read.

    python -m bench.idle --connections 5000             # the default limit, 10,000
    python -m bench.idle --connections 15000            # past the limit: connections are shed
    python -m bench.idle --connections 5000 --limit 1000

Prints the probes' latency percentiles and the worker's resident memory before and after.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import tempfile
from pathlib import Path

from testing.conditions import eventually
from testing.idle import IdleConnections, loopback_sources, probe
from testing.servers import GunicornServer
from testing.uploads import upload

PROBE_ROUNDS = 40


def workers_rss_mib(master: int) -> float:
    children = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True)
    total_kib = 0
    for pid in children.stdout.split():
        status = Path(f"/proc/{pid}/status").read_text()
        total_kib += int(status.split("VmRSS:")[1].split()[0])
    return total_kib / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--connections", type=int, default=5000, help="idle ones to hold")
    parser.add_argument("--limit", type=int, help="GUNICORN_WORKER_CONNECTIONS (default: its own)")
    args = parser.parse_args()
    # This process holds the idle connections: as many descriptors as the system allows.
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    settings = {"MINIO_ENDPOINT": "", "WEB_CONCURRENCY": "1", "LOG_LEVEL": "WARNING"}
    if args.limit:
        settings["GUNICORN_WORKER_CONNECTIONS"] = str(args.limit)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labdropbox.settings")
    folder = Path(tempfile.mkdtemp(prefix="labdropbox-idle-"))
    server = GunicornServer(folder, 30.0, **settings)
    try:
        file_id = upload(server, b"x" * 1024)["file_id"]
        before = workers_rss_mib(server.process.pid)
        sources = loopback_sources(4)
        idle = IdleConnections(server.port, args.connections, sources[:3])
        try:
            eventually(lambda: idle.opened >= args.connections, timeout=300)
            seconds = sorted(
                probe(server.port, path, source)
                for _ in range(PROBE_ROUNDS)
                for source in sources
                for path in ("/health", f"/read/{file_id}")
            )
            held, opened = idle.held, idle.opened
            after = workers_rss_mib(server.process.pid)
        finally:
            idle.stop()
    finally:
        server.stop()
    p99 = seconds[int(len(seconds) * 0.99)]
    print(
        f"{args.connections} idle connections asked for ({held} held, {opened} opened in all); "
        f"{len(seconds)} probes: p50 {statistics.median(seconds) * 1000:.1f} ms, "
        f"p99 {p99 * 1000:.1f} ms, max {seconds[-1] * 1000:.1f} ms; "
        f"worker RSS {before:.0f} -> {after:.0f} MiB"
    )


if __name__ == "__main__":
    main()
