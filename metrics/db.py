"""Database query durations, taken by an execute wrapper on every connection Django opens."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created

from metrics.registry import DB_DURATION, labelled

OPERATIONS = ("SELECT", "INSERT", "UPDATE", "DELETE")


def time_query(execute: Callable, sql: str, params: Any, many: bool, context: Any) -> Any:
    verb = sql.lstrip()[:6].upper()
    started = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        operation = verb if verb in OPERATIONS else "other"
        labelled(DB_DURATION, operation).observe(time.perf_counter() - started)


def install(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    if time_query not in connection.execute_wrappers:  # a wrapper outlives its reconnects
        connection.execute_wrappers.append(time_query)


def watch_queries() -> None:
    connection_created.connect(install, dispatch_uid="metrics.db.install")
