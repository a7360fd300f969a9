"""Settings come from the environment: embedded with nothing set, each component by its variables.

Each case loads labdropbox.settings in a fresh interpreter with exactly the given environment.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from labdropbox.env import env_bool, env_choice, env_float, env_int, env_list
from testing.servers import PROJECT_DIR

# No django.setup(): loading a MySQL backend would need mysqlclient, which `make test` lacks.
SHOW = """
import json
from django.conf import settings
from files.storage import get_store
store = get_store()
config = getattr(getattr(store, "client", None), "meta", None)
config = config and config.config
print(json.dumps({
    "engine": settings.DATABASES["default"]["ENGINE"],
    "database": settings.DATABASES["default"],
    "cache": settings.CACHES["default"],
    "store": type(store).__name__,
    "chunk_size": settings.CHUNK_SIZE,
    "secret_key": settings.SECRET_KEY,
    "tls": {
        name: getattr(settings, name, None)
        for name in (
            "SECURE_PROXY_SSL_HEADER", "SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE",
            "CSRF_COOKIE_SECURE", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        )
    },
    "s3": config and {
        "request_checksum_calculation": config.request_checksum_calculation,
        "response_checksum_validation": config.response_checksum_validation,
        "connect_timeout": config.connect_timeout,
        "read_timeout": config.read_timeout,
        "retries": config.retries,
        "max_pool_connections": config.max_pool_connections,
        "endpoint": store.client.meta.endpoint_url,
    },
}, default=str))
"""


def load_settings(tmp_path, **env: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", SHOW],
        cwd=PROJECT_DIR,
        env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "labdropbox.settings"}
        | {"DATA_DIR": str(tmp_path)}
        | env,
        capture_output=True,
        text=True,
    )
    if result.returncode:
        raise AssertionError(result.stderr.strip().splitlines()[-1])
    return json.loads(result.stdout)


def test_nothing_set_runs_embedded(tmp_path):
    loaded = load_settings(tmp_path)

    assert loaded["engine"] == "django.db.backends.sqlite3"
    assert loaded["database"]["NAME"] == str(tmp_path / "labdropbox.sqlite3")
    assert loaded["cache"]["BACKEND"] == "django.core.cache.backends.locmem.LocMemCache"
    assert loaded["store"] == "FilesystemStore"
    assert loaded["chunk_size"] == 1024 * 1024


def test_loading_settings_writes_nothing(tmp_path):
    data_dir = tmp_path / "data"

    load_settings(tmp_path, DATA_DIR=str(data_dir))

    assert not data_dir.exists()


def test_migrate_generates_the_embedded_secret_key_once_into_data_dir(tmp_path):
    data_dir = tmp_path / "data"
    env = {"DATA_DIR": str(data_dir)}

    manage(env, "migrate", "--noinput")
    first = load_settings(tmp_path, **env)["secret_key"]
    manage(env, "migrate", "--noinput")
    second = load_settings(tmp_path, **env)["secret_key"]

    assert len(first) >= 50
    assert first == second == (data_dir / "secret_key").read_text()
    assert (data_dir / "secret_key").stat().st_mode & 0o077 == 0


def test_a_configured_secret_key_is_never_written(tmp_path):
    manage({"DATA_DIR": str(tmp_path), "SECRET_KEY": "configured"}, "migrate", "--noinput")

    assert not (tmp_path / "secret_key").exists()
    assert load_settings(tmp_path, SECRET_KEY="configured")["secret_key"] == "configured"


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args, "-v0"],
        cwd=PROJECT_DIR,
        env={"PATH": "/usr/bin:/bin"} | env,
        check=True,
        capture_output=True,
    )


def test_real_component_without_secret_key_is_refused(tmp_path):
    with pytest.raises(AssertionError, match="SECRET_KEY must be set"):
        load_settings(tmp_path, REDIS_HOST="127.0.0.1")


def test_redis_host_switches_to_redis_with_short_timeouts_and_ignored_errors(tmp_path):
    cache = load_settings(tmp_path, REDIS_HOST="cache.local", REDIS_DB="3", SECRET_KEY="k")["cache"]

    assert cache["BACKEND"] == "django_redis.cache.RedisCache"
    assert cache["LOCATION"] == "redis://cache.local:6379/3"
    assert cache["OPTIONS"]["IGNORE_EXCEPTIONS"] is True
    assert cache["OPTIONS"]["SOCKET_TIMEOUT"] <= 0.5
    assert cache["OPTIONS"]["SOCKET_CONNECT_TIMEOUT"] <= 0.5


@pytest.mark.parametrize(
    ("engine", "backend"), [("tidb", "django_tidb"), ("mysql", "django.db.backends.mysql")]
)
def test_tidb_host_switches_to_the_mysql_protocol_backend(tmp_path, engine, backend):
    loaded = load_settings(
        tmp_path, TIDB_HOST="db.local", TIDB_DATABASE="files", DB_ENGINE=engine, SECRET_KEY="k"
    )

    assert loaded["engine"] == backend
    assert loaded["database"]["HOST"] == "db.local"
    assert loaded["database"]["PORT"] == 4000
    assert loaded["database"]["NAME"] == "files"
    assert loaded["database"]["OPTIONS"]["connect_timeout"] == 5


def test_minio_endpoint_switches_to_s3_with_compatible_bounded_client(tmp_path):
    loaded = load_settings(tmp_path, MINIO_ENDPOINT="minio:9000", SECRET_KEY="k")

    assert loaded["store"] == "S3Store"
    assert loaded["s3"] == {
        "request_checksum_calculation": "when_required",
        "response_checksum_validation": "when_required",
        "connect_timeout": 3.0,
        "read_timeout": 20.0,
        "retries": {"mode": "standard", "total_max_attempts": 3},
        "max_pool_connections": 64,  # 4 x READ_CONCURRENCY: at least every chunk in flight
        "endpoint": "http://minio:9000",
    }


def test_the_storage_timeouts_are_read_under_their_earlier_s3_names_too(tmp_path):
    earlier = load_settings(
        tmp_path,
        MINIO_ENDPOINT="minio:9000",
        SECRET_KEY="k",
        S3_READ_TIMEOUT="7",
        S3_MAX_ATTEMPTS="2",
    )["s3"]
    both = load_settings(
        tmp_path,
        MINIO_ENDPOINT="minio:9000",
        SECRET_KEY="k",
        S3_READ_TIMEOUT="7",
        STORAGE_READ_TIMEOUT="9",
    )["s3"]

    assert (earlier["read_timeout"], earlier["retries"]["total_max_attempts"]) == (7.0, 2)
    assert both["read_timeout"] == 9.0  # the new name wins


def test_chunk_size_bytes_wins_over_megabytes(tmp_path):
    loaded = load_settings(tmp_path, CHUNK_SIZE_MB="4", CHUNK_SIZE_BYTES="1000")

    assert loaded["chunk_size"] == 1000


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CHUNK_SIZE_MB": "big"}, "CHUNK_SIZE_MB must be an integer"),
        ({"READ_CONCURRENCY": "0"}, "READ_CONCURRENCY must be at least 1"),
        ({"DEBUG": "maybe"}, "DEBUG must be true or false"),
        ({"DB_ENGINE": "postgres"}, "DB_ENGINE must be one of tidb, mysql"),
    ],
)
def test_bad_values_stop_start_up_naming_the_variable(tmp_path, env, message):
    with pytest.raises(AssertionError, match=message):
        load_settings(tmp_path, **env)


def test_env_readers(monkeypatch):
    monkeypatch.setenv("A_NUMBER", " 42 ")
    monkeypatch.setenv("A_FLOAT", "0.5")
    monkeypatch.setenv("A_FLAG", "Yes")
    monkeypatch.setenv("A_LIST", "a, b,,c ")
    monkeypatch.setenv("EMPTY", "")

    assert env_int("A_NUMBER", 1) == 42
    assert env_int("EMPTY", 7) == 7
    assert env_float("A_FLOAT", 1.0) == 0.5
    assert env_bool("A_FLAG", False) is True
    assert env_list("A_LIST", "") == ["a", "b", "c"]
    assert env_choice("EMPTY", "tidb", ("tidb", "mysql")) == "tidb"
    with pytest.raises(ImproperlyConfigured, match="A_NUMBER must be at most 10"):
        env_int("A_NUMBER", 1, maximum=10)
    with pytest.raises(ImproperlyConfigured, match="A_FLOAT must be at least 1"):
        env_float("A_FLOAT", 1.0, minimum=1.0)


def test_tls_deployments_turn_on_secure_cookies_hsts_and_the_proxy_header(tmp_path):
    plain = load_settings(tmp_path)["tls"]
    behind_tls = load_settings(
        tmp_path,
        SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto",
        SECURE_SSL_REDIRECT="true",
        SECURE_COOKIES="true",
        SECURE_HSTS_SECONDS="31536000",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="yes",
    )["tls"]

    assert plain == {
        "SECURE_PROXY_SSL_HEADER": None,
        "SECURE_SSL_REDIRECT": False,
        "SESSION_COOKIE_SECURE": False,
        "CSRF_COOKIE_SECURE": False,
        "SECURE_HSTS_SECONDS": 0,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": False,
    }
    assert behind_tls == {
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "SECURE_SSL_REDIRECT": True,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
    }


def test_a_chunk_memory_budget_smaller_than_two_chunks_is_refused(tmp_path):
    with pytest.raises(AssertionError, match="CHUNK_MEMORY_MB must hold at least two chunks"):
        load_settings(tmp_path, CHUNK_SIZE_MB="8", CHUNK_MEMORY_MB="10")
