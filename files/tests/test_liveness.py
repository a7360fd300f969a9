"""Nothing collected that is still needed: `cleanup --grace-minutes 0` runs in a loop while slow
writes, paused and active resumable uploads, concatenations and deletes go on, and every upload
either fails cleanly or reads back byte-identical; afterwards `verify --all` is clean and nothing
is orphaned. Then the two ends of a record's life: a write whose record was collected (its worker
stalled past its lease) fails instead of answering 201, and a PATCH under way keeps its upload
from expiring.

Runs on the database the environment configures: SQLite, or MariaDB in `make test-services`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from testing.collector import Collector
from testing.conditions import eventually
from testing.mysql import own_database
from testing.servers import GunicornServer
from testing.uploads import TUS, payload, send

C = 64 * 1024


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GunicornServer]:
    settings = {
        "CHUNK_SIZE_BYTES": str(C),
        "MINIO_ENDPOINT": "",
        "UPLOAD_IDLE_TIMEOUT_SECONDS": "60",  # the pauses below wait for cleanups to run
        **own_database("liveness", workers=3),
    }
    server = GunicornServer(tmp_path_factory.mktemp("liveness"), **settings)
    yield server
    server.stop()


def slow_body(data: bytes, pause: Collector) -> Iterator[bytes]:
    """The first half, then nothing until cleanups have run, then the rest."""
    half = len(data) // 2
    yield data[:half]
    pause.wait_for_runs(2)
    yield data[half:]


def slow_write(service: GunicornServer, cleanup: Collector, n: int) -> tuple[str, bytes, int]:
    data = payload(5 * C + n, seed=n)
    reply = send(
        service,
        "PUT",
        f"/write?path=/slow/{n}.bin",
        slow_body(data, cleanup),
        {"Content-Length": str(len(data))},
    )
    return f"/slow/{n}.bin", data, reply.status


def tus_create(service: GunicornServer, length: int | None, **headers: str) -> str:
    if length is not None:
        headers["Upload-Length"] = str(length)
    status, answered, _ = service.request("POST", "/uploads/", headers={**TUS, **headers})
    assert status == 201
    return answered["Location"].removeprefix(service.url)


def tus_patch(
    service: GunicornServer, path: str, body: bytes | Iterator[bytes], offset: int, length: int
) -> int:
    headers = {
        **TUS,
        "Content-Type": "application/offset+octet-stream",
        "Upload-Offset": str(offset),
        "Content-Length": str(length),
    }
    return service.request("PATCH", path, body, headers)[0]


def paused_upload(service: GunicornServer, cleanup: Collector, n: int) -> tuple[str, bytes, int]:
    """Half in one PATCH; cleanups run while nobody writes to it; the rest in another."""
    data = payload(4 * C + 100 * n, seed=100 + n)
    name = f"paused-{n}.bin"
    path = tus_create(service, len(data), **{"Upload-Metadata": f"path {b64(f'/tus/{name}')}"})
    half = len(data) // 2
    assert tus_patch(service, path, data[:half], 0, half) == 204
    cleanup.wait_for_runs(2)
    status = tus_patch(service, path, data[half:], half, len(data) - half)
    return f"/tus/{name}", data, status


def active_patch(service: GunicornServer, cleanup: Collector, n: int) -> tuple[str, bytes, int]:
    """One PATCH that pauses mid-body while cleanups run."""
    data = payload(6 * C + 7 * n, seed=200 + n)
    name = f"active-{n}.bin"
    path = tus_create(service, len(data), **{"Upload-Metadata": f"path {b64(f'/tus/{name}')}"})
    status = tus_patch(service, path, slow_body(data, cleanup), 0, len(data))
    return f"/tus/{name}", data, status


def concatenation(service: GunicornServer, cleanup: Collector, n: int) -> tuple[str, bytes, int]:
    first, second = payload(C + 11, seed=300 + n), payload(2 * C + 5, seed=400 + n)
    parts = [
        tus_create(service, len(part), **{"Upload-Concat": "partial"}) for part in (first, second)
    ]
    assert tus_patch(service, parts[0], first, 0, len(first)) == 204
    cleanup.wait_for_runs(1)
    name = f"joined-{n}.bin"
    final = tus_create(
        service,
        None,
        **{
            "Upload-Concat": "final;" + " ".join(parts),
            "Upload-Metadata": f"path {b64(f'/tus/{name}')}",
        },
    )
    cleanup.wait_for_runs(1)
    status = tus_patch(service, parts[1], second, 0, len(second))
    assert final
    return f"/tus/{name}", first + second, status


def write_and_purge(service: GunicornServer, cleanup: Collector, n: int) -> tuple[str, bytes, int]:
    """A file deleted and purged while cleanups run: gone, and nothing of it left."""
    path = f"/doomed/{n}.bin"
    reply = send(service, "PUT", f"/write?path={path}", payload(3 * C, seed=500 + n))
    file_id = json.loads(reply.body)["file_id"]
    send(service, "DELETE", f"/files/{file_id}")
    trash = json.loads(send(service, "GET", "/trash?limit=1000").body)["entries"]
    (item,) = [entry for entry in trash if entry.get("file_id") == file_id]
    status = send(service, "DELETE", f"/trash/{item['trash_id']}").status
    return path, b"", status


def b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


def read_path(service: GunicornServer, path: str) -> bytes | None:
    folder, _, name = path.rpartition("/")
    listing = json.loads(send(service, "GET", f"/files?path={folder or '/'}").body)
    found = [entry for entry in listing.get("entries", []) if entry["name"] == name]
    if not found:
        return None
    reply = send(service, "GET", f"/read/{found[0]['file_id']}")
    assert reply.status == 200, reply.status
    return reply.body


def test_cleanup_at_grace_zero_collects_nothing_that_uploads_in_flight_need(
    service, record_property
):
    cleanup = Collector(service)
    kinds = [slow_write, paused_upload, active_patch, concatenation, write_and_purge]
    try:
        with ThreadPoolExecutor(6) as pool:
            outcomes = list(
                pool.map(
                    lambda job: job[0](service, cleanup, job[1]),
                    [(kind, n) for n in range(3) for kind in kinds],
                )
            )
    finally:
        runs = cleanup.stop()

    for (path, data, status), kind in zip(
        outcomes, [kind for _ in range(3) for kind in kinds], strict=True
    ):
        if kind is write_and_purge:
            assert status == 204 and read_path(service, path) is None
        else:
            assert status in (201, 204), (kind.__name__, path, status)
            assert read_path(service, path) == data, (kind.__name__, path)
    verified = service.manage("verify", "--all", check=False)
    assert verified.returncode == 0, verified.stdout
    final = service.manage("cleanup", "--grace-minutes", "0").stdout
    assert "found 0 orphaned uploads" in final
    assert runs >= 6
    record_property("cleanup_runs", runs)  # for the record (--junitxml): how hard it was tried


def test_a_write_whose_record_was_collected_fails_instead_of_answering_201(service):
    cleanup_done = threading.Event()

    def body() -> Iterator[bytes]:
        yield payload(3 * C)
        # The worker stalls past its lease: cleanup takes the record for dead.
        eventually(
            lambda: service.sql("SELECT COUNT(*) FROM files_blob WHERE state = 0")[0][0] >= 1
        )
        service.sql_execute(
            "UPDATE files_blob SET lease_expires_at = '2000-01-01 00:00:00' WHERE state = 0"
        )
        service.manage("cleanup", "--grace-minutes", "0")
        cleanup_done.set()
        yield payload(2 * C, seed=1)

    reply = send(
        service, "PUT", "/write?path=/abandoned.bin", body(), {"Content-Length": str(5 * C)}
    )

    assert cleanup_done.is_set()
    assert (reply.status, json.loads(reply.body)["error"]) == (503, "write_abandoned")
    assert read_path(service, "/abandoned.bin") is None


def test_a_patch_under_way_keeps_its_upload_from_expiring(service):
    data = payload(4 * C, seed=9)
    path = tus_create(service, len(data), **{"Upload-Metadata": f"path {b64('/kept.bin')}"})
    upload_id = path.rsplit("/", 1)[1].replace("-", "")

    def locked() -> bool:
        query = f"SELECT lock_token FROM files_upload WHERE id = '{upload_id}'"
        return service.sql(query)[0][0] != ""

    def body() -> Iterator[bytes]:
        yield data[: 2 * C]
        eventually(locked)  # the PATCH has begun: it holds the upload
        # Expired as far as its clock goes, while this PATCH is still sending.
        service.sql_execute(
            f"UPDATE files_upload SET expires_at = '2000-01-01 00:00:00' WHERE id = '{upload_id}'"
        )
        output = service.manage("cleanup", "--grace-minutes", "0").stdout
        assert "expired upload" not in output
        yield data[2 * C :]

    assert tus_patch(service, path, body(), 0, len(data)) == 204
    assert read_path(service, "/kept.bin") == data
