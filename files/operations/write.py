"""Writing a file: record the write, cut the body into chunks as it arrives, store them, then
commit the content and put it at its path.

The body is read in chunk-sized pieces; each is hashed and uploaded on the I/O pool, and at most
UPLOAD_CONCURRENCY chunks are held at once (the reader waits for a free slot before reading the
next). The write's blob is recorded before the first chunk is stored (files/blobs.py), so that
`cleanup` never takes its objects for orphans; it is committed with its chunk rows, and placed at
its path — a new file, or a new version of the file there — in one transaction after the last
chunk is stored. On any failure, the chunks already stored are deleted and nothing else is kept.
"""

from __future__ import annotations

import hashlib
import itertools

from django.conf import settings
from opentelemetry import context as otel_context
from opentelemetry import trace

from files import spans
from files.blobs import WritingLease, commit_written, forget_unfinished, give_up, start_writing
from files.metadata import drop_cached_meta
from files.models import Blob, Entry
from files.names import join_path
from files.pipeline.upload import ChunkUploader
from files.quotas import Space
from files.spans import tracer
from files.storage import get_store
from files.tree.place import Conditions, Placed, place_blob
from files.tree.roots import locked_tree, resolve, tree_of
from labdropbox.api.bodies import Body
from labdropbox.api.callers import Caller
from labdropbox.api.errors import BodyTooLarge, EntryNotFound, IncompleteBody, NameTaken
from metrics.registry import UPLOADS_IN_PROGRESS


def write_file(
    names: list[str],
    body: Body,
    length: int | None,
    caller: Caller,
    conditions: Conditions | None = None,
) -> Placed:
    """Store a body of `length` bytes (None: read to its end) at a path of the caller's tree.

    Either the content and all its chunks are committed, or nothing is: on any failure the chunk
    objects already stored are deleted and the error re-raised. The caller's quota is reserved
    before bytes are stored (the whole length if known, else chunk by chunk as they arrive).
    """
    limit, conditions = settings.MAX_UPLOAD_BYTES, conditions or Conditions()
    if length is not None and length > limit:
        raise BodyTooLarge(f"the body is {length} bytes; the limit is {limit}")
    with (
        tracer.start_as_current_span(spans.WRITE_FILE) as span,
        UPLOADS_IN_PROGRESS.labels("write").track_inprogress(),
    ):
        span.set_attributes({"file.name": names[-1], "file.path": join_path(names)})
        space = Space(caller.user_id)
        with tracer.start_as_current_span(spans.CHUNK_STREAM) as stream_span:
            root = tree_of(caller)
            if worth_checking_early(length, conditions):
                check_early(root, names, conditions)  # before a byte of the body is read
            space.cover(length or 0)
            blob, uploader = start(space, trace.set_span_in_context(span))
            span.set_attribute("file.id", str(blob.id))
            try:
                size, digest = stream_chunks(body, length, uploader, space, WritingLease(blob.id))
            except BaseException as exc:
                abandon(blob, uploader, space, exc)
                raise
            stream_span.set_attribute("file.size", size)
        committing = False
        try:
            stored = uploader.finish()
            chunks = [stored[index] for index in range(len(stored))]
            with tracer.start_as_current_span(spans.SAVE_METADATA), locked_tree(root):
                space.settle()
                committed = commit_written(blob.id, size, digest, chunks)
                placed = place_blob(root, names, committed, conditions, caller.user_id)
                committing = True  # all that is left is the COMMIT itself
        except BaseException as exc:
            if committing:  # it may have been applied, its answer lost: the objects stay
                leave_to_cleanup(blob, space)
            else:
                abandon(blob, uploader, space, exc)
            raise
        span.set_attributes(placed.file.span_attributes)
        with tracer.start_as_current_span(spans.INVALIDATE_CACHE):
            drop_cached_meta(placed.file.id, changed=not placed.created)
        return placed


def start(space: Space, parent: otel_context.Context) -> tuple[Blob, ChunkUploader]:
    """The write's record, made before its first chunk is stored, and its uploader (whose
    `upload_chunks` span is the write's child, beside `chunk_stream`)."""
    try:
        blob = start_writing()
    except BaseException:
        space.release()
        raise
    return blob, ChunkUploader(get_store(), blob.id, settings.UPLOAD_CONCURRENCY, parent)


def abandon(blob: Blob, uploader: ChunkUploader, space: Space, exc: BaseException) -> None:
    """After a failure: what was stored is deleted, then the record; the quota space goes."""
    forget_unfinished(blob.id, uploader.discard(exc))
    space.release()


def leave_to_cleanup(blob: Blob, space: Space) -> None:
    """After a COMMIT that failed or seemed to: if it was applied, a file needs every object,
    so none is deleted here; if it was not, the record (still WRITING) gives its lease up now
    and `cleanup` takes it and the objects."""
    give_up(blob.id)
    space.release()


def worth_checking_early(length: int | None, conditions: Conditions) -> bool:
    """Whether to look at the path before reading the body: always for a conditional write
    (its 412 must come first), and for a body over a chunk, whose bytes a refusal at the commit
    would waste. A small unconditional write is checked once, at its commit: two queries fewer
    for the commonest write there is."""
    return conditions.any or length is None or length > settings.CHUNK_SIZE


def check_early(root: Entry, names: list[str], conditions: Conditions) -> None:
    """What can be refused before a byte of the body is read: a precondition that fails now,
    or a path a folder takes or a file blocks (all checked again at the commit, under the
    tree's lock)."""
    try:
        existing: Entry | None = resolve(root, names)
    except EntryNotFound:
        existing = None
    if existing is not None and existing.kind == Entry.Kind.FOLDER:
        raise NameTaken(f"{join_path(names)} is a folder")
    conditions.check(existing)


def stream_chunks(
    body: Body, length: int | None, uploader: ChunkUploader, space: Space, lease: WritingLease
) -> tuple[int, str]:
    """Cut the body into chunks as it arrives and hand each to the uploader, each covered by
    the quota `space` before it is stored, the write's lease renewed as they go; the body's size
    and SHA-256."""
    chunk_size, limit = settings.CHUNK_SIZE, settings.MAX_UPLOAD_BYTES
    file_hash = hashlib.sha256()
    size = 0
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
            lease.renew()
        except BaseException:
            uploader.forget(data)
            raise
        file_hash.update(data)
        uploader.submit(index, data)
    if length is not None and size < length:
        raise IncompleteBody(f"the body ended after {size} of {length} bytes")
    return size, file_hash.hexdigest()
