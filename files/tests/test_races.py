"""Races between what adds a reference to stored content and what removes one, with the
collector (`cleanup --grace-minutes 0`, retention 0 days: the trash and replaced versions expire
at once) running flat out beside them. Each race runs ROUNDS times, its two sides released
together; either may win, but whatever was answered as done holds: what was copied, restored
or moved reads back byte-identical, what lost is a clean 404 or 409. Afterwards `verify --all`
finds nothing wrong and `cleanup` no orphan.

Runs on the database the environment configures: SQLite, or MariaDB (three workers) in
`make test-services`.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import pytest

from testing.collector import Collector
from testing.mysql import own_database
from testing.servers import GunicornServer
from testing.uploads import payload, send

C = 64 * 1024
ROUNDS = 10


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GunicornServer]:
    settings = {
        "CHUNK_SIZE_BYTES": str(C),
        "MINIO_ENDPOINT": "",
        "TRASH_RETENTION_DAYS": "0",
        "VERSION_RETENTION_DAYS": "0",
        **own_database("races", workers=3),
    }
    server = GunicornServer(tmp_path_factory.mktemp("races"), **settings)
    yield server
    server.stop()


@pytest.fixture
def collector(
    service: GunicornServer, record_property: Callable[[str, object], None]
) -> Iterator[Collector]:
    """The collector races the test's requests; once they are done, the store must be whole."""
    with Collector(service) as running:
        yield running
        record_property("collector_runs", running.stop())
    assert_nothing_lost_and_nothing_left(service)


@pytest.fixture
def outcomes(record_property: Callable[[str, object], None]) -> Iterator[Counter[str]]:
    """Which side won each round, for the record (`--junitxml`): both must have had chances."""
    counted: Counter[str] = Counter()
    yield counted
    record_property("outcomes", dict(counted))


def together(*sides: Callable[[], Any]) -> list[Any]:
    """Run the sides at once, each released by the same barrier; their results, in order."""
    barrier = threading.Barrier(len(sides))

    def released(side: Callable[[], Any]) -> Any:
        barrier.wait(timeout=30)
        return side()

    with ThreadPoolExecutor(len(sides)) as pool:
        return [future.result() for future in [pool.submit(released, side) for side in sides]]


def call(service: GunicornServer, method: str, path: str, body: Any = None, **headers: str):  # noqa: ANN201
    data = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
    if body is not None and not isinstance(body, bytes):
        headers["Content-Type"] = "application/json"
    reply = send(service, method, path, data, headers)
    answer = json.loads(reply.body) if reply.body.startswith(b"{") else None
    return reply.status, answer


def write(service: GunicornServer, path: str, data: bytes) -> dict:
    status, answer = call(service, "PUT", f"/write?path={path}", data)
    assert status in (200, 201), answer
    return answer


def read(service: GunicornServer, file_id: str, version: str | None = None) -> bytes:
    query = f"?version={version}" if version else ""
    reply = send(service, "GET", f"/read/{file_id}{query}")
    assert reply.status == 200, reply.body
    return reply.body


def trash_id_of(service: GunicornServer, entry_id: str) -> str:
    _, answer = call(service, "GET", "/trash?limit=1000")
    found = [
        item["trash_id"]
        for item in answer["entries"]
        if entry_id in (item.get("file_id"), item.get("folder_id"))
    ]
    assert found, f"{entry_id} is not in the trash"
    return found[0]


def trash_and_purge(service: GunicornServer, file_id: str) -> int:
    status, _ = call(service, "DELETE", f"/files/{file_id}")
    if status != 204:
        return status
    status, _ = call(service, "GET", f"/files/{file_id}")
    assert status == 404
    # The collector may have purged it already (retention 0): then there is nothing to purge.
    _, answer = call(service, "GET", "/trash?limit=1000")
    items = [item for item in answer["entries"] if item.get("file_id") == file_id]
    if not items:
        return 204
    status, _ = call(service, "DELETE", f"/trash/{items[0]['trash_id']}")
    if status == 404:  # the collector was quicker
        _, answer = call(service, "GET", "/trash?limit=1000")
        assert file_id not in {item.get("file_id") for item in answer["entries"]}
        return 204
    return status


def assert_nothing_lost_and_nothing_left(service: GunicornServer) -> None:
    verified = service.manage("verify", "--all", check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    cleaned = service.manage("cleanup", "--grace-minutes", "0", "--dry-run", "-v1", check=False)
    assert cleaned.returncode == 0, cleaned.stderr
    assert "found 0 orphaned uploads" in cleaned.stdout, cleaned.stdout
    assert_every_version_has_its_content(service)


def assert_every_version_has_its_content(service: GunicornServer) -> None:
    """No version points at a content whose rows or objects are gone."""
    missing = service.sql(
        "SELECT v.id FROM files_version v LEFT JOIN files_blob b ON b.id = v.blob_id "
        "WHERE b.id IS NULL"
    )
    assert missing == []
    blobs = service.sql("SELECT id, chunk_count FROM files_blob WHERE state = 1")
    keys = {item.key for item in service.store.list("chunks/")}
    for blob_id, chunk_count in blobs:
        expected = {f"chunks/{as_uuid(blob_id)}/{index}" for index in range(chunk_count)}
        assert expected <= keys, f"content {blob_id} lost objects"


def as_uuid(value: Any) -> str:
    text = value if isinstance(value, str) else value.hex() if isinstance(value, bytes) else value
    return str(uuid.UUID(str(text)))


def test_copy_against_purge(service: GunicornServer, collector: Collector, outcomes: Counter):
    for n in range(ROUNDS):
        data = payload(3 * C + n, seed=n)
        original = write(service, f"/copy/{n}.bin", data)["file_id"]
        copied, purged = together(
            partial(call, service, "POST", f"/files/{original}/copy", {"path": f"/copy/{n}.c"}),
            partial(trash_and_purge, service, original),
        )
        assert purged == 204
        status, answer = copied
        outcomes["copied" if status == 201 else "purged first"] += 1
        if status == 201:
            assert read(service, answer["file_id"]) == data
        else:
            assert (status, answer["error"]) == (404, "not_found")
    assert sum(outcomes.values()) == ROUNDS


def test_restoring_a_version_against_its_expiry(
    service: GunicornServer, collector: Collector, outcomes: Counter
):
    for n in range(ROUNDS):
        first, second = payload(2 * C + n, seed=100 + n), payload(C + n, seed=200 + n)
        made = write(service, f"/versions/{n}.bin", first)
        write(service, f"/versions/{n}.bin", second)  # the first is replaced: expired at once
        status, answer = call(
            service, "POST", f"/files/{made['file_id']}/versions/{made['version_id']}/restore"
        )
        outcomes["restored" if status == 201 else "expired first"] += 1
        if status == 201:
            assert read(service, made["file_id"]) == first
            assert read(service, made["file_id"], answer["version_id"]) == first
        else:
            assert (status, answer["error"]) == (404, "not_found")
            assert read(service, made["file_id"]) == second


def test_restoring_from_the_trash_against_its_purge(
    service: GunicornServer, collector: Collector, outcomes: Counter
):
    for n in range(ROUNDS):
        data = payload(2 * C + 3 * n, seed=300 + n)
        file_id = write(service, f"/trashed/{n}.bin", data)["file_id"]
        status, _ = call(service, "DELETE", f"/files/{file_id}")
        assert status == 204
        _, trash = call(service, "GET", "/trash?limit=1000")
        items = [item["trash_id"] for item in trash["entries"] if item.get("file_id") == file_id]
        if not items:  # purged before we could see it
            outcomes["purged before listed"] += 1
            continue
        status, answer = call(service, "POST", f"/trash/{items[0]}/restore")
        outcomes["restored" if status == 200 else "purged first"] += 1
        if status == 200:
            assert read(service, file_id) == data
        else:
            assert (status, answer["error"]) == (404, "not_found")
            assert call(service, "GET", f"/files/{file_id}")[0] == 404


def test_reading_a_version_while_it_is_overwritten_and_expired(
    service: GunicornServer, collector: Collector, outcomes: Counter
):
    """A read that began before an overwrite sends the old content whole, or is cut short:
    never a byte of the new content, never a wrong one."""
    for n in range(ROUNDS):
        old, new = payload(12 * C + n, seed=400 + n), payload(12 * C + n, seed=500 + n)
        file_id = write(service, f"/overwritten/{n}.bin", old)["file_id"]
        reading, overwritten = together(
            partial(read_whatever_arrives, service, file_id),
            partial(write, service, f"/overwritten/{n}.bin", new),
        )
        assert overwritten["file_id"] == file_id
        outcomes["old whole" if reading == old else "new whole" if reading == new else "cut"] += 1
        assert reading in (old, new) or old.startswith(reading) or new.startswith(reading)
        assert read(service, file_id) == new


def read_whatever_arrives(service: GunicornServer, file_id: str) -> bytes:
    connection = service.connection(timeout=30)
    try:
        connection.request("GET", f"/read/{file_id}")
        response = connection.getresponse()
        assert response.status == 200
        received = b""
        while piece := read_some(response):
            received += piece
        return received
    finally:
        connection.close()


def read_some(response: Any) -> bytes:
    try:
        return response.read1(C)
    except (ConnectionError, OSError):
        return b""


def test_moving_a_file_against_trashing_its_folder(
    service: GunicornServer, collector: Collector, outcomes: Counter
):
    for n in range(ROUNDS):
        data = payload(C + n, seed=600 + n)
        file_id = write(service, f"/moving/{n}/inner/file.bin", data)["file_id"]
        folder = folder_id(service, f"/moving/{n}")
        moved, trashed = together(
            partial(call, service, "POST", f"/files/{file_id}/move", {"path": f"/moved/{n}.bin"}),
            partial(call, service, "DELETE", f"/folders/{folder}"),
        )
        assert trashed[0] == 204
        outcomes["moved out first" if moved[0] == 200 else "trashed with it"] += 1
        if moved[0] == 200:  # it left before its folder went: it lives at its new place
            assert moved[1]["path"] == f"/moved/{n}.bin"
            assert read(service, file_id) == data
        else:  # it went with its folder: into the trash, not anywhere else
            assert (moved[0], moved[1]["error"]) == (404, "not_found")
            assert call(service, "GET", f"/files/{file_id}")[0] == 404


def folder_id(service: GunicornServer, path: str) -> str:
    status, answer = call(service, "GET", f"/files?path={path}&limit=1")
    assert status == 200, answer
    return answer["folder_id"]


def test_crossed_folder_moves_cannot_make_a_cycle(service: GunicornServer, collector: Collector):
    for n in range(ROUNDS):
        made = [call(service, "POST", "/folders", {"path": f"/cycle/{n}/{x}"}) for x in "ab"]
        a, b = (answer["folder_id"] for _, answer in made)
        first, second = together(
            partial(call, service, "POST", f"/folders/{a}/move", {"path": f"/cycle/{n}/b/a"}),
            partial(call, service, "POST", f"/folders/{b}/move", {"path": f"/cycle/{n}/a/b"}),
        )
        # The second, if it finds its target's folder moved away, makes that path anew.
        assert {first[0], second[0]} <= {200, 409} and 200 in (first[0], second[0])
        for moved in (a, b):  # both still hang from the root: a path each, no loop
            status, answer = call(service, "GET", f"/folders/{moved}")
            assert status == 200, answer
            assert folder_id(service, answer["path"]) == moved


def test_making_one_folder_twice_at_once_makes_it_once(
    service: GunicornServer, collector: Collector
):
    for n in range(ROUNDS):
        answers = together(
            partial(call, service, "POST", "/folders", {"path": f"/twice/{n}/Results"}),
            partial(call, service, "POST", "/folders", {"path": f"/twice/{n}/results"}),
        )
        assert sorted(status for status, _ in answers) == [201, 409], answers
        _, listing = call(service, "GET", f"/files?path=/twice/{n}")
        assert len(listing["entries"]) == 1


@pytest.mark.parametrize("condition", ["", "*"])
def test_writes_to_one_new_path_make_one_file(
    service: GunicornServer, collector: Collector, condition: str
):
    """Two writers, one name (in two cases): one file. Without a condition the second write is
    its next version; with `If-None-Match: *` it is refused."""
    for n in range(ROUNDS):
        contents = payload(C + 1, seed=700 + n), payload(C + 2, seed=800 + n)
        headers = {"If-None-Match": condition} if condition else {}
        folder = f"/same/{'refused' if condition else 'versioned'}/{n}"

        answers = together(
            *(
                partial(call, service, "PUT", f"/write?path={folder}/{name}", data, **headers)
                for name, data in zip(("Data.csv", "data.CSV"), contents, strict=True)
            )
        )
        statuses = sorted(status for status, _ in answers)
        assert statuses == ([201, 412] if condition else [200, 201]), answers
        ids = {answer["file_id"] for status, answer in answers if status < 300}
        assert len(ids) == 1
        (file_id,) = ids
        # The last write's content is current (the one it replaced expires at once here).
        last = next(answer for status, answer in answers if status == (201 if condition else 200))
        assert call(service, "GET", f"/files/{file_id}")[1]["sha256"] == last["sha256"]
