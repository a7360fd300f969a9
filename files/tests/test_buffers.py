"""The worker's chunk memory budget: first buffers wait, extra ones leave headroom, and many
transfers at once stay within it."""

from __future__ import annotations

import io
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from files.buffers import BufferBudget, chunk_budget
from files.errors import ServerBusy
from files.operations.write import ChunkUploader, stream_chunks
from testing.fixtures import TEST_CHUNK_SIZE
from testing.uploads import download, payload, upload

C = TEST_CHUNK_SIZE


def test_extra_buffers_leave_a_quarter_of_the_budget_free():
    budget = BufferBudget(limit=100, wait_seconds=1)

    granted = [budget.try_acquire(10) for _ in range(10)]

    assert granted == [True] * 7 + [False] * 3  # 70 in use; an 8th would leave under 25
    assert budget.in_use == 70
    budget.acquire(30)  # an essential buffer may use the headroom
    assert budget.in_use == budget.peak == 100


def test_an_essential_buffer_waits_for_a_release():
    budget = BufferBudget(limit=100, wait_seconds=10)
    budget.acquire(100)
    acquired = threading.Event()

    waiter = threading.Thread(target=lambda: (budget.acquire(40), acquired.set()))
    waiter.start()
    assert not acquired.wait(0.2)  # still full
    budget.release(50)
    waiter.join(5)

    assert acquired.is_set()
    assert budget.in_use == 90


def test_an_essential_buffer_that_never_finds_room_is_server_busy():
    budget = BufferBudget(limit=100, wait_seconds=0.1)
    budget.acquire(100)

    with pytest.raises(ServerBusy) as raised:
        budget.acquire(1)

    assert (raised.value.status, raised.value.code) == (503, "server_busy")
    assert raised.value.headers == {"Retry-After": "1"}


@pytest.mark.django_db
def test_many_reads_at_once_stay_within_the_budget(client, settings):
    settings.CHUNK_MEMORY_BYTES = 6 * C  # far less than 12 reads x their windows of 8
    settings.READ_CONCURRENCY = 8
    datas = [payload(9 * C + n, seed=n) for n in range(12)]
    stored = [upload(client, data)["file_id"] for data in datas]
    for file_id in stored:  # cached: the reads below need no database (SQLite in a test's
        download(client, file_id)  # transaction is locked to other threads)
    budget = chunk_budget()

    with ThreadPoolExecutor(12) as pool:
        read_back = list(pool.map(lambda file_id: download(client, file_id), stored))

    assert read_back == datas
    assert C < budget.peak <= 6 * C
    assert budget.in_use == 0


def test_many_uploads_at_once_stay_within_the_budget(settings, store):
    """The chunk-reading side of twelve uploads at once (the database is not involved)."""
    settings.CHUNK_MEMORY_BYTES = 6 * C
    datas = [payload(9 * C + n, seed=n) for n in range(12)]
    budget = chunk_budget()

    def store_chunks(data: bytes) -> list[tuple[int, str]]:
        uploader = ChunkUploader(store, uuid.uuid4(), limit=4)
        stream_chunks(io.BytesIO(data), len(data), uploader)
        return uploader.finish()

    with ThreadPoolExecutor(12) as pool:
        chunk_lists = list(pool.map(store_chunks, datas))

    assert [sum(size for size, _ in chunks) for chunks in chunk_lists] == [len(d) for d in datas]
    assert C < budget.peak <= 6 * C
    assert budget.in_use == 0
