"""What an upload's row records of a PATCH as it goes: the whole chunks stored so far (an
UploadChunk row each), the new offset and SHA-256 state, and the partial last chunk kept at the
start of its object. Every write is conditional on the request's lock (LockLost otherwise), so
a request that lost its upload to another cannot record over it.
"""

from __future__ import annotations

import hashlib

from django.db import transaction
from django.utils import timezone

from files import spans
from files.models import Upload, UploadChunk
from files.pipeline.upload import ChunkUploader
from files.spans import tracer
from files.storage import ChunkStore, chunk_key, delete_chunk_objects
from files.uploads.lifecycle import expiry_from
from files.uploads.lock import Lease, lease
from labdropbox.api.errors import LockLost


class Progress:
    """The record of one request's appends to an upload: `recorded` whole chunks are in the
    row; `states` holds the file's SHA-256 state after each chunk handed to the uploader."""

    def __init__(self, upload: Upload, lease: Lease, store: ChunkStore) -> None:
        self.upload = upload
        self.lease = lease
        self.store = store
        self.first_index = upload.chunk_count
        self.recorded = upload.chunk_count
        self.states: dict[int, bytes] = {}

    def record_stored(self, uploader: ChunkUploader) -> None:
        """Record the chunks stored since the last record, up to the first still missing."""
        stored, upload_id = uploader.stored, self.upload.id
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
        self.save(offset, end, self.states[end - 1], "", rows)
        self.recorded = end

    def record_tail(self, index: int, tail: bytes, state: bytes) -> None:
        """Keep the partial chunk's bytes at the start of its object until the next request
        (only while the lock is still ours: another request may have recorded that object)."""
        self.lease.hold()
        key = chunk_key(self.upload.id, index)
        digest = hashlib.sha256(tail).hexdigest()
        with tracer.start_as_current_span(
            spans.SAVE_PARTIAL_CHUNK, attributes=spans.chunk_attributes(index, len(tail), key)
        ):
            self.store.put(key, tail, digest)
        offset = index * self.upload.chunk_size + len(tail)
        self.save(offset, index, state, digest, [])

    def touch(self, state: bytes) -> None:
        """An empty body: the upload is only kept alive."""
        self.save(self.upload.offset, self.upload.chunk_count, state, self.upload.tail_sha256, [])

    def recorded_tail(self, index: int) -> int:
        """Bytes of chunk `index` (the one being filled) that the row already records."""
        return self.upload.tail_size if index == self.first_index else 0

    def discard_after_recorded(self, next_index: int) -> None:
        """Delete the chunk objects this request wrote past the upload's recorded bytes (the
        partial chunk's object starts with the recorded bytes: it stays)."""
        self.lease.hold()
        first = self.first_index + (1 if self.upload.tail_size else 0)
        keys = [chunk_key(self.upload.id, index) for index in range(first, next_index)]
        delete_chunk_objects(self.store, self.upload.id, keys)

    def save(
        self, offset: int, chunk_count: int, state: bytes, tail_sha256: str, rows: list[UploadChunk]
    ) -> None:
        now = timezone.now()
        with tracer.start_as_current_span(spans.SAVE_PROGRESS) as span, transaction.atomic():
            span.set_attributes({"upload.offset": offset, "upload.chunk_count": chunk_count})
            updated = Upload.objects.filter(self.lease.held).update(
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
        upload = self.upload
        upload.offset, upload.chunk_count = offset, chunk_count
        upload.hash_state, upload.tail_sha256 = state, tail_sha256
        self.lease.renewed_now()
