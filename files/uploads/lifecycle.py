"""A resumable upload's life: created (with its quota space, or as the concatenation of its
parts), found by id, given its length later, terminated with everything it stored, and committed
by whoever asks where it stands when its bytes are all there but its commit did not happen.

An upload's progress lives in its Upload row (files/models.py); its bytes live in chunk objects
under its own id, which becomes the file's id, so committing it writes rows only.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from files import spans
from files.models import File, Upload
from files.names import validate_name
from files.operations.delete import delete_file
from files.quotas import Space
from files.sha256_state import ResumableSha256
from files.spans import tracer
from files.storage import chunk_key, delete_chunk_objects, get_store
from files.uploads.commit import commit_upload, concatenate_if_complete, create_final
from files.uploads.headers import parse_metadata
from files.uploads.lock import Lease, release_lock, try_lock
from labdropbox.api.callers import Caller
from labdropbox.api.errors import (
    BodyTooLarge,
    InvalidUploadRequest,
    PartConflict,
    UploadGone,
    UploadLocked,
    UploadNotFound,
)


def expiry_from(moment: datetime) -> datetime:
    return moment + timedelta(hours=settings.UPLOAD_EXPIRY_HOURS)


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


def declare_length(upload: Upload, declared: int | None, lease: Lease) -> Upload:
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
    Upload.objects.filter(lease.held).update(length=declared)
    upload.length = declared
    return upload
