"""The worker's chunk memory budget: first buffers wait, extra ones leave headroom, and many
transfers at once stay within it."""

from __future__ import annotations

import io
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from files.blobs import WritingLease
from files.buffers import BufferBudget, chunk_budget
from files.operations.write import stream_chunks
from files.pipeline.upload import ChunkUploader
from files.quotas import Space
from labdropbox.api.errors import ServerBusy
from testing.uploads import download, payload, upload

MIB = 1024 * 1024
C = 128 * 1024  # chunks above the small-buffer size, which never waits


def test_extra_buffers_leave_a_quarter_of_the_budget_free():
    budget = BufferBudget(limit=100, wait_seconds=1)
    transfer = object()

    granted = [budget.try_acquire(10, transfer) for _ in range(10)]

    assert granted == [True] * 7 + [False] * 3  # 70 in use; an 8th would leave under 25
    assert budget.in_use == 70
    budget.acquire(30, object())  # an essential buffer may use the headroom
    assert budget.in_use == budget.peak == 100


def test_extra_buffers_are_shared_fairly_between_transfers():
    budget = BufferBudget(limit=100, wait_seconds=1)
    first, second, third = object(), object(), object()
    budget.acquire(10, first)
    budget.acquire(10, second)

    assert budget.try_acquire(20, first)  # 30 of a 37-byte share (75 / 2)
    assert not budget.try_acquire(10, first)  # 40 would be over it
    budget.acquire(10, third)  # a third transfer: shares of 25
    assert not budget.try_acquire(20, second)  # 30 would be over it
    assert budget.try_acquire(15, second)  # 25 is not
    assert budget.transfers == 3
    budget.release(30, first)
    assert budget.transfers == 2


def test_an_essential_buffer_waits_for_a_release():
    budget = BufferBudget(limit=100 * MIB, wait_seconds=10)
    holder = object()
    budget.acquire(100 * MIB, holder)
    acquired = threading.Event()

    waiter = threading.Thread(target=lambda: (budget.acquire(40 * MIB, object()), acquired.set()))
    waiter.start()
    assert not acquired.wait(0.2)  # still full
    budget.release(50 * MIB, holder)
    waiter.join(5)

    assert acquired.is_set()
    assert budget.in_use == 90 * MIB


def test_an_essential_buffer_that_never_finds_room_is_server_busy():
    budget = BufferBudget(limit=100 * MIB, wait_seconds=0.1)
    budget.acquire(100 * MIB, object())

    with pytest.raises(ServerBusy) as raised:
        budget.acquire(MIB, object())

    assert (raised.value.status, raised.value.code) == (503, "server_busy")
    assert raised.value.headers == {"Retry-After": "1"}


@pytest.mark.django_db
def test_many_reads_at_once_stay_within_the_budget(client, settings):
    settings.CHUNK_SIZE = C
    settings.CHUNK_MEMORY_BYTES = 6 * C  # far less than 12 reads x their windows of 8
    settings.READ_CONCURRENCY = 8
    datas = [payload(9 * C, seed=n) for n in range(12)]  # no small last chunk
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
    settings.CHUNK_SIZE = C
    settings.CHUNK_MEMORY_BYTES = 6 * C
    datas = [payload(9 * C, seed=n) for n in range(12)]  # no small last chunk
    budget = chunk_budget()

    def store_chunks(data: bytes) -> list[tuple[int, str]]:
        uploader = ChunkUploader(store, uuid.uuid4(), limit=4)
        lease = WritingLease(uuid.uuid4())
        stream_chunks(io.BytesIO(data), len(data), uploader, Space(None), lease)
        return list(uploader.finish().values())

    with ThreadPoolExecutor(12) as pool:
        chunk_lists = list(pool.map(store_chunks, datas))

    assert [sum(size for size, _ in chunks) for chunks in chunk_lists] == [len(d) for d in datas]
    assert C < budget.peak <= 6 * C
    assert budget.in_use == 0


def test_a_small_first_buffer_never_waits():
    budget = BufferBudget(limit=1024 * 1024, wait_seconds=0.1)
    budget.acquire(1024 * 1024, object())  # full

    budget.acquire(1024, object())  # a 1 KiB read or the edge of a range: at once

    assert budget.in_use == 1024 * 1024 + 1024
