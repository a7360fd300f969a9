"""System checks for misconfiguration that settings.py cannot see on its own (ids are stable)."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import Error, Warning, register
from django.utils.module_loading import import_string

from labdropbox.proxies import network_errors

# S3 bucket naming rules: 3-63 lowercase letters, digits, dots and hyphens, starting and ending
# with a letter or digit.
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@register()
def check_bucket_name(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[Error]:
    if not settings.MINIO_ENDPOINT or BUCKET_NAME.match(settings.MINIO_BUCKET):
        return []
    return [
        Error(
            f"MINIO_BUCKET {settings.MINIO_BUCKET!r} is not a valid S3 bucket name.",
            hint="Use 3-63 lowercase letters, digits, dots and hyphens.",
            id="files.E001",
        )
    ]


@register()
def check_database_driver(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[Error]:
    engine = str(settings.DATABASES["default"]["ENGINE"])
    if engine.endswith("sqlite3"):
        return []
    driver = "MySQLdb"  # mysqlclient, which both django-tidb and Django's MySQL backend use
    missing = [name for name in (engine, driver) if importlib.util.find_spec(name) is None]
    if not missing:
        return []
    return [
        Error(
            f"TIDB_HOST is set but {', '.join(missing)} cannot be imported.",
            hint="Install the MySQL path: pip install -r requirements/mysql.txt "
            "(needs the MariaDB client headers: apt-get install libmariadb-dev pkg-config).",
            id="files.E002",
        )
    ]


LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "[::1]", "::1"}


@register()
def check_open_api(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[Warning]:
    """An open API (no token needed) is for a laptop: warn once the service is deployed (any
    of S3, TiDB or Redis configured) or reachable under a name other than loopback's."""
    exposed = not settings.EMBEDDED or not set(settings.ALLOWED_HOSTS) <= LOOPBACK_HOSTS
    if not (settings.API_OPEN and exposed):
        return []
    return [
        Warning(
            "API_OPEN is on: anyone who can reach the service can store files, and read and "
            "delete the files that belong to no one.",
            hint="Unset API_OPEN and give each user a token: manage.py create_token USERNAME.",
            id="files.W001",
        )
    ]


@register()
def check_trusted_proxies(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[Error]:
    return network_errors("TRUSTED_PROXIES", settings.TRUSTED_PROXIES, "files.E003")


@register()
def check_chunk_storage(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[Error]:
    """CHUNK_STORAGE=django needs a STORAGES["chunks"] whose backend can be imported (with its
    library: django-storages' extras)."""
    if settings.CHUNK_STORAGE != "django":
        return []
    config = settings.STORAGES.get("chunks")
    if not config or not config.get("BACKEND"):
        problem = "CHUNK_STORAGE=django but STORAGES has no 'chunks' backend."
    else:
        try:
            import_string(config["BACKEND"])
            return []
        except ImportError as exc:
            problem = f"The chunk storage backend {config['BACKEND']} cannot be imported: {exc}"
    return [
        Error(
            problem,
            hint="Set CHUNK_STORAGE_BACKEND (e.g. storages.backends.s3.S3Storage) and "
            "CHUNK_STORAGE_OPTIONS (a JSON object), or STORAGES['chunks'] in your settings.",
            id="files.E004",
        )
    ]
