"""The SHA-256 of a concatenation of resumable uploads.

SHA-256 states do not combine: the file's hash goes on from the first part's saved state over
the bytes of every later part, read back from object storage in order (verified, with the same
bounded window and memory budget as a download). Nothing is copied; the later parts are read.
"""

from __future__ import annotations

from django.conf import settings
from opentelemetry import trace

from files.models import Chunk, Upload
from files.pipeline.fetch import ChunkFetcher, Piece
from files.sha256_state import ResumableSha256
from files.storage import get_store


def concatenation_sha256(parts: list[Upload], chunks: list[Chunk]) -> str:
    """The SHA-256 of the parts' bytes in order; `chunks` are the concatenation's chunk rows."""
    file_hash = ResumableSha256(bytes(parts[0].hash_state)) if parts else ResumableSha256()
    later = [chunk for chunk in chunks if parts and chunk.source_id != parts[0].id]
    pieces = [Piece(c.index, c.key, c.size, c.sha256, start=0, stop=c.size) for c in later]
    fetcher = ChunkFetcher(
        get_store(),
        pieces,
        settings.READ_CONCURRENCY,
        trace.set_span_in_context(trace.get_current_span()),
    )
    try:
        first = fetcher.fetch_first()
        if first is not None:
            file_hash.update(first)
            del first
            for data in fetcher.rest():
                file_hash.update(data)
    except BaseException as exc:
        fetcher.close(exc)
        raise
    fetcher.close()
    return file_hash.hexdigest()
