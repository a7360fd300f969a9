"""Appending bytes to a resumable upload: a tus PATCH, or the body of a creation request.

The bytes are cut into the upload's chunks as they arrive and stored under the same keys as
/write's (chunks/{upload_id}/{i}), through the same chunk pipeline and memory bounds. The upload's
row is the truth: offset, whole chunks and the SHA-256 state advance after each chunk is stored
(files/uploads/progress.py), so a client that comes back — to any worker of any instance —
resumes at most one chunk behind what it sent. The partial last chunk is kept as the start of its
object between requests. The request holds the upload's lock (files/uploads/lock.py) for a lease
it renews while bytes arrive. With Upload-Checksum, the request's bytes count only once the whole
body matches: until then nothing is recorded, and on a mismatch they are discarded.
"""

from __future__ import annotations

import hashlib
import time

from django.conf import settings

from files import spans
from files.models import Upload
from files.pipeline.upload import ChunkUploader
from files.quotas import Space
from files.sha256_state import ResumableSha256
from files.spans import tracer
from files.storage import chunk_key, get_store
from files.uploads.commit import commit_upload
from files.uploads.headers import Checksum
from files.uploads.lifecycle import declare_length, find_upload, finish_if_stored, room_for
from files.uploads.lock import Lease, lock_at_offset, release_lock
from files.uploads.progress import Progress
from labdropbox.api.bodies import Body, BodyWatch
from labdropbox.api.callers import Caller
from labdropbox.api.errors import (
    BodyTooLarge,
    ChecksumMismatch,
    ChunkCorrupt,
    FinalUploadImmutable,
    IncompleteBody,
    OffsetMismatch,
    QuotaExceeded,
    UploadComplete,
    UploadInterrupted,
)
from metrics.registry import UPLOADS_IN_PROGRESS

# The smallest read of a PATCH's body: a client sending slowly still gets its chunks recorded.
SMALLEST_READ = 8 * 1024
# While bytes stream in, stored chunks are recorded this often (a transaction each time).
RECORD_EVERY_SECONDS = 0.2


def append_to_upload(
    raw_id: str,
    caller: Caller,
    offset: int,
    body: Body,
    body_length: int | None,
    checksum: Checksum | None = None,
    declared_length: int | None = None,
    watch: BodyWatch | None = None,
) -> Upload:
    """Append the body at `offset` (which must be the upload's); the upload as it is after.
    `watch`, on the request's connection, lets chunks be recorded while the client is quiet."""
    with (
        tracer.start_as_current_span(spans.APPEND_UPLOAD) as span,
        UPLOADS_IN_PROGRESS.labels("patch").track_inprogress(),
    ):
        span.set_attributes({"file.id": raw_id, "upload.offset": offset})
        upload = find_upload(raw_id, caller)
        span.set_attribute("file.name", upload.name)
        if upload.is_final:
            raise FinalUploadImmutable()
        if upload.offset != offset:
            raise OffsetMismatch(upload.offset)
        carries_bytes = body_length is None or body_length > 0
        if upload.completed_at is not None:
            if carries_bytes:  # never dropped in silence
                raise UploadComplete()
            return upload  # every byte is there already
        if upload.length is not None and upload.offset == upload.length:
            if carries_bytes:
                raise BodyTooLarge("the upload has all its bytes already")
            return finish_if_stored(upload)  # stored, but its commit failed: commit it now
        lease = Lease(upload.id, lock_at_offset(upload))
        try:
            upload = declare_length(upload, declared_length, lease)
            appender = Appender(upload, lease, checksum, watch)
            try:
                upload = appender.append(body, body_length)
            except IncompleteBody as exc:  # what arrived is recorded: the client may resume
                raise UploadInterrupted(exc, appender.upload.offset) from exc
            span.set_attribute("upload.new_offset", upload.offset)
            if upload.length is not None and upload.offset == upload.length:
                commit_upload(upload)
            # As it is now (a final upload may have taken a finished part's row away).
            return Upload.objects.filter(pk=upload.id).first() or upload
        finally:
            release_lock(upload.id, lease.token)


class Appender:
    """One request's bytes cut into an upload's chunks, while its lock is held.

    `index` is the chunk being filled and `buffer` its bytes so far (the stored partial chunk
    first): what a failure midway leaves to keep or to discard.
    """

    def __init__(
        self, upload: Upload, lease: Lease, checksum: Checksum | None, watch: BodyWatch | None
    ) -> None:
        self.upload = upload
        self.lease = lease
        self.watch = watch
        self.checksum = checksum
        self.store = get_store()
        self.uploader = ChunkUploader(self.store, upload.id, settings.UPLOAD_CONCURRENCY)
        self.progress = Progress(upload, lease, self.store)
        self.file_hash = ResumableSha256(bytes(upload.hash_state))
        self.body_hash = hashlib.new(checksum.algorithm) if checksum else None
        self.index = upload.chunk_count
        self.start_offset = upload.offset
        # With its length known, the upload's space was reserved when it was; without, the
        # bytes are covered as they come.
        self.space = Space(upload.owner_id, upload.id)
        self.buffer = b""
        self.recorded_at = time.monotonic()

    def append(self, body: Body, body_length: int | None) -> Upload:
        allowed = self.bytes_allowed()
        if body_length is not None and body_length > allowed:
            raise BodyTooLarge(f"the upload takes at most {allowed} more bytes")
        try:
            with tracer.start_as_current_span(spans.CHUNK_STREAM):
                self.buffer = self.read_tail()
                self.cut_chunks(body, body_length, allowed)
            self.uploader.finish()
            self.check_body()
            self.record_end()
            return self.upload
        except (IncompleteBody, BodyTooLarge, ChecksumMismatch, QuotaExceeded) as exc:
            self.keep_or_discard(exc)
            raise
        except BaseException as exc:
            self.uploader.settle(exc)  # storage or the database failed: record what is stored
            self.progress.record_stored(self.uploader)
            raise
        finally:
            self.uploader.forget(self.buffer)

    def bytes_allowed(self) -> int:
        upload = self.upload
        limit = upload.length if upload.length is not None else room_for(upload)
        return limit - upload.offset

    def read_tail(self) -> bytes:
        """The partial last chunk kept in storage, checked against the SHA-256 recorded for it."""
        size = self.upload.tail_size
        if not size:
            return b""
        self.uploader.budget.acquire(size, self.uploader)
        key = chunk_key(self.upload.id, self.index)
        try:
            tail = self.store.get(key, 0, size)
        except BaseException:
            self.uploader.budget.release(size, self.uploader)
            raise
        if len(tail) != size or hashlib.sha256(tail).hexdigest() != self.upload.tail_sha256:
            self.uploader.budget.release(size, self.uploader)
            raise ChunkCorrupt(f"{key}: the upload's stored bytes changed")
        return tail

    def cut_chunks(self, body: Body, body_length: int | None, allowed: int) -> None:
        """Read the body into whole chunks, storing each as it is complete."""
        chunk_size, received = self.upload.chunk_size, 0
        while True:
            if self.buffer and self.at_the_end():  # the stored partial chunk, now known last
                self.submit_buffer()
            wanted = min(chunk_size - len(self.buffer), allowed - received)
            if body_length is not None:
                wanted = min(wanted, body_length - received)
            if wanted == 0:
                self.refuse_more(body, body_length, allowed, received)
                return
            try:
                data = self.uploader.read_chunk(
                    body, wanted, self.before_reading, keep_partial=True
                )
            except IncompleteBody as exc:
                self.take(exc.partial)  # what arrived before the body broke off is kept
                raise
            try:
                self.space.cover(self.start_offset + received + len(data))
            except QuotaExceeded:
                self.uploader.forget(data)
                raise
            received += len(data)
            self.take(data)
            if len(self.buffer) == chunk_size or self.at_the_end():
                self.submit_buffer()
            if len(data) < wanted:  # the body ended
                if body_length is not None and received < body_length:
                    raise IncompleteBody(f"the body ended after {received} of {body_length} bytes")
                return

    def take(self, data: bytes) -> None:
        self.file_hash.update(data)
        if self.body_hash is not None:
            self.body_hash.update(data)
        self.buffer = self.buffer + data if self.buffer else data

    def submit_buffer(self) -> None:
        """The buffer is a whole chunk (or the upload's last): store it."""
        self.progress.states[self.index] = self.file_hash.state()
        whole, self.buffer = self.buffer, b""
        self.uploader.submit(self.index, whole)
        self.index += 1

    def at_the_end(self) -> bool:
        """The buffer holds the upload's last byte: it is the last chunk, whole."""
        length = self.upload.length
        return (
            length is not None and self.index * self.upload.chunk_size + len(self.buffer) == length
        )

    def refuse_more(self, body: Body, body_length: int | None, allowed: int, received: int) -> None:
        """A chunked body that goes on past what the upload may still take is too large."""
        if body_length is None and received == allowed and body.read(1):
            raise BodyTooLarge(f"the upload takes at most {allowed} more bytes")

    def check_body(self) -> None:
        checksum, body_hash = self.checksum, self.body_hash
        if checksum is not None and body_hash is not None and body_hash.digest() != checksum.digest:
            raise ChecksumMismatch()

    def before_reading(self, wanted: int) -> int:
        """Before each read of the body: record the chunks stored since the last record —
        every RECORD_EVERY_SECONDS while bytes stream in, and as soon as each is stored while
        the client is quiet (so a worker that dies loses little) — and keep the lock. The
        bytes to read now: what has arrived, so that the read does not wait for more."""
        self.uploader.collect_finished()
        if self.checksum is None:
            quiet = self.watch is not None and not self.watch.wait(0)
            if quiet or time.monotonic() - self.recorded_at >= RECORD_EVERY_SECONDS:
                self.record_stored()
            while quiet and self.uploader.uploading:
                quiet = not self.watch.wait(0.05) if self.watch is not None else False
                self.uploader.collect_finished()
                self.record_stored()
                self.lease.renew()
        self.lease.renew()
        arrived = self.watch.arrived() if self.watch is not None else wanted
        return min(wanted, max(arrived, SMALLEST_READ))

    def record_stored(self) -> None:
        self.progress.record_stored(self.uploader)
        self.recorded_at = time.monotonic()

    def record_end(self) -> None:
        """The body is all there: its chunks, then the rest as the new partial chunk."""
        self.record_stored()
        if self.buffer:
            self.progress.record_tail(self.index, self.buffer, self.file_hash.state())
        elif self.progress.recorded == self.progress.first_index:  # an empty body
            self.progress.touch(self.file_hash.state())

    def keep_or_discard(self, exc: BaseException) -> None:
        """The body broke off, ran over the upload or the quota, or did not match its
        checksum. Without a checksum, what arrived is kept — the partial rest too, once every
        chunk before it is stored; a checksummed body counts whole or not at all."""
        self.uploader.settle(exc)
        if self.checksum is not None:
            self.progress.discard_after_recorded(self.index)
            return
        self.record_stored()
        progress = self.progress
        if progress.recorded == self.index and len(self.buffer) > progress.recorded_tail(
            self.index
        ):
            progress.record_tail(self.index, self.buffer, self.file_hash.state())
