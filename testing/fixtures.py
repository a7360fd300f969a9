"""The test suites' fixtures (a pytest plugin, loaded by the root conftest.py): every test gets
its own empty chunk store, on the filesystem or in a moto S3 server.

`pytest --store=s3` makes S3 the default store (`make test-services` does, with MariaDB and
Redis configured through the environment). Tests marked `both_stores` run on both regardless,
and on the Django storage backends of CHUNK_STORAGE=django: django-storages' S3Storage (on
moto), AzureStorage (on Azurite) and SFTPStorage (on OpenSSH), see testing/storages.py.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from django.conf import settings as django_settings
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pytest_django import Settings

from files.storage import ChunkStore, get_store
from labdropbox.tracing import configure_tracing
from testing.mysql import recreate_mysql_database
from testing.servers import GunicornServer, S3Endpoint, s3_for_tests
from testing.storages import DJANGO_KINDS, AzuriteServer, SftpServer, django_storage

STORE_KINDS = ("filesystem", "s3")
ALL_STORE_KINDS = (*STORE_KINDS, *DJANGO_KINDS)
TEST_CHUNK_SIZE = 16 * 1024
SERVICE_CHUNK_SIZE = 64 * 1024


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--store",
        choices=STORE_KINDS,
        default="filesystem",
        help="chunk store for tests not marked both_stores (default: filesystem)",
    )
    parser.addoption(
        "--s3-only",
        action="store_true",
        help="run only the tests that talk to an S3 server (make test-rgw)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--s3-only"):
        return
    kept: list[pytest.Item] = []
    left_out: list[pytest.Item] = []
    for item in items:
        (kept if talks_to_s3(item) else left_out).append(item)
    config.hook.pytest_deselected(items=left_out)
    items[:] = kept


def talks_to_s3(item: pytest.Item) -> bool:
    """The test uses the S3 server: directly, or as the S3 run of a both_stores test."""
    callspec = getattr(item, "callspec", None)
    store_kind = callspec.params.get("store_kind") if callspec else None
    return "s3_server" in getattr(item, "fixturenames", ()) or store_kind == "s3"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("both_stores"):
        metafunc.parametrize("store_kind", ALL_STORE_KINDS)


def pytest_runtest_setup(item: pytest.Item) -> None:
    # A test that needs MariaDB and Redis fails without them: it is never silently skipped.
    stack_configured = os.environ.get("TIDB_HOST") and os.environ.get("REDIS_HOST")
    if item.get_closest_marker("stack") and not stack_configured:
        pytest.fail("needs MariaDB and Redis (TIDB_HOST, REDIS_HOST): run `make test-services`")


@pytest.fixture
def store_kind(request: pytest.FixtureRequest) -> str:
    return request.config.getoption("--store")


@pytest.fixture(scope="session", autouse=True)
def span_exporter() -> InMemorySpanExporter:
    """Tracing for the test process, as a worker has it, with finished spans kept in memory."""
    exporter = InMemorySpanExporter()
    configure_tracing([SimpleSpanProcessor(exporter)])
    return exporter


@pytest.fixture
def spans(span_exporter: InMemorySpanExporter) -> InMemorySpanExporter:
    span_exporter.clear()
    return span_exporter


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Endpoint]:
    """moto, or the S3 server that S3_TEST_ENDPOINT names (make test-rgw: Ceph's RGW)."""
    server = s3_for_tests(tmp_path_factory.mktemp("moto") / "moto.log")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def azurite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzuriteServer]:
    server = AzuriteServer(tmp_path_factory.mktemp("azurite"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sftp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SftpServer]:
    server = SftpServer(tmp_path_factory.mktemp("sftp"))
    yield server
    server.stop()


def point_store_at(
    request: pytest.FixtureRequest, settings: Settings, store_kind: str, name: str
) -> None:
    """Make bucket, container or folder `name` of a `store_kind` store the chunk store."""
    settings.CHUNK_DIR = settings.CHUNK_DIR.parent / name
    settings.MINIO_BUCKET = name
    settings.MINIO_ENDPOINT = ""
    settings.CHUNK_STORAGE = ""
    if store_kind == "s3":
        settings.MINIO_ENDPOINT = request.getfixturevalue("s3_server").endpoint
    elif store_kind in DJANGO_KINDS:
        servers = {
            "django-s3": {"s3": request.getfixturevalue("s3_server")},
            "django-azure": {"azurite": request.getfixturevalue("azurite_server")},
            "django-sftp": {"sftp": request.getfixturevalue("sftp_server")},
        }[store_kind]
        settings.CHUNK_STORAGE = "django"
        settings.STORAGES = {
            **settings.STORAGES,
            "chunks": django_storage(store_kind, name, **servers),
        }


@pytest.fixture(autouse=True)
def open_api(settings: Settings) -> None:
    """Tests speak to an open API unless they close it (the access tests do): what they test
    is the same with or without a token."""
    settings.API_OPEN = True


@pytest.fixture(autouse=True)
def store(
    request: pytest.FixtureRequest, store_kind: str, settings: Settings, tmp_path: Path
) -> ChunkStore:
    """A fresh, empty chunk store (folder or bucket) for this test, and small chunks."""
    settings.CHUNK_SIZE = TEST_CHUNK_SIZE
    settings.CHUNK_DIR = tmp_path / "chunks"
    point_store_at(request, settings, store_kind, f"test-{uuid.uuid4().hex[:16]}")
    chunk_store = get_store()
    chunk_store.ensure_bucket()
    return chunk_store


def stored_keys(chunk_store: ChunkStore) -> list[str]:
    return sorted(item.key for item in chunk_store.list())


@pytest.fixture(scope="session")
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GunicornServer]:
    """The service under gunicorn on the default store, with the database and cache that the
    environment configures (SQLite and local memory, or MariaDB and Redis)."""
    data_dir = tmp_path_factory.mktemp("service")
    env = {
        "CHUNK_SIZE_BYTES": str(SERVICE_CHUNK_SIZE),
        "MINIO_BUCKET": "service",
        "MINIO_ENDPOINT": "",
        "UPLOAD_CONCURRENCY": "3",
        "READ_CONCURRENCY": "4",
        "UPLOAD_IDLE_TIMEOUT_SECONDS": "2",
    }
    if request.config.getoption("--store") == "s3":
        env["MINIO_ENDPOINT"] = request.getfixturevalue("s3_server").endpoint
    if django_settings.TIDB_HOST:
        env["TIDB_DATABASE"] = recreate_mysql_database(os.environ, "service")
    server = GunicornServer(data_dir, **cast(dict[str, Any], env))
    yield server
    server.stop()


def delayed(function: Callable[..., Any], seconds: float) -> Callable[..., Any]:
    """`function`, called `seconds` late: a store request that is certain to overlap others."""

    def late(*args: Any, **kwargs: Any) -> Any:
        time.sleep(seconds)
        return function(*args, **kwargs)

    return late
