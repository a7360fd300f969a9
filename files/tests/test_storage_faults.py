"""The failure rules on the Django storage backends (CHUNK_STORAGE=django): S3Storage on moto,
AzureStorage on Azurite and SFTPStorage on OpenSSH, each behind a fault proxy, under the
gunicorn-run service. The server stops (the proxy resets every connection and refuses new ones)
before a transfer, mid-write and mid-read; the answers are the S3 path's (test_faults.py),
nothing is kept and nothing corrupt is served.
"""

from __future__ import annotations

import contextlib
import json
import uuid

import pytest

from testing.conditions import eventually
from testing.faultproxy import FaultProxy
from testing.servers import EMBEDDED, GunicornServer
from testing.storages import DJANGO_KINDS, django_storage, django_storage_env, on_port
from testing.uploads import held_back_read, payload, upload

C = 64 * 1024
TIMEOUTS = {
    "STORAGE_CONNECT_TIMEOUT": "1",
    "STORAGE_READ_TIMEOUT": "2",
    "STORAGE_MAX_ATTEMPTS": "2",
}
BOUND = 15.0  # seconds: well above the timeouts and retries above, far below "hung"
SERVER_FIXTURE = {
    "django-s3": ("s3", "s3_server"),
    "django-azure": ("azurite", "azurite_server"),
    "django-sftp": ("sftp", "sftp_server"),
}


@pytest.fixture(scope="module", params=DJANGO_KINDS)
def backend(request, tmp_path_factory):
    """(the service, the proxy in front of its storage server) for one Django backend."""
    kind = request.param
    argument, fixture = SERVER_FIXTURE[kind]
    server = request.getfixturevalue(fixture)
    # A bucket of its own: cleanup would take another service's objects for orphans.
    config = django_storage(kind, f"faults-{uuid.uuid4().hex[:12]}", **{argument: server})
    proxy = FaultProxy("127.0.0.1", server.port)
    env = {
        **EMBEDDED,
        **TIMEOUTS,
        "CHUNK_SIZE_BYTES": str(C),
        "READ_CONCURRENCY": "4",
        "UPLOAD_CONCURRENCY": "3",
        **django_storage_env(on_port(config, proxy.port)),
    }
    service = GunicornServer(tmp_path_factory.mktemp(f"faults-{kind}"), **env)
    service.store_env = {**service.env, **django_storage_env(config)}  # not through the proxy
    service.store.ensure_bucket()
    yield service, proxy
    service.stop()
    proxy.close()


@pytest.fixture
def service(backend):
    return backend[0]


@pytest.fixture
def proxy(backend):
    yield backend[1]
    backend[1].heal()


def objects(service) -> set[str]:
    return {item.key for item in service.store.list()}


def error_code(body: bytes) -> str:
    return json.loads(body)["error"]


def cleaned_up(service) -> set[str]:
    service.manage("cleanup", "--grace-minutes", "0")
    return objects(service)


def test_a_stopped_server_fails_an_upload_with_503_and_keeps_nothing(service, proxy):
    files_before, objects_before = service.count_files(), objects(service)
    proxy.refuse()

    status, _headers, body = service.request("PUT", "/write?name=lost.bin", payload(5 * C))

    assert (status, error_code(body)) == (503, "storage_unavailable")
    assert service.count_files() == files_before
    proxy.heal()
    assert cleaned_up(service) == objects_before


def test_a_server_stopping_mid_write_fails_the_upload_and_keeps_nothing(service, proxy):
    files_before, objects_before = service.count_files(), objects(service)
    data = payload(40 * C, seed=7)
    connection = service.connection(timeout=BOUND)
    connection.putrequest("PUT", "/write?name=half.bin")
    connection.putheader("Content-Length", str(len(data)))
    connection.endheaders()
    connection.send(data[: 8 * C])
    # Some chunks are stored: the write has begun.
    eventually(lambda: len(objects(service)) > len(objects_before), BOUND)
    proxy.refuse()

    with contextlib.suppress(OSError):  # the service may answer before reading it all
        connection.send(data[8 * C :])
    response = connection.getresponse()
    status, body = response.status, response.read()
    connection.close()

    assert (status, error_code(body)) == (503, "storage_unavailable")
    assert service.count_files() == files_before
    proxy.heal()
    assert cleaned_up(service) == objects_before


def test_a_stopped_server_fails_a_read_before_it_starts(service, proxy):
    file_id = upload(service, payload(3 * C), "f.bin")["file_id"]
    proxy.refuse()

    status, _headers, body = service.request("GET", f"/read/{file_id}")

    assert (status, error_code(body)) == (503, "storage_unavailable")


@pytest.mark.parametrize("fault", ["refuse", "reset"])
def test_a_server_stopping_mid_read_cuts_the_body_short_and_serves_no_wrong_byte(
    service, proxy, fault
):
    data = payload(120 * C, seed=4)
    file_id = upload(service, data)["file_id"]
    connection, response = held_back_read(service, file_id, BOUND)
    assert response.status == 200
    received = response.read(C)
    getattr(proxy, fault)()

    while piece := response.read(C):
        received += piece
    connection.close()

    assert len(received) < len(data)
    assert data.startswith(received)
    proxy.heal()
    assert service.request("GET", f"/read/{file_id}")[2] == data
