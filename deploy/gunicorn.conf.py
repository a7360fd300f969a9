"""gunicorn settings shared by `make run`, the Dockerfile and the benchmark harness.

Guarded gthread workers: each worker process serves GUNICORN_THREADS requests at once, and chunk
I/O runs on a per-process thread pool beside them. The app is loaded in each worker after the
fork, so clients, pools and tracing are created per process.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import sys
import tempfile
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024
sys.path.insert(0, str(PROJECT_DIR))

from django.core.exceptions import ImproperlyConfigured  # noqa: E402

from labdropbox.env import env_int, env_str  # noqa: E402

chdir = str(PROJECT_DIR)
wsgi_app = "labdropbox.wsgi:application"
bind = [f"{env_str('SERVICE_HOST', '127.0.0.1')}:{env_int('SERVICE_PORT', 8080, 1, 65535)}"]

# gthread, made safe against slow and idle clients (request-head deadline, a minimum transfer
# rate, liveness probes on threads of their own): see labdropbox/gunicorn_worker.py.
worker_class = "labdropbox.gunicorn_worker.GuardedThreadWorker"
# Many threads: one held by a slow client is held for a bounded time, and memory is bounded by
# the chunk budget (CHUNK_MEMORY_MB), not by the number of threads.
threads = env_int("GUNICORN_THREADS", 256, minimum=1)
# Connections a worker holds at once; an idle one costs a socket (about 2 KiB), not a thread,
# and at the limit the longest-idle one makes room for a new one (labdropbox/gunicorn_worker.py).
worker_connections = env_int("GUNICORN_WORKER_CONNECTIONS", 10_000, minimum=1)
# Static files go out through the rate-floored send path, not os.sendfile (which would wait on
# a client that does not read without any floor).
sendfile = False
# The local-memory cache lives inside one process: without Redis there is exactly one worker, or
# a file deleted through one worker could still be served from another's cache.
redis_configured = bool(env_str("REDIS_HOST"))
workers = env_int("WEB_CONCURRENCY", min(2 * (os.cpu_count() or 1), 8) if redis_configured else 1)
if workers > 1 and not redis_configured:
    raise ImproperlyConfigured(
        "WEB_CONCURRENCY > 1 needs REDIS_HOST: the local-memory cache is private to one process"
    )

# Long uploads and downloads are fine: gthread workers heartbeat from their main loop, not from
# the request threads, so this only catches a worker that is stuck as a whole.
timeout = env_int("GUNICORN_TIMEOUT", 120, minimum=1)
graceful_timeout = 30
control_socket_disable = True  # no gunicornc; several instances (tests, bench) must not clash
keepalive = 5
accesslog = "-"
errorlog = "-"
logger_class = "labdropbox.gunicorn_logging.RedactingLogger"  # no share-link tokens in the log
if os.path.isdir("/dev/shm"):  # noqa: S108  (a RAM disk, as gunicorn recommends in containers)
    worker_tmp_dir = "/dev/shm"  # noqa: S108  (heartbeat files off a slow container disk)


# Prometheus metrics: every worker writes its samples into this folder and /metrics sums them
# (prometheus_client's multiprocess mode). Set here, in the master, before any worker imports
# the client; emptied at start, so that counters begin at zero with the server.
metrics_folder_is_ours = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
if metrics_folder_is_ours:
    shm = "/dev/shm"  # noqa: S108  (a RAM disk: samples are written on every request)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(
        prefix="labdropbox-metrics-", dir=shm if os.path.isdir(shm) else None
    )


def on_starting(server) -> None:
    """In the master, before any worker loads the settings: the data folder and, in embedded
    mode, the generated secret key, so that every worker reads the same one; an empty metrics
    folder."""
    from labdropbox.data_dir import prepare_data_dir

    prepare_data_dir()
    empty_metrics_folder(Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]))


def empty_metrics_folder(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()


def on_exit(server) -> None:
    if metrics_folder_is_ours:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


def child_exit(server, worker) -> None:
    """A worker that exited: its in-progress gauges stop counting (its counters stay summed)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def post_fork(server, worker) -> None:
    """Tracing per worker process: an export thread started before the fork would not survive."""
    reuse_chunk_buffers()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labdropbox.settings")
    from labdropbox.tracing import configure_tracing

    configure_tracing()


def reuse_chunk_buffers() -> None:
    """Let glibc's malloc keep freed chunk-sized (1 MiB) buffers for reuse.

    By default each one is mmap()ed and munmap()ed, so every chunk read or written costs ~256
    page faults and a madvise: a fifth of a worker's CPU at full download speed. The heap keeps
    them instead, bounded by a trim threshold and a few arenas (one per thread otherwise), which
    leaves peak memory well inside the benchmark's goal (measured by `make bench`).
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (musl, macOS): nothing to tune
        return
    m_trim_threshold, m_mmap_threshold, m_arena_max = -1, -3, -8
    libc.mallopt(m_mmap_threshold, 8 * MIB)
    libc.mallopt(m_trim_threshold, 32 * MIB)
    libc.mallopt(m_arena_max, 4)


def worker_exit(server, worker) -> None:
    """Flush the spans still queued for export before the worker goes."""
    from labdropbox.tracing import shutdown_tracing

    shutdown_tracing()
