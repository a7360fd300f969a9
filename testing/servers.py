"""Real servers on loopback ports, for the tests and the benchmark: a moto S3 server, the
gunicorn-run service, an OTLP receiver and a black hole."""

from __future__ import annotations

import contextlib
import functools
import gzip
import http.client
import json
import os
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from testing.mysql import fetch_rows, mysql_connect, mysql_query, recreate_mysql_database

PROJECT_DIR = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_healthy(
    process: subprocess.Popen, port: int, path: str, timeout: float = 30.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {process.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", path)
            if connection.getresponse().status < 500:
                return
        except OSError:
            time.sleep(0.1)
        finally:
            connection.close()
    raise RuntimeError(f"server on port {port} did not answer {path} within {timeout}s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class S3Endpoint:
    """An S3 server for the tests and the benchmark. `kind` says how real it is: moto accepts any
    credentials and any Content-MD5, which real S3 implementations (RGW, MinIO, AWS) refuse."""

    kind = "s3"
    endpoint: str
    access_key = "minioadmin"
    secret_key = "minioadmin"  # noqa: S105  (moto's, and MinIO's default: not a secret)

    @property
    def port(self) -> int:
        return int(self.endpoint.rpartition(":")[2])

    @property
    def service_env(self) -> dict[str, str]:
        """The settings that point a service at this server."""
        return {
            "MINIO_ENDPOINT": self.endpoint,
            "MINIO_ACCESS_KEY": self.access_key,
            "MINIO_SECRET_KEY": self.secret_key,
        }

    @property
    def pids(self) -> list[int]:
        """The server's processes, whose CPU time the benchmark reads (none when not ours)."""
        return []

    @property
    def checks_requests(self) -> bool:
        """Signatures and Content-MD5 are checked, as real S3 does (moto checks neither)."""
        return self.kind != "moto"

    def stop(self) -> None:
        pass


def s3_for_tests(log_path: Path) -> S3Endpoint:
    """The S3 server that S3_TEST_ENDPOINT names, else a moto server started now."""
    endpoint = os.environ.get("S3_TEST_ENDPOINT")
    if endpoint:
        return ExternalS3(
            endpoint,
            os.environ.get("S3_TEST_KIND", "s3"),
            os.environ.get("MINIO_ACCESS_KEY", S3Endpoint.access_key),
            os.environ.get("MINIO_SECRET_KEY", S3Endpoint.secret_key),
        )
    return MotoServer(log_path)


class ExternalS3(S3Endpoint):
    """An S3 server started by someone else (`make test-rgw` starts Ceph's RADOS Gateway and
    sets S3_TEST_ENDPOINT, S3_TEST_KIND and the MINIO_* keys)."""

    def __init__(self, endpoint: str, kind: str, access_key: str, secret_key: str) -> None:
        self.endpoint = endpoint
        self.kind = kind
        self.access_key = access_key
        self.secret_key = secret_key


class MotoServer(S3Endpoint):
    """`python -m moto.server` in a child process: a real HTTP S3 endpoint."""

    kind = "moto"

    def __init__(self, log_path: Path) -> None:
        port = free_port()
        self.endpoint = f"127.0.0.1:{port}"
        self._log = open(log_path, "wb")  # noqa: SIM115  (open for the server's lifetime)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_until_healthy(self.process, port, "/moto-api/")

    @property
    def pids(self) -> list[int]:
        return [self.process.pid]

    def stop(self) -> None:
        stop(self.process)
        self._log.close()


# Settings that keep a service embedded whatever the calling environment configures.
EMBEDDED = {"MINIO_ENDPOINT": "", "TIDB_HOST": "", "REDIS_HOST": ""}


class HttpServer:
    """A server on a loopback port, and one request at a time to it."""

    port: int
    timeout: float = 30.0  # of each request() (the benchmark moves gigabytes in one)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def connection(self, timeout: float | None = None) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout or self.timeout)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | Iterable[bytes] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        connection = self.connection(self.timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()


class GunicornServer(HttpServer):
    """The service as production runs it: gunicorn with deploy/gunicorn.conf.py.

    Its data (SQLite file, chunk folder, static files) and its log live in `folder`; `settings`
    are environment variables on top of the caller's own environment.
    """

    def __init__(self, folder: Path, timeout: float = 30.0, **settings: str) -> None:
        self.port = free_port()
        self.timeout = timeout
        self.env = {
            **os.environ,
            "DATA_DIR": str(folder),
            "STATIC_ROOT": str(folder / "static"),
            "SECRET_KEY": os.environ.get("SECRET_KEY") or "test-only",
            "API_OPEN": "true",  # as in-process tests have it (testing/fixtures.py)
            **settings,
            "SERVICE_HOST": "127.0.0.1",
            "SERVICE_PORT": str(self.port),
        }
        self.sql_env = self.env
        self.store_env = self.env
        self.log_path = folder / f"gunicorn-{self.port}.log"  # two services may share a folder
        folder.mkdir(parents=True, exist_ok=True)
        # What `make run` and the Docker image do before serving.
        self.manage("migrate", "--noinput")
        self.manage("collectstatic", "--noinput")
        self._log = open(self.log_path, "wb")  # noqa: SIM115  (open for the server's lifetime)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py"],
            cwd=PROJECT_DIR,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_until_healthy(self.process, self.port, "/health")

    def manage(
        self, *args: str, check: bool = True, stdin: str = ""
    ) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [sys.executable, "manage.py", *args, "-v0"],
            cwd=PROJECT_DIR,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
        )
        if check and done.returncode:
            raise RuntimeError(f"manage.py {args[0]} failed:\n{done.stdout}\n{done.stderr}")
        return done

    def sql(self, query: str) -> list[tuple]:
        """Rows from the service's own database (SQLite file or MySQL database), reached with
        `sql_env` (the service's own settings, unless a test routes around a proxy)."""
        env = self.sql_env
        if env.get("TIDB_HOST"):
            return mysql_query(env, query, database=env["TIDB_DATABASE"])
        return fetch_rows(sqlite3.connect(Path(env["DATA_DIR"]) / "labdropbox.sqlite3"), query)

    def sql_execute(self, statement: str) -> None:
        """Change the service's own database behind its back (what a stalled worker's or a
        clock's effect would be), committed at once."""
        env = self.sql_env
        if env.get("TIDB_HOST"):
            connection = mysql_connect(env, env["TIDB_DATABASE"])
        else:
            connection = sqlite3.connect(Path(env["DATA_DIR"]) / "labdropbox.sqlite3", timeout=20)
        try:
            connection.cursor().execute(statement)
            connection.commit()
        finally:
            connection.close()

    @functools.cached_property
    def store(self) -> Any:
        """A chunk store looking at the service's own folder or bucket (directly, not through
        a proxy a test may have put in between: override `store_env` for that)."""
        from files.storage.filesystem import FilesystemStore
        from files.storage.s3 import s3_store

        env = self.store_env
        if env.get("CHUNK_STORAGE") == "django":
            from files.storage.django import DjangoStore

            options = json.loads(env["CHUNK_STORAGE_OPTIONS"])
            return DjangoStore({"BACKEND": env["CHUNK_STORAGE_BACKEND"], "OPTIONS": options})
        if not env.get("MINIO_ENDPOINT"):
            return FilesystemStore(Path(env["DATA_DIR"]) / "chunks")
        keys = env.get("MINIO_ACCESS_KEY"), env.get("MINIO_SECRET_KEY")
        return s3_store(env["MINIO_ENDPOINT"], env.get("MINIO_BUCKET") or "labdropbox", *keys)

    def count_files(self) -> int:
        """Live files (not in the trash)."""
        return self.sql("SELECT COUNT(*) FROM files_entry WHERE kind = 1 AND trash_id IS NULL")[0][
            0
        ]

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        stop(self.process)
        self._log.close()


class OtlpReceiver:
    """An OTLP/HTTP trace receiver (what Jaeger listens with on :4318), decoding the protobuf."""

    def __init__(self) -> None:
        self.spans: list[dict] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802  (http.server's naming)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                receiver._collect(self.path, body)
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _collect(self, path: str, body: bytes) -> None:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                with self._lock:
                    self.spans.extend(
                        {
                            "path": path,
                            "name": span.name,
                            "trace_id": span.trace_id.hex(),
                            "span_id": span.span_id.hex(),
                            "parent_id": span.parent_span_id.hex(),
                            "start": span.start_time_unix_nano,
                            "end": span.end_time_unix_nano,
                            "service": resource.get("service.name"),
                        }
                        for span in scope_spans.spans
                    )

    def trace(self, trace_id: str) -> list[dict]:
        with self._lock:
            return [span for span in self.spans if span["trace_id"] == trace_id]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class BlackHole:
    """A port that accepts connections and never answers (a stalled collector). `holding` is
    how many it holds now that their clients have not given up on; stop() resets them all."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(128)
        self.port = self.socket.getsockname()[1]
        self.held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):  # closed by stop()
            while True:
                connection, _ = self.socket.accept()
                connection.setblocking(False)
                self.held.append(connection)

    @property
    def holding(self) -> int:
        return sum(1 for connection in list(self.held) if not peer_closed(connection))

    def stop(self) -> None:
        self.socket.close()
        for connection in self.held:
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            connection.close()


def peer_closed(connection: socket.socket) -> bool:
    """Whether the other end has closed (a read would give b'' or fail)."""
    try:
        while connection.recv(65536):
            pass  # what it sent, never answered
    except BlockingIOError:
        return False
    except OSError:
        return True
    return True


@contextmanager
def start_stack(folder: Path, chunk_size: int, **settings: str) -> Iterator[GunicornServer]:
    """moto plus the service under gunicorn, on the database and cache the environment
    configures (a fresh MySQL database when TIDB_HOST is set); yields the service."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labdropbox.settings")
    moto = MotoServer(folder / "moto.log")
    env = {
        "MINIO_ENDPOINT": moto.endpoint,
        "MINIO_BUCKET": "labdropbox",
        "CHUNK_SIZE_BYTES": str(chunk_size),
        **settings,
    }
    if os.environ.get("TIDB_HOST"):
        env["TIDB_DATABASE"] = recreate_mysql_database(
            {**os.environ, **env}, f"bench_{os.getpid()}"
        )
    try:
        service = GunicornServer(folder / "service", **cast(dict[str, Any], env))
    except BaseException:
        moto.stop()
        raise
    try:
        yield service
    finally:
        service.stop()
        moto.stop()
