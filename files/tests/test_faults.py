"""The failure rules, row by row: break a real dependency under the gunicorn-run service and
check that nothing is lost and nothing corrupt is served as good.

The service reaches S3 (moto), and on the full stack MariaDB and Redis, through fault proxies
(bench/faultproxy.py) that refuse, reset, stall or cut connections on command. Tests marked
`stack` need MariaDB and Redis (`make test-services`); the S3 ones run on every stack.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from files.storage import chunk_key
from testing.conditions import eventually
from testing.faultproxy import FaultProxy
from testing.mysql import recreate_mysql_database
from testing.servers import EMBEDDED, GunicornServer
from testing.uploads import (
    held_back_read,
    patch_head,
    payload,
    tus_create,
    tus_head,
    tus_offset,
    tus_patch,
    unfinished_upload,
    upload,
)

C = 64 * 1024
# Short timeouts keep every fault bounded: these are the waits the assertions rely on.
TIMEOUTS = {
    "STORAGE_CONNECT_TIMEOUT": "1",
    "STORAGE_READ_TIMEOUT": "2",
    "STORAGE_MAX_ATTEMPTS": "2",
    "DB_CONNECT_TIMEOUT": "2",
    "DB_QUERY_TIMEOUT": "3",
    "REDIS_TIMEOUT_SECONDS": "0.25",
    "UPLOAD_IDLE_TIMEOUT_SECONDS": "4",  # also the lease of a resumable upload's lock
}
BOUND = 15.0  # seconds: well above every timeout chain above, far below "hung"


def full_stack() -> bool:
    return bool(os.environ.get("TIDB_HOST") and os.environ.get("REDIS_HOST"))


@pytest.fixture(scope="module")
def proxies(s3_server):
    made = {"s3": FaultProxy("127.0.0.1", s3_server.port)}
    if full_stack():
        made["db"] = FaultProxy(os.environ["TIDB_HOST"], int(os.environ.get("TIDB_PORT", 3306)))
        made["redis"] = FaultProxy(
            os.environ["REDIS_HOST"], int(os.environ.get("REDIS_PORT", 6379))
        )
    yield made
    for proxy in made.values():
        proxy.close()


@pytest.fixture(scope="module")
def service(proxies, s3_server, tmp_path_factory):
    """Gunicorn whose every dependency goes through a fault proxy."""
    env = {
        **EMBEDDED,
        **TIMEOUTS,
        "CHUNK_SIZE_BYTES": str(C),
        "READ_CONCURRENCY": "4",
        "UPLOAD_CONCURRENCY": "3",
        "MINIO_ENDPOINT": proxies["s3"].endpoint,
        "MINIO_BUCKET": "faults",
    }
    if full_stack():
        database = recreate_mysql_database(os.environ, "faults")
        env |= {
            "TIDB_HOST": "127.0.0.1",
            "TIDB_PORT": str(proxies["db"].port),
            "TIDB_DATABASE": database,
            "REDIS_HOST": "127.0.0.1",
            "REDIS_PORT": str(proxies["redis"].port),
            "WEB_CONCURRENCY": "3",
        }
    server = GunicornServer(tmp_path_factory.mktemp("faults"), **env)
    server.store_env = {**server.env, **s3_server.service_env}  # the bucket itself, not the proxy
    server.sql_env = {**server.env, "TIDB_PORT": os.environ.get("TIDB_PORT", "3306")}
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def healed(proxies):
    yield
    for proxy in proxies.values():
        proxy.heal()


def objects(service) -> set[str]:
    return {item.key for item in service.store.list()}


def stored(service, data: bytes) -> str:
    return upload(service, data)["file_id"]  # a new file each time, not a new version


def timed(service, method: str, path: str, body: bytes | None = None):
    started = time.monotonic()
    status, headers, data = service.request(method, path, body=body)
    return status, data, time.monotonic() - started


def error_code(body: bytes) -> str:
    return json.loads(body)["error"]


def files_in_database(service) -> int:
    return service.count_files()  # straight to the database, not through its proxy


# --- object storage --------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["refuse", "reset", "stall"])
def test_storage_failing_during_an_upload_is_503_and_keeps_nothing(service, proxies, fault):
    files_before, objects_before = files_in_database(service), objects(service)
    getattr(proxies["s3"], fault)()

    status, body, seconds = timed(service, "PUT", "/write?name=lost.bin", payload(5 * C))

    assert (status, error_code(body)) == (503, "storage_unavailable")
    assert seconds < BOUND
    assert files_in_database(service) == files_before
    proxies["s3"].heal()
    service.manage("cleanup", "--grace-minutes", "0")
    assert objects(service) == objects_before


@pytest.mark.parametrize("fault", ["refuse", "reset", "stall"])
def test_storage_failing_before_a_read_starts_is_an_error_status(service, proxies, fault):
    file_id = stored(service, payload(3 * C))
    getattr(proxies["s3"], fault)()

    status, body, seconds = timed(service, "GET", f"/read/{file_id}")

    assert status in (502, 503)
    assert error_code(body) in ("storage_unavailable", "chunk_missing")
    assert seconds < BOUND


@pytest.mark.parametrize("fault", ["reset", "stall", "cut"])
def test_storage_failing_mid_read_cuts_the_connection_short(service, proxies, fault):
    data = payload(120 * C, seed=4)
    file_id = stored(service, data)
    connection, response = held_back_read(service, file_id, BOUND)
    assert response.status == 200
    received = response.read(C)  # the body has started: the status can no longer change
    if fault == "cut":
        proxies["s3"].cut_responses_after(1000)  # every S3 response ends early
    else:
        getattr(proxies["s3"], fault)()

    # (read(n) answers b"" at a premature end rather than raising IncompleteRead)
    while piece := response.read(C):
        received += piece
    connection.close()

    assert int(response.getheader("Content-Length")) == len(data)
    assert len(received) < len(data)  # never a full-length body
    assert data.startswith(received)  # and what came is the file's own beginning
    proxies["s3"].heal()
    assert service.request("GET", f"/read/{file_id}")[2] == data


def test_deleted_or_overwritten_chunks_are_never_served_and_verify_reports_them(service):
    first = stored(service, payload(5 * C, seed=1))
    later = stored(service, payload(5 * C, seed=2))
    service.store.delete_many([chunk_key(first, 0)])
    service.store.put(chunk_key(later, 3), payload(C, seed=99))

    status, _, body = service.request("GET", f"/read/{first}")
    assert (status, error_code(body)) == (502, "chunk_missing")
    connection = service.connection()
    connection.request("GET", f"/read/{later}")
    response = connection.getresponse()
    assert response.status == 200
    with pytest.raises(http.client.IncompleteRead) as cut:
        response.read()
    assert len(cut.value.partial) == 3 * C
    connection.close()

    verify = service.manage("verify", first, later, check=False)
    assert verify.returncode == 1
    assert f"chunk 0 is missing ({chunk_key(first, 0)})" in verify.stdout
    assert "chunk 3 is corrupt" in verify.stdout


# --- the database -----------------------------------------------------------------------------


@pytest.mark.stack
@pytest.mark.parametrize("fault", ["refuse", "stall"])
def test_database_down_is_503_nothing_half_written_and_recovery_is_automatic(
    service, proxies, fault
):
    cached = stored(service, payload(2 * C, seed=5))
    service.request("GET", f"/read/{cached}")  # its metadata is in Redis now
    uncached = stored(service, payload(2 * C, seed=6))
    files_before, objects_before = files_in_database(service), objects(service)
    proxies["db"].drop_connections()  # the workers' pooled connections break too
    getattr(proxies["db"], fault)()

    status, body, seconds = timed(service, "PUT", "/write?name=x", payload(3 * C))
    assert (status, error_code(body)) == (503, "database_unavailable")
    assert seconds < BOUND
    status, body, _ = timed(service, "GET", f"/read/{uncached}")
    assert (status, error_code(body)) == (503, "database_unavailable")
    assert files_in_database(service) == files_before
    assert objects(service) == objects_before  # the upload's chunks were deleted again
    status, _, data = service.request("GET", f"/read/{cached}")  # a cache hit needs no database
    assert (status, data) == (200, payload(2 * C, seed=5))

    proxies["db"].heal()
    eventually(lambda: service.request("GET", f"/read/{uncached}")[0] == 200, BOUND)
    assert service.request("GET", f"/read/{uncached}")[2] == payload(2 * C, seed=6)
    assert stored(service, b"after the outage")


# --- Redis ------------------------------------------------------------------------------------


def recorded_trace(service, trace_id: str, root: str) -> tuple:
    """The built-in trace recorder's summary (cache_hit) of a trace, once its root span is in:
    the recorder writes a trace's spans by the second, and the root ends last."""

    def root_recorded() -> list[tuple]:
        rows = service.sql(
            f"SELECT cache_hit, name FROM traces_recordedtrace WHERE trace_id = '{trace_id}'"
        )
        return rows if rows and rows[0][1] == root else []

    return eventually(root_recorded, BOUND)[0]


def read_was_cache_hit(service, trace_id: str) -> bool:
    """Ask the built-in trace recorder whether this read's cache_lookup hit."""
    return bool(recorded_trace(service, trace_id, "GET /read/{file_id}")[0])


def failed_redis_commands(service, trace_id: str) -> list[tuple[str, str]]:
    """The Redis commands of a recorded trace that failed, and why: (command, error type),
    from the spans of the Redis instrumentation."""
    rows = service.sql(
        "SELECT name, error, status_message, attributes FROM traces_recordedspan"
        f" WHERE trace_id = '{trace_id}'"
    )
    return sorted(
        (name, message.split(":")[0])
        for name, error, message, attributes in rows
        if error and json.loads(attributes).get("db.system") == "redis"
    )


def trace_id_of(headers: dict[str, str]) -> str:
    return headers["traceresponse"].split("-")[1]


def read_trace_id(service, file_id: str) -> str:
    status, headers, _ = service.request("GET", f"/read/{file_id}")
    assert status == 200
    return trace_id_of(headers)


@pytest.mark.stack
@pytest.mark.parametrize("fault", ["refuse", "reset", "stall"])
def test_redis_down_or_slow_falls_back_to_the_database_then_recovers(service, proxies, fault):
    data = payload(2 * C, seed=7)
    getattr(proxies["redis"], fault)()
    # A stalled Redis answers nothing: only the client's short socket timeout ends a command.
    error = {"refuse": "ConnectionError", "reset": "ConnectionError", "stall": "TimeoutError"}

    traces = []
    for _ in range(3):
        path = f"/write?name=r-{uuid.uuid4().hex}.bin"
        status, write_headers, body = service.request("PUT", path, body=data)
        assert status == 201
        file_id = json.loads(body)["file_id"]
        status, read_headers, got = service.request("GET", f"/read/{file_id}")
        assert (status, got) == (200, data)
        traces.append((trace_id_of(write_headers), trace_id_of(read_headers)))

    # Not how fast, but that each request met the fault and went on without Redis: each of its
    # Redis commands (a write's DEL; a read's GET, and its SET once the database answered)
    # failed once, with the fault's own error, and the read was a cache miss.
    for write, read in traces:
        recorded_trace(service, write, "PUT /write")
        assert failed_redis_commands(service, write) == [("DEL", error[fault])]
        assert read_was_cache_hit(service, read) is False  # the database answered
        assert failed_redis_commands(service, read) == [
            ("GET", error[fault]),
            ("SET", error[fault]),
        ]

    proxies["redis"].heal()
    read_trace_id(service, file_id)  # fills the cache (on whichever worker)
    hits = [read_was_cache_hit(service, read_trace_id(service, file_id)) for _ in range(3)]
    assert hits == [True, True, True]


# --- processes and clients ---------------------------------------------------------------------


def worker_serving(service, client_port: int) -> int:
    """The pid of the gunicorn worker holding the connection from `client_port`."""
    table = subprocess.run(
        ["ss", "-tnpH", "state", "established", f"( sport = :{service.port} )"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for line in table.splitlines():
        if f":{client_port} " in line:
            return int(line.split("pid=")[1].split(",")[0])
    raise AssertionError(f"no worker holds the connection from port {client_port}:\n{table}")


@pytest.mark.stack
def test_worker_killed_mid_upload_leaves_no_file_and_cleanup_takes_its_chunks_after_its_lease(
    service,
):
    files_before, objects_before = files_in_database(service), objects(service)
    sock = socket.create_connection(("127.0.0.1", service.port))
    sock.sendall(unfinished_upload("killed.bin", declared=10 * C, sent=4 * C))
    eventually(lambda: len(objects(service) - objects_before) >= 2, BOUND)  # the first chunks
    victim = worker_serving(service, sock.getsockname()[1])
    os.kill(victim, signal.SIGKILL)

    with ThreadPoolExecutor(4) as pool:  # the other workers go on serving meanwhile
        answers = list(pool.map(lambda _: service.request("GET", "/health")[0], range(8)))
    sock.close()

    assert answers == [200] * 8
    left = objects(service) - objects_before
    assert len({key.split("/")[1] for key in left}) == 1  # the killed upload's chunks

    assert files_in_database(service) == files_before
    # Its record still holds a lease (a stalled worker could still be writing): kept, whatever
    # the grace, until the lease has run out.
    service.manage("cleanup", "--grace-minutes", "0")
    assert objects(service) - objects_before == left
    service.sql_execute(
        "UPDATE files_blob SET lease_expires_at = '2000-01-01 00:00:00' WHERE state = 0"
    )
    service.manage("cleanup", "--grace-minutes", "0")
    assert objects(service) == objects_before
    assert service.sql("SELECT COUNT(*) FROM files_blob WHERE state = 0") == [(0,)]


def test_delete_while_cached_is_404_at_once_on_every_worker(service):
    file_id = stored(service, payload(C, seed=8))
    with ThreadPoolExecutor(8) as pool:
        warm = list(pool.map(lambda _: service.request("GET", f"/read/{file_id}")[0], range(16)))
    assert warm == [200] * 16

    assert service.request("DELETE", f"/files/{file_id}")[0] == 204
    with ThreadPoolExecutor(8) as pool:
        after = list(pool.map(lambda _: service.request("GET", f"/read/{file_id}")[0], range(24)))

    assert after == [404] * 24


# --- load --------------------------------------------------------------------------------------


def test_bounded_load_of_several_users_loses_nothing_and_mixes_no_one_up(service):
    from bench.load import orphans, run_load

    tokens = [
        service.manage("create_token", f"load-{n}", "--create-user").stdout.strip()
        for n in range(3)
    ]
    stats = run_load(
        f"http://127.0.0.1:{service.port}", clients=8, operations=240, chunk_size=C, tokens=tokens
    )

    summary = stats.summary()
    assert summary["operations"] >= 240
    assert stats.server_errors == []
    assert stats.mismatches == []
    kinds = {"upload", "read", "ranged read", "delete", "snoop", "list"}
    assert set(summary["by_kind"]) == kinds
    assert summary["statuses"].get("404", 0) >= summary["by_kind"]["snoop"]
    assert orphans(service) == 0
    service.manage("cleanup", "--grace-minutes", "0")
    assert orphans(service) == 0


# --- resumable uploads -------------------------------------------------------------------------


def start_patch(service, path: str, offset: int, length: int, first: bytes) -> socket.socket:
    """A PATCH of `length` bytes whose first bytes are sent; the rest is up to the test."""
    sock = socket.create_connection(("127.0.0.1", service.port), timeout=BOUND)
    sock.sendall(patch_head(path, offset, length) + first)
    return sock


def answer(sock: socket.socket) -> tuple[int, dict]:
    response = http.client.HTTPResponse(sock)
    response.begin()
    body = response.read()
    sock.close()
    return response.status, json.loads(body) if body else {}


def resume(service, path: str, data: bytes) -> None:
    """What a tus client does after a failure: ask for the offset, send the rest from there
    (again while a dead request's lock has not yet lapsed)."""

    def patched_unless_locked() -> int | None:
        offset = tus_offset(service, path)
        status = tus_patch(service, path, data[offset:], offset).status
        return None if status == 423 else status  # 423: locked, try again

    assert eventually(patched_unless_locked, BOUND) == 204


def read_back(service, path: str) -> bytes:
    status, _, data = service.request("GET", "/read/" + path.rsplit("/", 1)[1])
    assert status == 200
    return data


@pytest.mark.parametrize("dependency", ["s3", pytest.param("db", marks=pytest.mark.stack)])
def test_a_dependency_failing_mid_patch_is_503_and_the_upload_resumes_where_it_stopped(
    service, proxies, dependency
):
    data = payload(8 * C, seed=21)
    path = tus_create(service, len(data))
    sock = start_patch(service, path, 0, 4 * C, data[: 3 * C])
    eventually(lambda: tus_offset(service, path) == 3 * C)  # recorded while the client is quiet

    proxies[dependency].drop_connections()
    proxies[dependency].refuse()
    sock.sendall(data[3 * C : 4 * C])
    status, body = answer(sock)

    expected = {"s3": "storage_unavailable", "db": "database_unavailable"}[dependency]
    assert (status, body["error"]) == (503, expected)
    proxies[dependency].heal()
    assert tus_offset(service, path) == 3 * C  # what was recorded stays; nothing more
    resume(service, path, data)
    assert read_back(service, path) == data


def test_a_client_cut_off_mid_patch_keeps_every_byte_that_arrived(service):
    data = payload(6 * C, seed=22)
    path = tus_create(service, len(data))
    sock = start_patch(service, path, 0, len(data), data[: 2 * C + 300])

    sock.close()

    eventually(lambda: tus_offset(service, path) == 2 * C + 300)
    resume(service, path, data)
    assert read_back(service, path) == data


def test_a_second_patch_while_one_is_running_is_423_and_one_from_a_stale_offset_409(service):
    data = payload(2 * C, seed=23)
    path = tus_create(service, len(data))
    sock = start_patch(service, path, 0, len(data), data[:C])
    eventually(lambda: tus_offset(service, path) == C)  # the first request holds the lock

    assert tus_patch(service, path, data[C:], C).status == 423
    assert tus_patch(service, path, data, 0).status == 409
    sock.sendall(data[C:])
    assert answer(sock)[0] == 204
    assert read_back(service, path) == data


def test_parts_finished_at_the_same_moment_make_one_correct_file(service):
    for round_ in range(5):
        datas = [payload(2 * C + 1, seed=30 + round_), payload(C, seed=40 + round_)]
        parts = [tus_create(service, len(data), concat="partial") for data in datas]
        for part, data in zip(parts, datas, strict=True):
            assert tus_patch(service, part, data[:-1], 0).status == 204
        final = tus_create(service, None, concat="final;" + " ".join(parts))

        with ThreadPoolExecutor(2) as pool:  # both last bytes at once, maybe on two workers
            last = [
                pool.submit(tus_patch, service, part, data[-1:], len(data) - 1)
                for part, data in zip(parts, datas, strict=True)
            ]
            assert [future.result().status for future in last] == [204, 204]

        assert tus_head(service, final).headers["Upload-Offset"] == str(3 * C + 1)
        assert read_back(service, final) == b"".join(datas)


@pytest.mark.stack
def test_a_worker_killed_mid_patch_leaves_an_upload_another_worker_resumes(service):
    data = payload(8 * C, seed=24)
    path = tus_create(service, len(data))
    sent = 3 * C + 100
    sock = start_patch(service, path, 0, len(data), data[:sent])

    def recorded_while_sending() -> bool:
        nonlocal sent
        sock.sendall(data[sent : sent + 1024])  # a client goes on sending, slowly
        sent += 1024
        return tus_offset(service, path) >= 3 * C

    eventually(recorded_while_sending)  # each chunk is recorded once it is stored
    os.kill(worker_serving(service, sock.getsockname()[1]), signal.SIGKILL)
    sock.close()

    assert tus_offset(service, path) >= 3 * C  # only the partial chunk was lost with it
    resume(service, path, data)  # 423 until the dead request's lease lapses
    assert read_back(service, path) == data
