"""Real servers for the tests, on loopback ports: a moto S3 server and the gunicorn-run service."""

from __future__ import annotations

import http.client
import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]


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


class MotoServer:
    """`python -m moto.server` in a child process: a real HTTP S3 endpoint."""

    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.endpoint = f"127.0.0.1:{self.port}"
        self._log = open(log_path, "wb")  # noqa: SIM115  (open for the server's lifetime)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_until_healthy(self.process, self.port, "/moto-api/")

    def stop(self) -> None:
        stop(self.process)
        self._log.close()


class GunicornServer:
    """The service as production runs it: gunicorn with deploy/gunicorn.conf.py."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.env = {**os.environ, **env, "SERVICE_HOST": "127.0.0.1"}
        self.env["SERVICE_PORT"] = str(self.port)
        self.log_path = log_path
        # What `make run` and the Docker image do before serving.
        self.manage("migrate", "--noinput")
        self.manage("collectstatic", "--noinput")
        self._log = open(log_path, "wb")  # noqa: SIM115  (open for the server's lifetime)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py"],
            cwd=PROJECT_DIR,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_until_healthy(self.process, self.port, "/health")

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args, "-v0"],
            cwd=PROJECT_DIR,
            env=self.env,
            capture_output=True,
            text=True,
        )
        if done.returncode:
            raise RuntimeError(f"manage.py {args[0]} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def connection(self, timeout: float = 30.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        connection = self.connection()
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def count_files(self) -> int:
        """Committed File rows, read straight from the service's own database."""
        if self.env.get("TIDB_HOST"):
            import MySQLdb

            connection = MySQLdb.connect(
                host=self.env["TIDB_HOST"],
                port=int(self.env.get("TIDB_PORT", "4000")),
                user=self.env.get("TIDB_USER", "root"),
                password=self.env.get("TIDB_PASSWORD", ""),
                database=self.env["TIDB_DATABASE"],
            )
        else:
            connection = sqlite3.connect(Path(self.env["DATA_DIR"]) / "labdropbox.sqlite3")
        try:
            cursor = connection.cursor()
            cursor.execute("SELECT COUNT(*) FROM files_file")
            return cursor.fetchone()[0]
        finally:
            connection.close()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        stop(self.process)
        self._log.close()
