"""manage.py ensure_database: what the compose stack and the Kubernetes Job run before migrate."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from testing.mysql import mysql_query
from testing.servers import PROJECT_DIR, free_port


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "ensure_database", *args],
        cwd=PROJECT_DIR,
        env={**os.environ, "SECRET_KEY": "test", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_sqlite_needs_nothing(tmp_path):
    done = run({"DATA_DIR": str(tmp_path), "TIDB_HOST": ""})

    assert done.returncode == 0
    assert "nothing to create" in done.stdout


@pytest.mark.stack
def test_creates_the_database_once_on_mariadb(tmp_path):
    name = f"labdropbox_ensure_{os.getpid()}"
    env = {"DATA_DIR": str(tmp_path), "TIDB_DATABASE": name, "DB_ENGINE": "mysql"}
    try:
        first, second = run(env), run(env)
    finally:
        existed = mysql_query(os.environ, f"SHOW DATABASES LIKE '{name}'")
        mysql_query(os.environ, f"DROP DATABASE IF EXISTS `{name}`")

    assert (first.returncode, second.returncode) == (0, 0)
    assert f"created database {name}" in first.stdout
    assert f"database exists: {name}" in second.stdout
    assert existed == [(name,)]


@pytest.mark.stack
def test_gives_up_after_waiting_for_a_server_that_never_answers(tmp_path):
    env = {
        "DATA_DIR": str(tmp_path),
        "TIDB_PORT": str(free_port()),  # nothing listens there
        "DB_ENGINE": "mysql",
        "DB_CONNECT_TIMEOUT": "1",
    }

    done = run(env, "--wait", "3")

    assert done.returncode == 1
    assert "cannot reach" in done.stderr
    assert done.stderr.count("waiting for") >= 1
