"""Reading a file: look its metadata up, then fetch its chunks in parallel and send them in order.

`FileRead` is one read, from the lookup to the last byte sent, and the one owner of its
`read_file` span. Chunks are fetched on the I/O pool with a sliding window of at most
READ_CONCURRENCY pieces fetched or in flight; the next is asked for only after the previous one
has been written to the client. Every piece is verified before it is sent: a whole chunk against
its SHA-256, a partial one (the edges of a byte range) against its length.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Iterator
from types import TracebackType

from django.conf import settings
from opentelemetry import trace

from files import spans
from files.metadata import FileMeta, get_file_meta, get_visible_file_meta, version_meta
from files.models import Entry
from files.pipeline.fetch import ChunkFetcher, plan_pieces
from files.small_files import small_file_cache
from files.spans import tracer
from files.storage import get_store
from files.tree.versions import version_of
from labdropbox.api.callers import Caller
from labdropbox.api.errors import FileNotFound
from metrics.registry import READS_IN_PROGRESS

log = logging.getLogger(__name__)


def earlier_version(current: FileMeta, raw_version_id: str) -> FileMeta:
    """The file as one of its versions has it (VersionNotFound if it has no such version)."""
    file = Entry.objects.filter(pk=current.file_id, trash=None).first()
    if file is None:  # trashed or purged since it was looked up
        raise FileNotFound(str(current.file_id))
    return version_meta(file, version_of(file, raw_version_id))


class FileRead:
    """One read of a file. Use as a context manager around the request's handling:

        with FileRead(file_id, caller) as read:   # looks the file up (FileNotFound, …)
            ... read.meta ...                 # decide what to send
            body = read.body(byte_range)      # fetches the first piece now
        return StreamingHttpResponse(body)

    The `read_file` span ends when the block is left, unless a body was made: then it ends when
    the server closes that body, after the last byte is sent (or the client went away).

    A share link's read passes no caller (the link is the permission) and names its own root
    span, with the same tree beneath it. `version` reads one of the file's earlier versions.
    """

    def __init__(
        self,
        raw_id: str,
        caller: Caller | None,
        span_name: str = spans.READ_FILE,
        attributes: dict[str, str] | None = None,
        version: str | None = None,
    ) -> None:
        self.span = tracer.start_span(span_name, attributes=attributes)
        self._context = trace.set_span_in_context(self.span)
        self._body: ReadBody | None = None
        self._finished = False
        READS_IN_PROGRESS.inc()
        try:
            with trace.use_span(self.span, end_on_exit=False):
                if caller is None:
                    self.meta = get_file_meta(raw_id)
                else:
                    self.meta = get_visible_file_meta(raw_id, caller)
                if version is not None:
                    self.meta = earlier_version(self.meta, version)
                    self.span.set_attribute("version.id", str(self.meta.version_id))
        except BaseException as exc:
            self.finish(exc)
            raise
        self.span.set_attributes(self.meta.span_attributes)

    def __enter__(self) -> FileRead:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is not None and self._body is not None:
            self._body.close(exc)
        elif exc is not None or self._body is None:
            self.finish(exc)

    def body(self, byte_range: tuple[int, int] | None = None) -> ReadBody:
        """Start fetching (the range of) the file. A missing, corrupt or unreachable first piece
        raises here, while the answer can still be an error; later ones cut the body short."""
        # Nothing runs under this span: started and ended directly, it costs less than making
        # it the current span would.
        plan_span = tracer.start_span(spans.FETCH_CHUNK_METADATA, context=self._context)
        pieces = plan_pieces(self.meta, byte_range)
        plan_span.set_attribute("chunk.count", len(pieces))
        plan_span.end()
        if byte_range:
            self.span.set_attribute("read.range", "{}-{}".format(*byte_range))
        fetcher = ChunkFetcher(
            get_store(), pieces, settings.READ_CONCURRENCY, self._context, small_file_cache()
        )
        try:
            first = fetcher.fetch_first()
        except BaseException as exc:
            fetcher.close(exc)
            raise
        self._body = ReadBody(self, fetcher, first)
        return self._body

    def finish(self, exc: BaseException | None = None) -> None:
        """End the read (once): its span, marked failed if `exc` is given."""
        if self._finished:
            return
        self._finished = True
        READS_IN_PROGRESS.dec()
        if exc is not None:
            spans.mark_failed(self.span, exc)
        self.span.end()


class ReadBody:
    """The pieces of a read, in order, as the response body. close() — which the server calls
    whether the body was sent, failed midway or was abandoned — ends the read."""

    def __init__(self, read: FileRead, fetcher: ChunkFetcher, first: bytes | None) -> None:
        self._read = read
        self._fetcher = fetcher
        self._error: BaseException | None = None
        self._pieces = self._send(first)

    def __iter__(self) -> Iterator[bytes]:
        return self._pieces

    def _send(self, first: bytes | None) -> Generator[bytes, None, None]:
        assemble_span = tracer.start_span(spans.REASSEMBLE_CHUNKS, context=self._read._context)
        try:
            if first is not None:
                yield first
                del first  # sent: its memory can go before the next fetch completes
                yield from self._fetcher.rest()
        except GeneratorExit:
            raise
        except BaseException as exc:
            log.error("read of %s stopped after the response started: %s", self._read.meta.id, exc)
            spans.mark_failed(assemble_span, exc)
            self._error = exc
            raise
        finally:
            assemble_span.end()

    def close(self, exc: BaseException | None = None) -> None:
        self._pieces.close()
        error = exc or self._error
        self._fetcher.close(error)
        self._read.finish(error)
