"""The MySQL-protocol server of the test stack, reached with the service's own TIDB_* settings."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

DEFAULT_PREFIX = "labdropbox_test"


def mysql_connect(env: Mapping[str, str], database: str | None = None) -> Any:
    """A MySQLdb connection to the server that `env` (TIDB_HOST, TIDB_PORT…) points at."""
    import MySQLdb  # only where the MySQL path is installed (make test-services)

    options: dict[str, Any] = {
        "host": env["TIDB_HOST"],
        "port": int(env.get("TIDB_PORT") or 4000),
        "user": env.get("TIDB_USER") or "root",
        "password": env.get("TIDB_PASSWORD", ""),
    }
    if database:
        options["database"] = database
    return MySQLdb.connect(**options)


def mysql_query(env: Mapping[str, str], query: str, database: str | None = None) -> list[tuple]:
    return fetch_rows(mysql_connect(env, database), query)


def fetch_rows(connection: Any, query: str) -> list[tuple]:
    """The rows of one query on a DB-API connection (MySQLdb, sqlite3), which it then closes."""
    try:
        cursor = connection.cursor()
        cursor.execute(query)
        return list(cursor.fetchall())
    finally:
        connection.close()


def recreate_mysql_database(env: Mapping[str, str], purpose: str) -> str:
    """An empty database for `purpose` on the server that `env` points at, named after
    TEST_DATABASE_PREFIX (`labdropbox_test` unless set: the Makefile's TEST_DB), so that tests
    only ever drop databases of their own; returns the name."""
    prefix = env.get("TEST_DATABASE_PREFIX") or os.environ.get("TEST_DATABASE_PREFIX")
    name = f"{prefix or DEFAULT_PREFIX}_{purpose}"
    mysql_query(env, f"DROP DATABASE IF EXISTS `{name}`")
    mysql_query(env, f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    return name


def own_database(purpose: str, workers: int = 1) -> dict[str, str]:
    """A service's settings for a database of its own when the tests run on MySQL (TIDB_HOST
    set: `make test-services`), a fresh one for `purpose`, served by `workers` gunicorn workers
    (which a shared database allows); nothing when they run embedded."""
    if not os.environ.get("TIDB_HOST"):
        return {}
    database = recreate_mysql_database(os.environ, purpose)
    return {"TIDB_DATABASE": database, "WEB_CONCURRENCY": str(workers)}
