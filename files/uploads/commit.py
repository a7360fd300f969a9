"""Committing a resumable upload once its last byte is stored: a plain upload becomes a file in
one transaction, as a /write does; a part is marked complete, and the final upload made of it is
committed when its last part is — its chunk rows point at the parts' objects, so no object is
copied.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Reservation
from files import spans
from files.metadata import drop_cached_meta
from files.models import Blob, Chunk, Entry, Upload, UploadChunk
from files.names import parse_path
from files.quotas import settle
from files.sha256_state import ResumableSha256
from files.spans import tracer
from files.tree.place import Conditions, place_blob
from files.tree.roots import locked_tree, root_of
from files.uploads.concatenate import concatenation_sha256
from files.uploads.headers import parse_concat_parts
from files.uploads.lock import release_lock, try_lock
from labdropbox.api.callers import Caller
from labdropbox.api.errors import (
    BodyTooLarge,
    InvalidUploadRequest,
    PartConflict,
    ServiceError,
    UploadNotFound,
)

logger = logging.getLogger(__name__)


def commit_upload(upload: Upload) -> Entry | None:
    """The last byte is stored: a plain upload's content is committed and placed at its path
    (one transaction, like /write); a part is marked complete, and its final upload committed
    if it was the last part missing."""
    if upload.is_partial:
        Upload.objects.filter(pk=upload.id).update(completed_at=timezone.now())
        # Read again: a final upload may have claimed this part while its bytes arrived.
        final = Upload.objects.filter(parts=upload.id).first()
        return concatenate_if_complete(final) if final is not None else None
    rows = list(upload.chunks.order_by("index"))
    blob = Blob(
        id=upload.id,
        size=upload.offset,
        sha256=ResumableSha256(bytes(upload.hash_state)).hexdigest(),
        chunk_count=len(rows),
    )
    chunks = [Chunk(blob=blob, index=r.index, size=r.size, sha256=r.sha256) for r in rows]
    return save_blob(blob, chunks, upload, parts=[])


def create_final(upload: Upload, caller: Caller) -> Upload:
    """A final upload of the parts its Upload-Concat names, in order; committed at once if they
    are all complete, else when the last of them is (concatenation-unfinished). Parts are the
    caller's own: the file's bytes count against the quota that held them."""
    part_ids = parse_concat_parts(upload.concat)
    if len(set(part_ids)) != len(part_ids):
        raise InvalidUploadRequest("Upload-Concat names a part twice")
    now = timezone.now()
    with transaction.atomic():
        parts = {
            part.id: part for part in Upload.objects.select_for_update().filter(pk__in=part_ids)
        }
        for position, part_id in enumerate(part_ids):
            part = parts.get(part_id)
            if part is None or not part.is_partial or part.owner_id != caller.user_id:
                raise PartConflict(f"{part_id} is not a partial upload")
            if part.final_id is not None:
                raise PartConflict(f"{part_id} already belongs to another final upload")
            if part.completed_at is None and part.expires_at <= now:
                raise PartConflict(f"{part_id} has expired")
            part.final, part.part_order = upload, position
        if all(part.length is not None for part in parts.values()):
            upload.length = sum(part.length or 0 for part in parts.values())
            if upload.length > settings.MAX_UPLOAD_BYTES:
                raise BodyTooLarge(
                    f"the parts add up to {upload.length} bytes; "
                    f"the limit is {settings.MAX_UPLOAD_BYTES}"
                )
        upload.save(force_insert=True)
        Upload.objects.bulk_update(parts.values(), ["final", "part_order"])
    concatenate_if_complete(upload)
    return upload


def concatenate_if_complete(final: Upload) -> Entry | None:
    """Commit the final upload if every part is complete and no other request is committing
    it (the parts' last bytes can arrive together, through different workers)."""
    parts = list(final.parts.order_by("part_order"))
    if final.completed_at is not None or not all(part.completed_at for part in parts):
        return None
    if len(parts) != len(parse_concat_parts(final.concat)):
        logger.warning("final upload %s lost a part: it cannot be completed", final.id)
        return None
    token = try_lock(final.id)
    if token is None:
        return None
    try:
        with tracer.start_as_current_span(spans.CONCATENATE_UPLOADS) as span:
            span.set_attributes({"file.id": str(final.id), "upload.parts": len(parts)})
            return commit_concatenation(final, parts)
    finally:
        release_lock(final.id, token)


def commit_concatenation(final: Upload, parts: list[Upload]) -> Entry:
    chunks: list[Chunk] = []
    for part in parts:
        for row in part.chunks.order_by("index"):
            chunks.append(
                Chunk(
                    index=len(chunks),
                    size=row.size,
                    sha256=row.sha256,
                    source_id=part.id,
                    source_index=row.index,
                )
            )
    size = sum(part.offset for part in parts)
    if size > settings.MAX_UPLOAD_BYTES:  # parts whose lengths were told late (safety net)
        raise BodyTooLarge(
            f"the parts add up to {size} bytes; the limit is {settings.MAX_UPLOAD_BYTES}"
        )
    blob = Blob(
        id=final.id,
        size=size,
        sha256=concatenation_sha256(parts, chunks),
        chunk_count=len(chunks),
    )
    for chunk in chunks:
        chunk.blob = blob
    return save_blob(blob, chunks, final, parts)


def save_blob(blob: Blob, chunks: list[Chunk], upload: Upload, parts: list[Upload]) -> Entry:
    """The upload's content committed and placed at its path, in one transaction with the
    upload's completion (like /write's); the upload's chunk rows go, and a concatenation's
    parts go whole (their objects are the content's now, its chunk rows pointing at them). If a
    request that lost its lease committed it first, that file is the answer."""
    if sum(chunk.size for chunk in chunks) != blob.size:
        raise ServiceError(f"upload {upload.id}: its chunks do not add up to {blob.size} bytes")
    uploads = [upload.id, *(part.id for part in parts)]
    root = root_of(upload.owner_id)
    try:
        with tracer.start_as_current_span(spans.SAVE_METADATA), locked_tree(root):
            # The content's size counts against the quota now, instead of the space held for it.
            settle(upload.owner_id, Reservation.objects.filter(upload_id__in=uploads))
            completed = Upload.objects.filter(pk=upload.id, completed_at=None).update(
                completed_at=timezone.now(), offset=blob.size, length=blob.size
            )
            if not completed:  # terminated, or committed by another request, meanwhile
                raise IntegrityError(f"upload {upload.id} is no longer unfinished")
            blob.save(force_insert=True)
            Chunk.objects.bulk_create(chunks, batch_size=1000)
            placed = place_blob(
                root, parse_path(upload.path), blob, Conditions(), upload.owner_id, True
            )
            Upload.objects.filter(pk=upload.id).update(file=placed.file)
            UploadChunk.objects.filter(upload=upload).delete()
            # The parts' objects are covered by the chunk rows from here; a part terminated
            # meanwhile took its objects with it, and this commit must not happen.
            parts_gone = Upload.objects.filter(pk__in=uploads[1:], final=upload).delete()[1]
            if parts_gone.get(Upload._meta.label, 0) != len(parts):
                raise IntegrityError(f"final upload {upload.id} lost a part while committing")
    except IntegrityError:
        done = Upload.objects.filter(pk=upload.id).exclude(file=None).first()
        if done is None or done.file is None:
            raise UploadNotFound() from None
        return done.file
    with tracer.start_as_current_span(spans.INVALIDATE_CACHE):
        drop_cached_meta(placed.file.id, changed=not placed.created)
    return placed.file
