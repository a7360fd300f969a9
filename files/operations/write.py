"""Writing a file: cut the body into chunks as it arrives, store them, then commit the metadata.

The body is read in chunk-sized pieces; each is hashed and uploaded on the I/O pool, and at most
UPLOAD_CONCURRENCY chunks are held at once (the reader waits for a free slot before reading the
next). The File and Chunk rows are committed in one transaction after the last chunk is stored.
On any failure, the chunks already stored are deleted and nothing else is kept.
"""

from __future__ import annotations

import hashlib
import itertools
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Protocol

from django.conf import settings
from django.db import transaction
from opentelemetry import trace

from accounts.callers import Caller
from accounts.quotas import Space
from files import spans
from files.buffers import chunk_budget
from files.errors import BodyTooLarge, IncompleteBody
from files.io_pool import io_executor
from files.metadata import drop_cached_meta
from files.models import Chunk, File
from files.names import validate_name
from files.spans import tracer
from files.storage import ChunkStore, chunk_key, delete_chunk_objects, get_store
from metrics.registry import UPLOADS_IN_PROGRESS


class Body(Protocol):
    """What an upload is read from: the request (gunicorn's wsgi.input, Django's request, an
    uploaded file in the admin). read(size) returns at most `size` bytes, b"" at the end."""

    def read(self, size: int = -1, /) -> bytes: ...


def write_file(name: str, body: Body, length: int | None, caller: Caller) -> File:
    """Store a body of `length` bytes (None: read to its end) as a new file of the caller's.

    Either the file and all its chunks are committed, or nothing is: on any failure the chunk
    objects already stored are deleted and the error re-raised. The caller's quota is reserved
    before bytes are stored (the whole length if known, else chunk by chunk as they arrive).
    """
    validate_name(name)
    limit = settings.MAX_UPLOAD_BYTES
    if length is not None and length > limit:
        raise BodyTooLarge(f"the body is {length} bytes; the limit is {limit}")
    file_id = uuid.uuid4()
    with (
        tracer.start_as_current_span(spans.WRITE_FILE) as span,
        UPLOADS_IN_PROGRESS.labels("write").track_inprogress(),
    ):
        span.set_attributes({"file.id": str(file_id), "file.name": name})
        space = Space(caller.user_id)
        space.cover(length or 0)
        uploader = ChunkUploader(get_store(), file_id, settings.UPLOAD_CONCURRENCY)
        try:
            size, digest = stream_chunks(body, length, uploader, space)
            stored = uploader.finish()
            chunks = [stored[index] for index in range(len(stored))]
            file = File(id=file_id, name=name, size=size, sha256=digest, owner_id=caller.user_id)
            save_metadata(file, chunks, space)
        except BaseException as exc:
            uploader.discard(exc)
            space.release()
            raise
        span.set_attributes(file.span_attributes)
        with tracer.start_as_current_span(spans.INVALIDATE_CACHE):
            drop_cached_meta(file_id)
        return file


class ChunkUploader:
    """Reads chunks from the body and uploads them on the I/O pool, never holding more than
    `limit` of them at once, nor more than the worker's chunk budget allows (files/buffers.py).

    read_chunk() returns only once a buffer for the chunk is reserved; submit() returns only
    once fewer than `limit` chunks are held. On failure, discard() deletes whatever may have
    been stored, or settle() keeps what was. The `upload_chunks` span covers the uploads until
    finish(), discard() or settle().
    """

    def __init__(self, store: ChunkStore, file_id: uuid.UUID, limit: int) -> None:
        self.store = store
        self.file_id = file_id
        self.limit = limit
        self.budget = chunk_budget()
        self.span = tracer.start_span(spans.UPLOAD_CHUNKS)
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

    def discard(self, exc: BaseException) -> None:
        """After a failure: let running uploads end, then delete every chunk we tried to store."""
        wait(self._pending)
        if self.span.is_recording():  # not yet ended by finish()
            spans.mark_failed(self.span, exc)
            self.span.end()
        delete_chunk_objects(self.store, self.file_id, self._attempted)

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
                self.store.put(key, data)
                return index, len(data), digest
        finally:
            if data:
                self.budget.release(len(data), self)


def read_body_piece(body: Body, size: int, pace: Callable[[int], int] | None = None) -> bytes:
    """Read up to `size` bytes, fewer only at the end of the body. `pace`, if given, is called
    before each read with the bytes still wanted, and says how many to read now."""
    parts: list[bytes] = []
    remaining = size
    while remaining:
        wanted = remaining if pace is None else pace(remaining)
        try:
            part = body.read(wanted)
        # The WSGI server's input raises its own error types when a client breaks off or sends
        # a malformed chunked body: any failure to read the body is the client's.
        except Exception as exc:
            broken = IncompleteBody(f"the request body could not be read: {exc}")
            broken.partial = b"".join(parts)
            raise broken from exc
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)


def stream_chunks(
    body: Body, length: int | None, uploader: ChunkUploader, space: Space
) -> tuple[int, str]:
    """Cut the body into chunks as it arrives and hand each to the uploader, each covered by
    the quota `space` before it is stored; the body's size and SHA-256."""
    chunk_size, limit = settings.CHUNK_SIZE, settings.MAX_UPLOAD_BYTES
    file_hash = hashlib.sha256()
    size = 0
    with tracer.start_as_current_span(spans.CHUNK_STREAM) as span:
        for index in itertools.count():
            wanted = chunk_size if length is None else min(chunk_size, length - size)
            data = uploader.read_chunk(body, wanted) if wanted else b""
            if not data:
                break
            size += len(data)
            try:
                if size > limit:
                    raise BodyTooLarge(f"the body is over the limit of {limit} bytes")
                space.cover(size)
            except BaseException:
                uploader.forget(data)
                raise
            file_hash.update(data)
            uploader.submit(index, data)
        span.set_attribute("file.size", size)
    if length is not None and size < length:
        raise IncompleteBody(f"the body ended after {size} of {length} bytes")
    return size, file_hash.hexdigest()


def save_metadata(file: File, chunks: list[tuple[int, str]], space: Space) -> None:
    """Commit the File row and its Chunk rows in one transaction, which also turns the quota
    space the upload held into the file's size."""
    file.chunk_count = len(chunks)
    with tracer.start_as_current_span(spans.SAVE_METADATA), transaction.atomic():
        space.settle()
        file.save(force_insert=True)
        Chunk.objects.bulk_create(
            [
                Chunk(file=file, index=index, size=chunk_size, sha256=chunk_digest)
                for index, (chunk_size, chunk_digest) in enumerate(chunks)
            ],
            batch_size=1000,
        )
