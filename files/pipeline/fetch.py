"""Reading chunks: the pieces a read needs, fetched on the I/O pool with a sliding window, each
verified before it is handed on — a whole chunk against its SHA-256, a partial one (the edges of
a byte range) against its length. Reads, the concatenation of uploads and `verify` use it."""

from __future__ import annotations

import functools
import hashlib
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol

from opentelemetry import context as otel_context
from opentelemetry import trace

from files import spans
from files.buffers import chunk_budget
from files.io_pool import io_executor
from files.metadata import ChunkMeta
from files.small_files import SMALL_FILE_BYTES, SmallFileCache
from files.spans import tracer
from files.storage import ChunkStore
from labdropbox.api.errors import ChunkCorrupt
from metrics.registry import CHUNK_VERIFICATION_FAILURES


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

    @property
    def length(self) -> int:
        return self.stop - self.start


class Content(Protocol):
    """What is read: a file's version (FileMeta), or a blob being verified."""

    @property
    def size(self) -> int: ...

    @property
    def chunks(self) -> Sequence[ChunkMeta]: ...


def plan_pieces(meta: Content, byte_range: tuple[int, int] | None = None) -> list[Piece]:
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
    """ChunkCorrupt unless `data` is what the piece should hold."""
    expected = piece.length
    if len(data) != expected:
        CHUNK_VERIFICATION_FAILURES.inc()
        raise ChunkCorrupt(f"{piece.key}: got {len(data)} bytes, expected {expected}")
    if piece.whole and hashlib.sha256(data).hexdigest() != piece.sha256:
        CHUNK_VERIFICATION_FAILURES.inc()
        raise ChunkCorrupt(f"{piece.key}: SHA-256 does not match the recorded one")


def fetch_piece(store: ChunkStore, piece: Piece) -> bytes:
    """The piece's bytes from the store, verified."""
    data = store.get(piece.key, piece.start, None if piece.whole else piece.stop)
    verify_piece(piece, data)
    return data


class ChunkFetcher:
    """Fetches pieces on the I/O pool with a sliding window, verified, in order; owns the
    `fetch_chunks_parallel` span and the `download_chunk_{i}` spans under it.

    Every piece held or in flight has its bytes reserved in the worker's chunk budget: at most
    `window` pieces, fewer when the budget is short (files/buffers.py). Given a `memory`, a
    small file's one chunk is taken from it, or kept in it once fetched (files/small_files.py).
    """

    def __init__(
        self,
        store: ChunkStore,
        pieces: list[Piece],
        window: int,
        parent: otel_context.Context,
        memory: SmallFileCache | None = None,
    ) -> None:
        self.store = store
        self.pieces = pieces
        small = len(pieces) == 1 and pieces[0].whole and pieces[0].size <= SMALL_FILE_BYTES
        self.memory = memory if small else None
        self.window = window
        self.budget = chunk_budget()
        self.span = tracer.start_span(spans.FETCH_CHUNKS_PARALLEL, context=parent)
        self._context = trace.set_span_in_context(self.span)
        self._futures: deque[tuple[Future[bytes], int]] = deque()
        self._next_to_submit = 0
        self._holding = 0  # bytes of the piece with the client (or being fetched first)

    def fetch_first(self) -> bytes | None:
        """The first piece (None for an empty file), fetched on this thread while the pool
        fetches the rest of the window: the request waits for it anyway, and a one-chunk file
        needs no pool at all."""
        if not self.pieces:
            self.span.end()
            return None
        first = self.pieces[0]
        self.budget.acquire(first.length, self)
        self._holding, self._next_to_submit = first.length, 1
        self._top_up()
        data = self._fetch(first)
        self._end_span_when_all_fetched()
        return data

    def rest(self) -> Iterator[bytes]:
        """The pieces after the first. Each is asked for once the previous one has been taken:
        the window slides only as fast as the client reads."""
        for _ in range(1, len(self.pieces)):
            self._release_sent()
            self._top_up()
            future, size = self._futures.popleft()
            data = future.result()
            self._holding = size
            self._end_span_when_all_fetched()
            yield data
            del data  # written out: not held while the next fetch is asked for
        self._release_sent()

    def close(self, exc: BaseException | None = None) -> None:
        """Stop: fetches not yet started are cancelled, running ones finish and are dropped;
        their buffers go back to the budget as each is done with."""
        self._release_sent()
        while self._futures:
            future, size = self._futures.popleft()
            if future.cancel():
                self.budget.release(size, self)
            else:
                future.add_done_callback(functools.partial(self._release_when_done, size))
        if self.span.is_recording():
            if exc is not None:
                spans.mark_failed(self.span, exc)
            self.span.end()

    def _top_up(self) -> None:
        """Ask for pieces until the window is full or the budget says no. A transfer holding
        nothing waits for its one essential buffer; beyond that it only takes what is free."""
        wanted = self.window - (1 if self._holding else 0)
        while self._next_to_submit < len(self.pieces) and len(self._futures) < wanted:
            piece = self.pieces[self._next_to_submit]
            if self._holding or self._futures:
                if not self.budget.try_acquire(piece.length, self):
                    return
            else:
                self.budget.acquire(piece.length, self)
            self._next_to_submit += 1
            self._futures.append((io_executor().submit(self._fetch, piece), piece.length))

    def _release_when_done(self, size: int, _done: Future[bytes]) -> None:
        self.budget.release(size, self)

    def _release_sent(self) -> None:
        if self._holding:
            self.budget.release(self._holding, self)
            self._holding = 0

    def _end_span_when_all_fetched(self) -> None:
        if not self._futures and self._next_to_submit == len(self.pieces):
            self.span.end()

    def _fetch(self, piece: Piece) -> bytes:
        attributes = spans.chunk_attributes(piece.index, piece.size, piece.key)
        if not piece.whole:  # a ranged read's partial first or last chunk
            attributes["chunk.range"] = f"bytes={piece.start}-{piece.stop - 1}"
        with tracer.start_as_current_span(
            spans.download_chunk(piece.index), context=self._context, attributes=attributes
        ) as span:
            if self.memory is None:
                return fetch_piece(self.store, piece)
            data = self.memory.get(piece.key, piece.sha256)
            span.set_attribute("chunk.from_memory", data is not None)
            if data is None:
                data = fetch_piece(self.store, piece)
                self.memory.put(piece.key, piece.sha256, data)
            return data
