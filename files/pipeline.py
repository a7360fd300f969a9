"""The work behind the API: cut a body into chunks and store them; fetch chunks and stream them.

Writes read the body as it arrives, hash each chunk and upload it with at most
UPLOAD_CONCURRENCY chunks held in memory, then commit the metadata in one transaction. Reads
fetch chunks with a sliding window of at most READ_CONCURRENCY, verify each one, and yield them
in order. Both run their chunk I/O on one thread pool per process, handing the tracing context
to each task explicitly: pool threads start with an empty OpenTelemetry context.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import threading
import unicodedata
import uuid
from collections import deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import BinaryIO

from django.conf import settings
from django.db import transaction
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from files import cache
from files.cache import FileMeta
from files.models import Chunk, File
from files.storage import ChunkStore, chunk_key, get_store

log = logging.getLogger(__name__)
tracer = trace.get_tracer("labdropbox.files")

MAX_NAME_LENGTH = 255


class InvalidName(ValueError):
    pass


class IncompleteBody(Exception):
    """The client sent less than it announced, or went away mid-upload."""


class BodyTooLarge(Exception):
    pass


class ChunkCorrupt(Exception):
    """A chunk object's bytes do not match the size or SHA-256 recorded for it."""


class ChunkGauge:
    """Counts the chunks one operation holds in memory, and the most it ever held at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.current = 0
        self.peak = 0

    def hold(self) -> None:
        with self._lock:
            self.current += 1
            self.peak = max(self.peak, self.current)

    def release(self) -> None:
        with self._lock:
            self.current -= 1


_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def io_executor() -> ThreadPoolExecutor:
    """The process's chunk I/O pool, created on first use (after gunicorn forks)."""
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(settings.CHUNK_IO_THREADS, thread_name_prefix="chunk-io")
        return _executor


def _forget_executor() -> None:
    global _executor, _executor_lock
    _executor, _executor_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_executor)


def validate_name(name: str | None) -> str:
    if name is None or name == "":
        raise InvalidName("the name query parameter is required")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidName(f"the name is longer than {MAX_NAME_LENGTH} characters")
    if any(unicodedata.category(char) == "Cc" for char in name):
        raise InvalidName("the name contains control characters (such as CR or LF)")
    return name


# --- Writing -----------------------------------------------------------------------------------


class ChunkUploader:
    """Uploads chunks on the I/O pool, never holding more than `limit` of them at once.

    submit() returns only once fewer than `limit` chunks are held, so the caller can read the
    next chunk without going over. On failure, discard() deletes whatever may have been stored.
    """

    def __init__(self, store: ChunkStore, file_id: uuid.UUID, limit: int, gauge: ChunkGauge):
        self.store = store
        self.file_id = file_id
        self.limit = limit
        self.gauge = gauge
        self.span = tracer.start_span("upload_chunks")
        self._parent = trace.set_span_in_context(self.span)
        self._pending: set[Future] = set()
        self._done: dict[int, tuple[int, str]] = {}
        self._attempted: list[str] = []
        self._span_ended = False

    def submit(self, index: int, data: bytes) -> None:
        key = chunk_key(self.file_id, index)
        self._attempted.append(key)
        self.gauge.hold()
        self._pending.add(io_executor().submit(self._upload, index, key, data))
        self._wait(until_pending_below=self.limit)

    def finish(self) -> list[tuple[int, str]]:
        """Wait for every upload; the (size, sha256) of each chunk in index order."""
        self._wait(until_pending_below=1)
        self._end_span()
        return [self._done[index] for index in range(len(self._done))]

    def discard(self, exc: BaseException) -> None:
        """After a failure: let running uploads end, then delete every chunk we tried to store."""
        wait(self._pending)
        self._end_span(exc)
        _delete_chunk_objects(self.store, self.file_id, self._attempted)

    def _end_span(self, exc: BaseException | None = None) -> None:
        if self._span_ended:
            return
        self._span_ended = True
        if exc is not None:
            _mark_failed(self.span, exc)
        self.span.end()

    def _wait(self, until_pending_below: int) -> None:
        while len(self._pending) >= until_pending_below:
            finished, self._pending = wait(self._pending, return_when=FIRST_COMPLETED)
            for future in finished:
                index, size, digest = future.result()  # re-raises the upload's error
                self._done[index] = (size, digest)

    def _upload(self, index: int, key: str, data: bytes) -> tuple[int, int, str]:
        attributes = {"chunk.index": index, "chunk.size": len(data), "chunk.key": key}
        try:
            with tracer.start_as_current_span(
                f"upload_chunk_{index}", context=self._parent, attributes=attributes
            ):
                digest = hashlib.sha256(data).hexdigest()
                self.store.put(key, data)
                return index, len(data), digest
        finally:
            self.gauge.release()


def read_body_chunk(body: BinaryIO, size: int) -> bytes:
    """Read up to `size` bytes, fewer only at the end of the body."""
    parts = []
    remaining = size
    while remaining:
        try:
            part = body.read(remaining)
        # The WSGI server's input raises its own error types when a client breaks off or sends
        # a malformed chunked body: any failure to read the body is the client's.
        except Exception as exc:
            raise IncompleteBody(f"the request body could not be read: {exc}") from exc
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)


def write_file(
    name: str, body: BinaryIO, length: int | None, gauge: ChunkGauge | None = None
) -> File:
    """Store a body of `length` bytes (None: read to its end) as a new file.

    Either the file and all its chunks are committed, or nothing is: on any failure the chunk
    objects already stored are deleted and the error re-raised.
    """
    validate_name(name)
    limit = settings.MAX_UPLOAD_BYTES
    if length is not None and length > limit:
        raise BodyTooLarge(f"the body is {length} bytes; the limit is {limit}")
    file_id = uuid.uuid4()
    with tracer.start_as_current_span("write_file") as span:
        span.set_attributes({"file.id": str(file_id), "file.name": name})
        uploader = ChunkUploader(
            get_store(), file_id, settings.UPLOAD_CONCURRENCY, gauge or ChunkGauge()
        )
        try:
            size, digest = _stream_chunks(body, length, uploader)
            chunks = uploader.finish()
            file = _save_metadata(file_id, name, size, digest, chunks)
        except BaseException as exc:
            uploader.discard(exc)
            raise
        span.set_attributes(file.span_attributes)
        with tracer.start_as_current_span("invalidate_cache"):
            cache.forget(file_id)
        return file


def _stream_chunks(body: BinaryIO, length: int | None, uploader: ChunkUploader) -> tuple[int, str]:
    """Cut the body into chunks as it arrives and hand each to the uploader."""
    chunk_size, limit = settings.CHUNK_SIZE, settings.MAX_UPLOAD_BYTES
    file_hash = hashlib.sha256()
    size = 0
    with tracer.start_as_current_span("chunk_stream") as span:
        for index in itertools.count():
            wanted = chunk_size if length is None else min(chunk_size, length - size)
            data = read_body_chunk(body, wanted) if wanted else b""
            if not data:
                break
            size += len(data)
            if size > limit:
                raise BodyTooLarge(f"the body is over the limit of {limit} bytes")
            file_hash.update(data)
            uploader.submit(index, data)
        span.set_attribute("file.size", size)
    if length is not None and size < length:
        raise IncompleteBody(f"the body ended after {size} of {length} bytes")
    return size, file_hash.hexdigest()


def _save_metadata(
    file_id: uuid.UUID, name: str, size: int, digest: str, chunks: list[tuple[int, str]]
) -> File:
    with tracer.start_as_current_span("save_metadata"), transaction.atomic():
        file = File.objects.create(
            id=file_id, name=name, size=size, sha256=digest, chunk_count=len(chunks)
        )
        Chunk.objects.bulk_create(
            [
                Chunk(file=file, index=index, size=chunk_size, sha256=chunk_digest)
                for index, (chunk_size, chunk_digest) in enumerate(chunks)
            ],
            batch_size=1000,
        )
    return file


# --- Reading -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Piece:
    """One chunk object to fetch, or the byte range [start, stop) of it that a response needs."""

    index: int
    key: str
    size: int
    sha256: str
    start: int
    stop: int

    @property
    def whole(self) -> bool:
        return self.start == 0 and self.stop == self.size


def plan_pieces(meta: FileMeta, byte_range: tuple[int, int] | None = None) -> list[Piece]:
    """The pieces to fetch for the file's bytes [start, stop) (None: all of it): only the chunks
    the range covers, and only the covered part of its first and last chunk."""
    start, stop = byte_range or (0, meta.size)
    pieces = []
    offset = 0
    for chunk in meta.chunks:
        chunk_start, offset = offset, offset + chunk.size
        if offset <= start or chunk_start >= stop:
            continue
        pieces.append(
            Piece(
                chunk.index,
                chunk.key,
                chunk.size,
                chunk.sha256,
                start=max(start - chunk_start, 0),
                stop=min(stop, offset) - chunk_start,
            )
        )
    return pieces


def verify_piece(piece: Piece, data: bytes) -> None:
    expected = piece.stop - piece.start
    if len(data) != expected:
        raise ChunkCorrupt(f"{piece.key}: got {len(data)} bytes, expected {expected}")
    if piece.whole and hashlib.sha256(data).hexdigest() != piece.sha256:
        raise ChunkCorrupt(f"{piece.key}: SHA-256 does not match the recorded one")


class ChunkStream:
    """Fetches pieces with a sliding window and yields them, verified, in order.

    Owns the operation span it is given (`read_file`) and ends it when the stream is exhausted
    or closed, so the span covers the body's whole write-out, not just the view.
    """

    def __init__(
        self,
        store: ChunkStore,
        pieces: list[Piece],
        window: int,
        operation_span: Span,
        gauge: ChunkGauge | None = None,
    ) -> None:
        self.store = store
        self.pieces = pieces
        self.window = window
        self.gauge = gauge or ChunkGauge()
        self.operation_span = operation_span
        self._operation_context = trace.set_span_in_context(operation_span)
        self._fetch_span: Span | None = None
        self._fetch_context: otel_context.Context | None = None
        self._futures: deque[Future] = deque()
        self._next_to_submit = 0
        self._first: bytes | None = None
        self._iterator: Iterator[bytes] | None = None
        self._closed = False

    def start(self) -> None:
        """Fetch and verify the first piece now, while a failure can still be an error response."""
        self._fetch_span = tracer.start_span(
            "fetch_chunks_parallel", context=self._operation_context
        )
        self._fetch_context = trace.set_span_in_context(self._fetch_span)
        try:
            if not self.pieces:
                return
            # The first piece is fetched on the request thread while the pool fetches the rest of
            # the window: the request waits for it anyway, and a one-chunk file needs no pool.
            self._next_to_submit = 1
            self.gauge.hold()
            while self._next_to_submit < min(self.window, len(self.pieces)):
                self._submit_next()
            self._first = self._fetch(self.pieces[0])
            self._end_fetch_span_when_all_fetched()
        except BaseException as exc:
            self._fail(exc)
            raise

    def __iter__(self) -> Iterator[bytes]:
        if self._iterator is None:
            self._iterator = self._generate()
        return self._iterator

    def _generate(self) -> Iterator[bytes]:
        assemble_span = tracer.start_span("reassemble_chunks", context=self._operation_context)
        try:
            for position in range(len(self.pieces)):
                data = self._first if position == 0 else self._take_next()
                self._first = None
                yield data
                # The server has written the piece out: release it, fetch another.
                del data
                self.gauge.release()
                self._submit_next()
        except GeneratorExit:
            raise
        except BaseException as exc:
            log.error("read of %s stopped after the response started: %s", self.pieces[0].key, exc)
            _mark_failed(assemble_span, exc)
            self._fail(exc)
            raise
        finally:
            assemble_span.end()

    def close(self) -> None:
        """End everything, whether the body was fully sent, failed or was abandoned."""
        if self._iterator is not None:
            self._iterator.close()
        self._shut_down()

    def _shut_down(self) -> None:
        if self._closed:
            return
        self._closed = True
        for future in self._futures:
            future.cancel()  # a fetch already running finishes and is dropped
            self.gauge.release()
        self._futures.clear()
        # An empty or failed stream never ended its fetch span.
        if self._fetch_span is not None and self._fetch_span.is_recording():
            self._fetch_span.end()
        self.operation_span.end()

    def _submit_next(self) -> None:
        if self._next_to_submit >= len(self.pieces):
            return
        piece = self.pieces[self._next_to_submit]
        self._next_to_submit += 1
        self.gauge.hold()
        self._futures.append(io_executor().submit(self._fetch, piece))

    def _take_next(self) -> bytes:
        data = self._futures.popleft().result()
        self._end_fetch_span_when_all_fetched()
        return data

    def _end_fetch_span_when_all_fetched(self) -> None:
        if not self._futures and self._next_to_submit == len(self.pieces):
            self._fetch_span.end()

    def _fetch(self, piece: Piece) -> bytes:
        attributes = {"chunk.index": piece.index, "chunk.size": piece.size, "chunk.key": piece.key}
        if not piece.whole:  # a ranged read's partial first or last chunk
            attributes["chunk.range"] = f"bytes={piece.start}-{piece.stop - 1}"
        with tracer.start_as_current_span(
            f"download_chunk_{piece.index}", context=self._fetch_context, attributes=attributes
        ):
            data = self.store.get(piece.key, piece.start, None if piece.whole else piece.stop)
            verify_piece(piece, data)
            return data

    def _fail(self, exc: BaseException) -> None:
        for span in (self._fetch_span, self.operation_span):
            if span is not None and span.is_recording():
                _mark_failed(span, exc)
        self._shut_down()


def _mark_failed(span: Span, exc: BaseException) -> None:
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))


# --- Deleting ----------------------------------------------------------------------------------


def delete_file(raw_id: str) -> File:
    """Delete a file: its rows in one transaction, then its cache entry, then its chunk objects.

    Chunk objects that cannot be deleted now (storage down) are left for `manage.py cleanup`,
    which finds them because no committed file has their id any more.
    """
    file_id = cache.parse_file_id(raw_id)
    with tracer.start_as_current_span("delete_file") as span:
        with transaction.atomic():
            file = File.objects.select_for_update().filter(pk=file_id).first()
            if file is None:
                raise cache.FileNotFound(str(file_id))
            span.set_attributes(file.span_attributes)
            file.delete()
        with tracer.start_as_current_span("invalidate_cache"):
            cache.bury(file_id)
        with tracer.start_as_current_span("delete_chunks"):
            keys = [chunk_key(file_id, index) for index in range(file.chunk_count)]
            _delete_chunk_objects(get_store(), file_id, keys)
    return file


def _delete_chunk_objects(store: ChunkStore, file_id: uuid.UUID, keys: list[str]) -> None:
    """Delete what can be deleted now; what storage refuses is left for `manage.py cleanup`."""
    failed = store.delete_many(keys)
    if failed:
        log.warning("file %s: %d chunk objects left for `manage.py cleanup`", file_id, len(failed))


class Reading:
    """One read of a file: the `read_file` span and the file's metadata, then maybe its bytes.

    Looking the file up happens at once, so FileNotFound is raised before anything is promised.
    As a context manager it ends the span on exit, unless stream() handed it to a ChunkStream,
    which ends it when the body has been sent.
    """

    def __init__(self, raw_id: str) -> None:
        self.span = tracer.start_span("read_file")
        self._context = trace.set_span_in_context(self.span)
        self._handed_over = False
        try:
            with trace.use_span(self.span, end_on_exit=False):
                self.meta = cache.lookup_file(raw_id)
        except BaseException:
            self.span.end()
            raise
        self.span.set_attributes(self.meta.span_attributes)

    def stream(
        self, byte_range: tuple[int, int] | None = None, gauge: ChunkGauge | None = None
    ) -> ChunkStream:
        """Start fetching (the range of) the file. ChunkNotFound, ChunkCorrupt and
        StorageUnavailable about the first piece are raised here; later ones cut the stream."""
        # Nothing runs under this span: started and ended directly, it costs less than
        # making it the current span would.
        plan_span = tracer.start_span("fetch_chunk_metadata", context=self._context)
        pieces = plan_pieces(self.meta, byte_range)
        plan_span.set_attribute("chunk.count", len(pieces))
        plan_span.end()
        if byte_range:
            self.span.set_attribute("read.range", "{}-{}".format(*byte_range))
        stream = ChunkStream(get_store(), pieces, settings.READ_CONCURRENCY, self.span, gauge)
        self._handed_over = True
        stream.start()  # on failure it ends the span itself
        return stream

    def __enter__(self) -> Reading:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if self._handed_over:
            return
        if exc is not None:
            _mark_failed(self.span, exc)
        self.span.end()
