"""Storing chunks: read from a body in reserved buffers and uploaded on the I/O pool, never more
than a limit in memory at once. Writes and resumable uploads (PATCH) use it."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, wait

from opentelemetry import context as otel_context
from opentelemetry import trace

from files import spans
from files.buffers import chunk_budget
from files.io_pool import io_executor
from files.spans import tracer
from files.storage import ChunkStore, chunk_key, delete_chunk_objects
from labdropbox.api.bodies import Body, read_body_piece
from labdropbox.api.errors import IncompleteBody


class ChunkUploader:
    """Reads chunks from the body and uploads them on the I/O pool, never holding more than
    `limit` of them at once, nor more than the worker's chunk budget allows (files/buffers.py).

    read_chunk() returns only once a buffer for the chunk is reserved; submit() returns only
    once fewer than `limit` chunks are held. On failure, discard() deletes whatever may have
    been stored, or settle() keeps what was. The `upload_chunks` span covers the uploads until
    finish(), discard() or settle().
    """

    def __init__(
        self,
        store: ChunkStore,
        file_id: uuid.UUID,
        limit: int,
        parent: otel_context.Context | None = None,
    ) -> None:
        self.store = store
        self.file_id = file_id
        self.limit = limit
        self.budget = chunk_budget()
        self.span = tracer.start_span(spans.UPLOAD_CHUNKS, context=parent)
        self._parent = trace.set_span_in_context(self.span)
        self._pending: set[Future[tuple[int, int, str]]] = set()
        self._done: dict[int, tuple[int, str]] = {}
        self._attempted: list[str] = []

    @property
    def stored(self) -> dict[int, tuple[int, str]]:
        """The chunks stored so far: index -> (size, sha256)."""
        return self._done

    def read_chunk(
        self,
        body: Body,
        size: int,
        pace: Callable[[int], int] | None = None,
        keep_partial: bool = False,
    ) -> bytes:
        """Up to `size` bytes of the body (fewer only at its end), in a reserved buffer that
        submit() hands on to the upload; `pace` as in read_body_piece. If the body breaks off,
        the bytes read of this chunk are dropped — or, with `keep_partial`, handed over in the
        IncompleteBody (still reserved: forget() them when done)."""
        self._reserve(size)
        try:
            data = read_body_piece(body, size, pace)
        except IncompleteBody as exc:
            if not keep_partial:
                exc.partial = b""
            self.budget.release(size - len(exc.partial), self)
            raise
        except BaseException:
            self.budget.release(size, self)
            raise
        if len(data) < size:
            self.budget.release(size - len(data), self)
        return data

    def submit(self, index: int, data: bytes) -> None:
        key = chunk_key(self.file_id, index)
        self._attempted.append(key)
        self._pending.add(io_executor().submit(self._upload, index, key, data))
        self._wait(until_pending_below=self.limit)

    @property
    def uploading(self) -> bool:
        """Chunks are on their way to storage."""
        return bool(self._pending)

    def collect_finished(self) -> None:
        """Take in the uploads that have ended, without waiting (raising a failed one's error)."""
        finished = {future for future in self._pending if future.done()}
        self._pending -= finished
        self._take_in(finished)

    def forget(self, data: bytes) -> None:
        """A chunk that was read but will not be submitted: its buffer goes back."""
        if data:
            self.budget.release(len(data), self)

    def finish(self) -> dict[int, tuple[int, str]]:
        """Wait for every upload; the (size, sha256) of each chunk by index."""
        self._wait(until_pending_below=1)
        self.span.end()
        return self._done

    def settle(self, exc: BaseException) -> None:
        """After a failure: let running uploads end, keeping what they stored (`stored`)."""
        for future in wait(self._pending).done:
            if future.exception() is None:
                index, size, digest = future.result()
                self._done[index] = (size, digest)
        self._pending = set()
        if self.span.is_recording():
            spans.mark_failed(self.span, exc)
            self.span.end()

    def discard(self, exc: BaseException) -> list[str]:
        """After a failure: let running uploads end, then delete every chunk we tried to store;
        the keys that could not be deleted."""
        wait(self._pending)
        if self.span.is_recording():  # not yet ended by finish()
            spans.mark_failed(self.span, exc)
            self.span.end()
        return delete_chunk_objects(self.store, self.file_id, self._attempted)

    def _reserve(self, size: int) -> None:
        """A buffer for the next chunk: taken from what is free while uploads are running
        (finishing one if there is none), waited for when nothing else is held."""
        while self._pending and not self.budget.try_acquire(size, self):
            self._wait(until_pending_below=len(self._pending))
        if not self._pending:
            self.budget.acquire(size, self)

    def _wait(self, until_pending_below: int) -> None:
        while len(self._pending) >= until_pending_below:
            finished, self._pending = wait(self._pending, return_when=FIRST_COMPLETED)
            self._take_in(finished)

    def _take_in(self, finished: Iterable[Future[tuple[int, int, str]]]) -> None:
        """Record the chunks these ended uploads stored, then raise the first one's failure."""
        failures = [error for future in finished if (error := future.exception()) is not None]
        for future in finished:
            if future.exception() is None:
                index, size, digest = future.result()
                self._done[index] = (size, digest)
        if failures:
            raise failures[0]

    def _upload(self, index: int, key: str, data: bytes) -> tuple[int, int, str]:
        try:
            with tracer.start_as_current_span(
                spans.upload_chunk(index),
                context=self._parent,
                attributes=spans.chunk_attributes(index, len(data), key),
            ):
                digest = hashlib.sha256(data).hexdigest()
                self.store.put(key, data, digest)
                return index, len(data), digest
        finally:
            if data:
                self.budget.release(len(data), self)
