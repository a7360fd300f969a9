"""Appending bytes to a resumable upload: a tus PATCH, or the body of a creation request.

The bytes are cut into the upload's chunks as they arrive and stored under the same keys as
/write's (chunks/{upload_id}/{i}), with the same memory bounds. The upload's row is the truth:
offset, whole chunks and the SHA-256 state advance after each chunk is stored, so a client that
comes back — to any worker of any instance — resumes at most one chunk behind what it sent. The
partial last chunk is kept as the start of its object between requests. A request holds the
upload's lock for a lease it renews while bytes arrive; if its worker dies, the lease ends and
the upload is free again. With Upload-Checksum, the request's bytes count only once the whole
body matches: until then nothing is recorded, and on a mismatch they are discarded.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.callers import Caller
from accounts.quotas import Space
from files import spans
from files.errors import (
    BodyTooLarge,
    ChecksumMismatch,
    ChunkCorrupt,
    FinalUploadImmutable,
    IncompleteBody,
    InvalidUploadRequest,
    OffsetMismatch,
    QuotaExceeded,
    UploadLocked,
)
from files.models import Upload, UploadChunk
from files.operations.uploads import (
    commit_upload,
    expiry_from,
    find_upload,
    finish_if_stored,
    lease,
    release_lock,
    try_lock,
)
from files.operations.write import Body, ChunkUploader
from files.sha256_state import ResumableSha256
from files.spans import tracer
from files.storage import chunk_key, delete_chunk_objects, get_store
from metrics.registry import UPLOADS_IN_PROGRESS


class BodyWatch(Protocol):
    """The request's connection, as the HTTP layer watches it (files.http.BodyWatch)."""

    def arrived(self) -> int: ...  # bytes received, not yet read

    def wait(self, timeout: float) -> bool: ...  # True once more has come


# The smallest read of a PATCH's body: a client sending slowly still gets its chunks recorded.
SMALLEST_READ = 8 * 1024
# While bytes stream in, stored chunks are recorded this often (a transaction each time).
RECORD_EVERY_SECONDS = 0.2


class LockLost(UploadLocked):
    default_detail = "this request took too long and another one now writes to the upload"


@dataclass(frozen=True)
class Checksum:
    """Upload-Checksum: the algorithm (hashlib's name) and the digest the body must have."""

    algorithm: str
    digest: bytes


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
        if upload.completed_at is not None:
            return upload  # every byte is there already
        if upload.length is not None and upload.offset == upload.length:
            if body_length:
                raise BodyTooLarge("the upload has all its bytes already")
            return finish_if_stored(upload)  # stored, but its commit failed: commit it now
        token = take_lock(upload)
        try:
            upload = declare_length(upload, declared_length, token)
            appender = Appender(upload, token, checksum, watch)
            upload = appender.append(body, body_length)
            span.set_attribute("upload.new_offset", upload.offset)
            if upload.length is not None and upload.offset == upload.length:
                commit_upload(upload)
            # As it is now (a final upload may have taken a finished part's row away).
            return Upload.objects.filter(pk=upload.id).first() or upload
        finally:
            release_lock(upload.id, token)


def take_lock(upload: Upload) -> str:
    """Hold the upload's lock (UploadLocked if a live request holds it; OffsetMismatch if one
    moved the offset meanwhile); the token that proves it."""
    token = try_lock(upload.id, offset=upload.offset)
    if token is not None:
        return token
    current = Upload.objects.filter(pk=upload.id).values_list("offset", flat=True).first()
    if current is not None and current != upload.offset:
        raise OffsetMismatch(current)
    raise UploadLocked()


def declare_length(upload: Upload, declared: int | None, token: str) -> Upload:
    """Upload-Length on a PATCH: the length of an upload created without one, once."""
    if declared is None:
        return upload
    if upload.length is not None:
        if declared != upload.length:
            raise InvalidUploadRequest(f"the upload's length is {upload.length} already")
        return upload
    if declared < upload.offset:
        raise InvalidUploadRequest(f"Upload-Length is less than the {upload.offset} bytes stored")
    if declared > settings.MAX_UPLOAD_BYTES:
        raise BodyTooLarge(
            f"the upload is {declared} bytes; the limit is {settings.MAX_UPLOAD_BYTES}"
        )
    Space(upload.owner_id, upload.id).cover(declared)
    Upload.objects.filter(pk=upload.id, lock_token=token).update(length=declared)
    upload.length = declared
    return upload


class Appender:
    """One request's bytes appended to an upload whose lock it holds.

    `index` is the chunk being filled and `buffer` its bytes so far (the stored partial chunk
    first): what a failure midway leaves to keep or to discard.
    """

    def __init__(
        self,
        upload: Upload,
        token: str,
        checksum: Checksum | None,
        watch: BodyWatch | None = None,
    ) -> None:
        self.upload = upload
        self.watch = watch
        self.token = token
        self.checksum = checksum
        self.store = get_store()
        self.uploader = ChunkUploader(self.store, upload.id, settings.UPLOAD_CONCURRENCY)
        self.file_hash = ResumableSha256(bytes(upload.hash_state))
        self.body_hash = hashlib.new(checksum.algorithm) if checksum else None
        self.first_index = self.index = upload.chunk_count
        self.start_offset = upload.offset
        # With its length known, the upload's space was reserved when it was; without, the
        # bytes are covered as they come.
        self.space = Space(upload.owner_id, upload.id)
        self.buffer = b""
        self.recorded = upload.chunk_count  # whole chunks in the upload's row
        self.states: dict[int, bytes] = {}  # chunk index -> hash state once it was hashed
        self.renewed = self.recorded_at = time.monotonic()

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
            return self.record_end()
        except (IncompleteBody, BodyTooLarge, ChecksumMismatch, QuotaExceeded) as exc:
            self.keep_or_discard(exc)
            raise
        except BaseException as exc:
            self.uploader.settle(exc)  # storage or the database failed: record what is stored
            self.record_progress()
            raise
        finally:
            self.uploader.forget(self.buffer)

    def bytes_allowed(self) -> int:
        upload = self.upload
        limit = upload.length if upload.length is not None else settings.MAX_UPLOAD_BYTES
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
        self.states[self.index] = self.file_hash.state()
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
                self.record_progress()
            while quiet and self.uploader.uploading:
                quiet = not self.watch.wait(0.05) if self.watch is not None else False
                self.uploader.collect_finished()
                self.record_progress()
                self.renew_lease()
        self.renew_lease()
        arrived = self.watch.arrived() if self.watch is not None else wanted
        return min(wanted, max(arrived, SMALLEST_READ))

    def hold_lock(self) -> None:
        """Renew the lease now, or raise LockLost if another request holds the upload."""
        self.renewed = float("-inf")
        self.renew_lease()

    def renew_lease(self) -> None:
        if time.monotonic() - self.renewed > lease().total_seconds() / 3:
            self.renewed = time.monotonic()
            held = Upload.objects.filter(pk=self.upload.id, lock_token=self.token)
            if not held.update(lock_expires_at=timezone.now() + lease()):
                raise LockLost()

    # --- what is recorded ----------------------------------------------------------------------

    def record_progress(self) -> None:
        """Record the chunks stored since the last record, up to the first still missing."""
        stored, upload_id = self.uploader.stored, self.upload.id
        end = self.recorded
        while end in stored:
            end += 1
        if end == self.recorded:
            return
        rows = [
            UploadChunk(upload_id=upload_id, index=i, size=stored[i][0], sha256=stored[i][1])
            for i in range(self.recorded, end)
        ]
        offset = (end - 1) * self.upload.chunk_size + stored[end - 1][0]  # the last may be short
        self.save_row(offset, end, self.states[end - 1], "", rows)
        self.recorded = end

    def record_end(self) -> Upload:
        """The body is all there: its chunks, then the rest as the new partial chunk."""
        self.record_progress()
        if self.buffer:
            self.save_tail()
        elif self.recorded == self.first_index:  # an empty body: the upload is only touched
            self.save_row(self.upload.offset, self.index, self.file_hash.state(), "", [])
        return self.upload

    def save_tail(self) -> None:
        """Keep the partial chunk's bytes at the start of its object until the next request
        (only while the lock is still ours: another request may have recorded that object)."""
        self.hold_lock()
        key = chunk_key(self.upload.id, self.index)
        with tracer.start_as_current_span(
            spans.SAVE_PARTIAL_CHUNK,
            attributes=spans.chunk_attributes(self.index, len(self.buffer), key),
        ):
            self.store.put(key, self.buffer)
        offset = self.index * self.upload.chunk_size + len(self.buffer)
        digest = hashlib.sha256(self.buffer).hexdigest()
        self.save_row(offset, self.index, self.file_hash.state(), digest, [])

    def keep_or_discard(self, exc: BaseException) -> None:
        """The body broke off, ran over the upload or the quota, or did not match its
        checksum. Without a checksum,
        what arrived is kept — the partial rest too, once every chunk before it is stored; a
        checksummed body counts whole or not at all."""
        self.uploader.settle(exc)
        if self.checksum is not None:
            self.discard_new_objects()
            return
        self.record_progress()
        if self.recorded == self.index and len(self.buffer) > self.recorded_tail():
            self.save_tail()

    def recorded_tail(self) -> int:
        """Bytes of the chunk being filled that the upload's row already records."""
        return self.upload.tail_size if self.index == self.first_index else 0

    def discard_new_objects(self) -> None:
        """Delete the chunk objects this request wrote past the upload's recorded bytes (the
        partial chunk's object starts with the recorded bytes: it stays)."""
        self.hold_lock()
        first = self.first_index + (1 if self.upload.tail_size else 0)
        keys = [chunk_key(self.upload.id, index) for index in range(first, self.index)]
        delete_chunk_objects(self.store, self.upload.id, keys)

    def save_row(
        self, offset: int, chunk_count: int, state: bytes, tail_sha256: str, rows: list[UploadChunk]
    ) -> None:
        now = timezone.now()
        with tracer.start_as_current_span(spans.SAVE_PROGRESS) as span, transaction.atomic():
            span.set_attributes({"upload.offset": offset, "upload.chunk_count": chunk_count})
            updated = Upload.objects.filter(pk=self.upload.id, lock_token=self.token).update(
                offset=offset,
                chunk_count=chunk_count,
                hash_state=state,
                tail_sha256=tail_sha256,
                updated_at=now,
                expires_at=expiry_from(now),
                lock_expires_at=now + lease(),
            )
            if not updated:
                raise LockLost()
            if self.upload.final_id is not None:  # a final upload lives while its parts grow
                Upload.objects.filter(pk=self.upload.final_id).update(expires_at=expiry_from(now))
            UploadChunk.objects.bulk_create(rows)
        self.upload.offset, self.upload.chunk_count = offset, chunk_count
        self.upload.hash_state, self.upload.tail_sha256 = state, tail_sha256
        self.renewed = self.recorded_at = time.monotonic()  # the lease too
