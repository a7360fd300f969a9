"""Resumable uploads (tus): creating one, finding it, terminating it, and committing it as a file
once its last byte is stored — alone, or as the concatenation of partial uploads.

Appending bytes (PATCH) is files/operations/append.py. An upload's progress lives in its Upload
row (files/models.py); its bytes live in chunk objects under its own id, which becomes the
file's id, so committing it writes rows only. A concatenation commits the parts' chunk lists in
order: no object is copied.
"""

from __future__ import annotations

import base64
import binascii
import logging
import secrets
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.callers import Caller
from accounts.models import Reservation
from accounts.quotas import Space, settle
from files import spans
from files.errors import (
    BodyTooLarge,
    InvalidUploadRequest,
    ServiceError,
    UploadGone,
    UploadLocked,
    UploadNotFound,
)
from files.metadata import drop_cached_meta
from files.models import Chunk, File, Upload, UploadChunk
from files.names import validate_name
from files.operations.concatenate import concatenation_sha256
from files.operations.delete import delete_file
from files.sha256_state import ResumableSha256
from files.spans import tracer
from files.storage import chunk_key, delete_chunk_objects, get_store

logger = logging.getLogger(__name__)


class PartConflict(ServiceError):
    """A part of a final upload that cannot be one."""

    status, code, server_fault = 409, "part_unusable", False


def expiry_from(moment: datetime) -> datetime:
    return moment + timedelta(hours=settings.UPLOAD_EXPIRY_HOURS)


def lease() -> timedelta:
    """How long a request holds an upload's lock without renewing it."""
    return timedelta(seconds=settings.UPLOAD_IDLE_TIMEOUT_SECONDS)


def try_lock(upload_id: uuid.UUID, **conditions: object) -> str | None:
    """Take an unfinished upload's lock if no live request holds it (and `conditions` hold);
    the token that proves it, or None."""
    token, now = secrets.token_hex(16), timezone.now()
    free = Upload.objects.filter(pk=upload_id, completed_at=None, **conditions).filter(
        Q(lock_token="") | Q(lock_expires_at__lte=now)
    )
    return token if free.update(lock_token=token, lock_expires_at=now + lease()) else None


def release_lock(upload_id: uuid.UUID, token: str) -> None:
    Upload.objects.filter(pk=upload_id, lock_token=token).update(lock_token="")


def parse_metadata(header: str) -> dict[str, str]:
    """Upload-Metadata: `key base64,key2 base64,key3`; values decoded as UTF-8."""
    pairs: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in header.split(","))):
        key, _, encoded = item.partition(" ")
        if not key or " " in encoded.strip() or key in pairs:
            raise InvalidUploadRequest(f"Upload-Metadata pair {item[:60]!r} is malformed")
        try:
            pairs[key] = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidUploadRequest(f"Upload-Metadata {key!r} is not base64 UTF-8") from None
    return pairs


def upload_name(upload_id: uuid.UUID, metadata: dict[str, str]) -> str:
    """The stored file's name: the `filename` (or `name`) metadata, validated like /write's."""
    name = metadata.get("filename") or metadata.get("name")
    return validate_name(name) if name is not None else f"{upload_id}.bin"


def create_upload(length: int | None, metadata_header: str, concat: str, caller: Caller) -> Upload:
    """A new upload of `length` bytes (None: told later) of the caller's, or a final upload of
    `concat`'s parts (which must be the caller's). Its length is reserved in the caller's
    quota at once (QuotaExceeded: no upload is made)."""
    if length is not None and length > settings.MAX_UPLOAD_BYTES:
        raise BodyTooLarge(
            f"the upload is {length} bytes; the limit is {settings.MAX_UPLOAD_BYTES}"
        )
    upload_id = uuid.uuid4()
    with tracer.start_as_current_span(spans.CREATE_UPLOAD) as span:
        now = timezone.now()
        upload = Upload(
            id=upload_id,
            name=upload_name(upload_id, parse_metadata(metadata_header)),
            metadata=metadata_header,
            length=length,
            chunk_size=settings.CHUNK_SIZE,
            hash_state=ResumableSha256().state(),
            concat=concat,
            updated_at=now,
            expires_at=expiry_from(now),
            owner_id=caller.user_id,
        )
        span.set_attributes({"file.id": str(upload_id), "file.name": upload.name})
        if upload.is_final:
            return create_final(upload, caller)
        with transaction.atomic():
            upload.save(force_insert=True)
            Space(caller.user_id, upload_id).cover(length or 0)
        if length == 0:
            commit_upload(upload)
        return upload


def find_upload(raw_id: str, caller: Caller) -> Upload:
    """The upload with this id: UploadNotFound if there is none the caller may see,
    UploadGone once expired."""
    try:
        upload = Upload.objects.get(pk=uuid.UUID(raw_id))
    except (ValueError, TypeError, Upload.DoesNotExist):
        raise UploadNotFound() from None
    if not caller.may_access(upload.owner_id):
        raise UploadNotFound()
    if upload.completed_at is None and upload.expires_at <= timezone.now():
        raise UploadGone()
    return upload


def terminate_upload(raw_id: str, caller: Caller) -> None:
    """Delete an upload with everything it stored (and the quota space it held). A completed
    upload's file goes with it."""
    upload = find_upload(raw_id, caller)
    with tracer.start_as_current_span(spans.TERMINATE_UPLOAD, attributes={"file.id": raw_id}):
        if upload.is_partial and upload.final_id is not None:
            raise PartConflict("this part belongs to a final upload; terminate that one")
        # Not while a request writes to it (or commits it): its commit would outlive us.
        if upload.completed_at is None and try_lock(upload.id) is None:
            raise UploadLocked("a request is writing to this upload; terminate it after that")
        if upload.completed_at is not None and File.objects.filter(pk=upload.id).exists():
            delete_file(str(upload.id), caller)
        keys = [chunk_key(upload.id, index) for index in range(upload.chunk_count + 1)]
        Upload.objects.filter(pk=upload.id).delete()
        delete_chunk_objects(get_store(), upload.id, keys)


def finish_if_stored(upload: Upload) -> Upload:
    """Commit an upload whose bytes are all stored but whose commit did not happen (the
    database failed at the last moment; or, for a final upload, the request that completed
    its last part did). A client that asks where its upload stands then finds its file."""
    if upload.completed_at is not None:
        return upload
    if upload.is_final:
        concatenate_if_complete(upload)
    elif upload.length is not None and upload.offset == upload.length:
        token = try_lock(upload.id)
        if token is None:
            return upload  # a request is writing to it, and will commit it
        try:
            commit_upload(upload)
        finally:
            release_lock(upload.id, token)
    return Upload.objects.filter(pk=upload.id).first() or upload


# --- committing --------------------------------------------------------------------------------


def commit_upload(upload: Upload) -> File | None:
    """The last byte is stored: a plain upload becomes a file (one transaction, like /write); a
    part is marked complete, and its final upload committed if it was the last part missing."""
    if upload.is_partial:
        Upload.objects.filter(pk=upload.id).update(completed_at=timezone.now())
        # Read again: a final upload may have claimed this part while its bytes arrived.
        final = Upload.objects.filter(parts=upload.id).first()
        return concatenate_if_complete(final) if final is not None else None
    rows = list(upload.chunks.order_by("index"))
    file = File(
        id=upload.id,
        name=upload.name,
        size=upload.offset,
        sha256=ResumableSha256(bytes(upload.hash_state)).hexdigest(),
        chunk_count=len(rows),
        owner_id=upload.owner_id,
    )
    chunks = [Chunk(file=file, index=r.index, size=r.size, sha256=r.sha256) for r in rows]
    return save_file(file, chunks, upload, parts=[])


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


def parse_concat_parts(concat: str) -> list[uuid.UUID]:
    """The part ids of `final;<url> <url>…` (absolute or relative URLs ending in the id)."""
    urls = concat.partition(";")[2].split()
    if concat.partition(";")[0] != "final" or not urls:
        raise InvalidUploadRequest("Upload-Concat is `partial`, or `final;` and the parts' URLs")
    try:
        return [uuid.UUID(url.rstrip("/").rsplit("/", 1)[-1]) for url in urls]
    except ValueError:
        raise InvalidUploadRequest("Upload-Concat names a part that is not an upload URL") from None


def concatenate_if_complete(final: Upload) -> File | None:
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


def commit_concatenation(final: Upload, parts: list[Upload]) -> File:
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
    file = File(
        id=final.id,
        name=final.name,
        size=sum(part.offset for part in parts),
        sha256=concatenation_sha256(parts, chunks),
        chunk_count=len(chunks),
        owner_id=final.owner_id,
    )
    for chunk in chunks:
        chunk.file = file
    return save_file(file, chunks, final, parts)


def save_file(file: File, chunks: list[Chunk], upload: Upload, parts: list[Upload]) -> File:
    """The file's rows, in one transaction with the upload's completion (like /write's); the
    upload's chunk rows go, and a concatenation's parts go whole (their objects are the file's
    now). If a request that lost its lease committed it first, that file is the answer."""
    if sum(chunk.size for chunk in chunks) != file.size:
        raise ServiceError(f"upload {upload.id}: its chunks do not add up to {file.size} bytes")
    uploads = [upload.id, *(part.id for part in parts)]
    try:
        with tracer.start_as_current_span(spans.SAVE_METADATA), transaction.atomic():
            # The file's size counts against the quota now, instead of the space held for it.
            settle(upload.owner_id, Reservation.objects.filter(upload_id__in=uploads))
            file.save(force_insert=True)
            Chunk.objects.bulk_create(chunks, batch_size=1000)
            completed = Upload.objects.filter(pk=upload.id, completed_at=None).update(
                completed_at=timezone.now(), offset=file.size, length=file.size
            )
            if not completed:  # terminated meanwhile: roll the file back
                raise UploadNotFound()
            UploadChunk.objects.filter(upload=upload).delete()
            Upload.objects.filter(pk__in=uploads[1:]).delete()
    except IntegrityError:
        return File.objects.get(pk=file.id)
    with tracer.start_as_current_span(spans.INVALIDATE_CACHE):
        drop_cached_meta(file.id)
    return file
