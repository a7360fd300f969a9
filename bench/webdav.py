"""WebDAV against nginx: rclone copying one big file and many small ones up to /dav/ and back,
÷ the same copies to and from nginx's WebDAV (Debian's http_dav module with the dav-ext module)
serving a folder on the same disk; and a PROPFIND of a folder of 10,000 entries: how long it
takes and how far the worker's memory rises while it streams the answer."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from itertools import count
from pathlib import Path

from bench.harness import MIB, SMOKE, Harness, medians_interleaved
from bench.memory import peak_rss_growth_mib, worker_pid
from bench.tree import filled_folder
from testing.nginx import NginxServer, nginx_binary
from testing.servers import GunicornServer

FIGURES = [
    "webdav_big_up_vs_nginx",
    "webdav_big_up_on_disk_vs_nginx",
    "webdav_big_down_vs_nginx",
    "webdav_small_up_vs_nginx",
    "webdav_small_up_on_disk_vs_nginx",
    "webdav_small_down_vs_nginx",
    "propfind_10k_seconds",
    "propfind_10k_rss_growth_mib",
]
DAV_EXT = Path("/usr/lib/nginx/modules/ngx_http_dav_ext_module.so")
BIG = {True: 8 * MIB, False: 1024 * MIB}  # by smoke
SMALL_FILES = {True: 20, False: 1000}
SMALL_SIZE = 64 * 1024
PROPFIND_ENTRIES = {True: 500, False: 10_000}


def measure_webdav(harness: Harness) -> None:
    try:
        nginx_binary()
        if not DAV_EXT.exists():
            raise RuntimeError("nginx's dav-ext module is missing (make bench installs it)")
    except RuntimeError as exc:
        harness.results.notes.update(dict.fromkeys(FIGURES[:6], str(exc)))
    else:
        copies(harness)
    with harness.service("webdav-propfind") as server:
        propfind(harness, server)


def copies(harness: Harness) -> None:
    smoke = harness.plan == SMOKE
    local = harness.folder / "webdav-local"
    big, small = local / "big", local / "small"
    write_files(big, 1, BIG[smoke])
    write_files(small, SMALL_FILES[smoke], SMALL_SIZE)
    raw = harness.results.raw.setdefault("webdav", {})
    with harness.service("webdav") as server, dav_nginx(harness.folder) as nginx_url:
        for label, folder in (("big", big), ("small", small)):
            raw[label] = copy_seconds(harness, server, nginx_url, folder, label)
            seconds = raw[label]
            figures = harness.results.figures
            for figure, measured in (
                ("up", seconds["upload_seconds"]),
                ("up_on_disk", seconds["upload_on_disk_seconds"]),
                ("down", seconds["download_seconds"]),
            ):
                figures[f"webdav_{label}_{figure}_vs_nginx"] = (
                    measured["nginx"] / measured["service"]
                )


def copy_seconds(
    harness: Harness, server: GunicornServer, nginx_url: str, folder: Path, label: str
) -> dict[str, object]:
    """rclone copying `folder` up to the service and to nginx, and back, in seconds (medians
    of interleaved runs)."""
    ours = f"{server.url}/dav/"
    on_disk: dict[str, list[float]] = {"service": [], "nginx": []}
    up = medians_interleaved(
        harness.plan.repeats,
        partial(upload_seconds, ours, folder, server, on_disk["service"]),
        partial(upload_seconds, nginx_url, folder, None, on_disk["nginx"]),
    )
    for url in (ours, nginx_url):  # what the downloads read, put there once
        rclone("copy", str(folder), remote(url, f"down-{label}"))
    down = medians_interleaved(
        harness.plan.repeats,
        partial(download_seconds, ours, f"down-{label}", harness.folder),
        partial(download_seconds, nginx_url, f"down-{label}", harness.folder),
    )
    return {
        "bytes": sum(path.stat().st_size for path in folder.iterdir()),
        "files": len(list(folder.iterdir())),
        "upload_seconds": {"service": up[0], "nginx": up[1]},
        "upload_on_disk_seconds": {
            name: statistics.median(samples) for name, samples in on_disk.items()
        },
        "download_seconds": {"service": down[0], "nginx": down[1]},
    }


def write_files(folder: Path, files: int, size: int) -> None:
    folder.mkdir(parents=True)
    block = os.urandom(min(size, MIB))
    for number in range(files):
        with (folder / f"f{number:05d}.bin").open("wb") as out:
            for start in range(0, size, len(block)):
                out.write(block[: size - start])


@contextmanager
def dav_nginx(folder: Path) -> Iterator[str]:
    """nginx's WebDAV over a folder, as a plain WebDAV server is set up; yields its URL."""
    root = folder / "nginx-dav"
    root.mkdir()
    # Started as root, nginx's workers run unprivileged: they must be able to write here.
    for path in (folder, root):
        path.chmod(0o777)
    block = f"""server {{
        listen 127.0.0.1:{{port}}; root {root}; client_max_body_size 0;
        location / {{
            dav_methods PUT DELETE MKCOL COPY MOVE; dav_ext_methods PROPFIND OPTIONS;
            create_full_put_path on; dav_access user:rw group:rw all:rw;
        }}
    }}"""
    server = NginxServer(folder / "nginx", block, modules=(str(DAV_EXT),))
    try:
        yield f"{server.url}/"
    finally:
        server.stop()


TARGETS = count()


def remote(url: str, path: str) -> str:
    """An rclone remote given on the command line: WebDAV at `url` (no login: both are open)."""
    return f":webdav,url='{url}',vendor=other:{path}"


def rclone(*args: str) -> None:
    subprocess.run(["rclone", "--config", "/dev/null", "-q", *args], check=True, timeout=1800)


def upload_seconds(
    url: str, folder: Path, server: GunicornServer | None, on_disk: list[float]
) -> float:
    """rclone copy of `folder` to a new place, in seconds. `on_disk` gets the seconds until the
    bytes are also on the disk: the service's answer waits for that (it fsyncs every chunk
    before it commits), nginx's does not (the kernel writes its file later), so the copy is
    followed by a sync of everything written. Then the copy is removed (from the service:
    purged from the trash too), so that the disk does not fill."""
    os.sync()  # nothing written before is left for this measurement's sync
    target = remote(url, f"up-{next(TARGETS)}")
    started = time.perf_counter()
    rclone("copy", str(folder), target)
    seconds = time.perf_counter() - started
    os.sync()
    on_disk.append(time.perf_counter() - started)
    rclone("purge", target)
    if server is not None:
        server.manage("shell", "-c", EMPTY_TRASH)
    return seconds


EMPTY_TRASH = """
from files.models import TrashEntry
from files.tree.trash import purge_item
for item in TrashEntry.objects.all():
    purge_item(item)
"""


def download_seconds(url: str, path: str, folder: Path) -> float:
    local = folder / f"download-{next(TARGETS)}"
    started = time.perf_counter()
    rclone("copy", remote(url, path), str(local))
    seconds = time.perf_counter() - started
    shutil.rmtree(local)
    return seconds


def propfind(harness: Harness, server: GunicornServer) -> None:
    """PROPFIND depth 1 of a folder of PROPFIND_ENTRIES entries, read as it streams."""
    entries = PROPFIND_ENTRIES[harness.plan == SMOKE]
    filled_folder(server, "/wide", entries)
    pid = worker_pid(server.process.pid)
    answer: list[tuple[int, int]] = []
    first_growth = peak_rss_growth_mib(pid, lambda: answer.append(propfind_responses(server)))
    listed, answer_bytes = answer[0]
    if listed != entries + 1:
        raise RuntimeError(f"PROPFIND listed {listed} entries of {entries + 1}")
    samples = []
    for _ in range(harness.plan.repeats):
        started = time.perf_counter()
        propfind_responses(server)
        samples.append(time.perf_counter() - started)
    figures = harness.results.figures
    figures["propfind_10k_seconds"] = sorted(samples)[len(samples) // 2]
    figures["propfind_10k_rss_growth_mib"] = peak_rss_growth_mib(
        pid, lambda: propfind_responses(server)
    )
    harness.results.raw.setdefault("webdav", {})["propfind"] = {
        "entries": entries,
        "answer_bytes": answer_bytes,
        # The first PROPFIND of the worker's life: its first allocations included.
        "first_rss_growth_mib": first_growth,
    }


def propfind_responses(server: GunicornServer) -> tuple[int, int]:
    """How many <D:response> elements a PROPFIND of /wide/ streams back, in how many bytes."""
    connection = server.connection(timeout=600)
    connection.request("PROPFIND", "/dav/wide/", headers={"Depth": "1"})
    response = connection.getresponse()
    found, tail, received = 0, b"", 0
    while piece := response.read(65536):
        received += len(piece)
        text = tail + piece
        found += text.count(b"<D:response>")
        tail = text[-11:]
    connection.close()
    if response.status != 207:
        raise RuntimeError(f"PROPFIND: {response.status}")
    return found, received
