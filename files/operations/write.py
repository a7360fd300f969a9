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

from django.conf import settings
from django.db import transaction

from files import spans
from files.metadata import drop_cached_meta
from files.models import Chunk, File
from files.names import validate_name
from files.pipeline.upload import ChunkUploader
from files.quotas import Space
from files.spans import tracer
from files.storage import get_store
from labdropbox.api.bodies import Body
from labdropbox.api.callers import Caller
from labdropbox.api.errors import BodyTooLarge, IncompleteBody
from metrics.registry import UPLOADS_IN_PROGRESS


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
