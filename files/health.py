"""Readiness checks: does each dependency answer right now? (GET /health/ready)"""

from __future__ import annotations

from collections.abc import Callable

from django.core.cache import cache
from django.db import connection

from files.storage import get_store


def check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return connection.vendor


def check_cache() -> str:
    # The Redis cache ignores its own errors (reads fall back to the database), so ask Redis
    # directly; the local-memory cache cannot be down.
    client = getattr(cache, "client", None)
    if client is None:
        return "local memory"
    client.get_client(write=True).ping()
    return "redis"


def check_storage() -> str:
    store = get_store()
    store.check()
    return store.description


CHECKS: dict[str, Callable[[], str]] = {
    "database": check_database,
    "cache": check_cache,
    "storage": check_storage,
}


def run_checks() -> dict[str, dict]:
    results = {}
    for name, check in CHECKS.items():
        try:
            results[name] = {"ok": True, "detail": check()}
        except Exception as exc:  # any failure means "not ready", with the reason shown
            results[name] = {"ok": False, "detail": f"{type(exc).__name__}: {exc}"}
    return results
