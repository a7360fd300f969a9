"""A resumable upload's life: created (with its quota space, or as the concatenation of its
parts), found by id, given its length later, terminated with everything it stored, and committed
by whoever asks where it stands when its bytes are all there but its commit did not happen.

An upload's progress lives in its Upload row (files/models/uploads.py); its bytes live in chunk
objects under its own id, which becomes its content's (and its version's) id, and the file's
when it makes a new one, so committing it writes rows only.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from files import spans
from files.models import Entry, Upload, Version
from files.names import join_path, parse_path, validate_name
from files.operations.write import check_early
from files.quotas import Space
from files.sha256_state import ResumableSha256
from files.spans import tracer
from files.storage import chunk_key, delete_chunk_objects, get_store
from files.tree.place import Conditions
from files.tree.roots import tree_of
from files.tree.trash import trash
from files.uploads.commit import commit_upload, concatenate_if_complete, create_final
from files.uploads.headers import parse_metadata
from files.uploads.lock import Lease, release_lock, try_lock
from labdropbox.api.callers import Caller
from labdropbox.api.errors import (
    BodyTooLarge,
    InvalidName,
    InvalidUploadRequest,
    PartConflict,
    TooManyUploads,
    UploadGone,
    UploadLocked,
    UploadNotFound,
)


def expiry_from(moment: datetime) -> datetime:
    return moment + timedelta(hours=settings.UPLOAD_EXPIRY_HOURS)


def upload_path(upload_id: uuid.UUID, metadata: dict[str, str]) -> list[str]:
    """Where the file goes: the `path` metadata, else the `filename` (or `name`) in the root,
    else `<upload id>.bin` there; validated like /write's."""
    if "path" in metadata:
        names = parse_path(metadata["path"])
        if names:
            return names
        raise InvalidName("the path names no file")
    name = metadata.get("filename") or metadata.get("name")
    return [validate_name(name) if name is not None else f"{upload_id}.bin"]


def refuse_too_many(caller: Caller, now: datetime) -> None:
    """At most MAX_UNFINISHED_UPLOADS unfinished, unexpired uploads per user (or for the open
    API's shared tree): a client cannot fill the table, each holding its quota space."""
    unfinished = Upload.objects.filter(
        owner_id=caller.user_id, completed_at=None, expires_at__gt=now
    ).count()
    if unfinished >= settings.MAX_UNFINISHED_UPLOADS:
        raise TooManyUploads(
            f"{unfinished} uploads are unfinished; finish or terminate some first "
            f"(at most {settings.MAX_UNFINISHED_UPLOADS})"
        )


def create_upload(length: int | None, metadata_header: str, concat: str, caller: Caller) -> Upload:
    """A new upload of `length` bytes (None: told later) of the caller's, or a final upload of
    `concat`'s parts (which must be the caller's). Its length is reserved in the caller's
    quota at once (QuotaExceeded: no upload is made)."""
    if length is not None and length > settings.MAX_UPLOAD_BYTES:
        raise BodyTooLarge(
            f"the upload is {length} bytes; the limit is {settings.MAX_UPLOAD_BYTES}"
        )
    upload_id = uuid.uuid4()
    names = upload_path(upload_id, parse_metadata(metadata_header))
    check_early(tree_of(caller), names, Conditions())
    with tracer.start_as_current_span(spans.CREATE_UPLOAD) as span:
        now = timezone.now()
        refuse_too_many(caller, now)
        upload = Upload(
            id=upload_id,
            name=names[-1],
            path=join_path(names),
            metadata=metadata_header,
            length=length,
            chunk_size=settings.CHUNK_SIZE,
            hash_state=ResumableSha256().state(),
            concat=concat,
            updated_at=now,
            expires_at=expiry_from(now),
            owner_id=caller.user_id,
        )
        span.set_attributes(
            {"file.id": str(upload_id), "file.name": upload.name, "file.path": upload.path}
        )
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
    if upload.completed_at is not None and not made_content_still_kept(upload):
        raise UploadNotFound("the file this upload became has been deleted")
    return upload


def made_content_still_kept(upload: Upload) -> bool:
    """A finished upload's content is still somewhere: its file is live (not in the trash),
    and the version it made is kept. A part's content is its final upload's business."""
    if upload.is_partial:
        return True
    return Version.objects.filter(pk=upload.id, file__trash=None).exists()


def terminate_upload(raw_id: str, caller: Caller) -> None:
    """Delete an unfinished upload with everything it stored (and the quota space it held). A
    finished upload's record goes; the file it made goes to the trash (a version it added to
    an existing file stays, as that file's history)."""
    upload = find_upload(raw_id, caller)
    with tracer.start_as_current_span(spans.TERMINATE_UPLOAD, attributes={"file.id": raw_id}):
        if upload.is_partial and upload.final_id is not None:
            raise PartConflict("this part belongs to a final upload; terminate that one")
        if upload.completed_at is not None and not upload.is_partial:
            made = Entry.objects.filter(pk=upload.id, kind=Entry.Kind.FILE, trash=None).first()
            if made is not None:
                trash(made, caller)
            Upload.objects.filter(pk=upload.id).delete()  # its objects are its blob's now
            return
        # Not while a request writes to it (or commits it): its commit would outlive us. (A
        # finished part takes no more requests.)
        token = None if upload.completed_at is not None else try_lock(upload.id)
        if upload.completed_at is None and token is None:
            raise UploadLocked("a request is writing to this upload; terminate it after that")
        keys = [chunk_key(upload.id, index) for index in range(upload.chunk_count + 1)]
        # A part only while no final upload has claimed it (one may, until this DELETE).
        unclaimed = Upload.objects.filter(pk=upload.id)
        if upload.is_partial:
            unclaimed = unclaimed.filter(final=None)
        if not unclaimed.delete()[0]:
            if token is not None:
                release_lock(upload.id, token)
            raise PartConflict("this part has just been claimed by a final upload")
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


def room_for(upload: Upload) -> int:
    """The most bytes MAX_UPLOAD_BYTES lets this upload have: for a part of a final upload,
    less what its other parts have or will have (their lengths, or their offsets while
    deferred), so that no concatenation can go over the limit its parts each stay under."""
    room = settings.MAX_UPLOAD_BYTES
    if upload.final_id is not None:
        others = Upload.objects.filter(final_id=upload.final_id).exclude(pk=upload.pk)
        room -= sum(part.length if part.length is not None else part.offset for part in others)
    return max(room, 0)


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
    if declared > room_for(upload):
        raise BodyTooLarge(
            f"the upload is {declared} bytes; it may have {room_for(upload)} "
            f"(the limit is {settings.MAX_UPLOAD_BYTES}, for all parts of a concatenation)"
        )
    Space(upload.owner_id, upload.id).cover(declared)
    Upload.objects.filter(lease.held).update(length=declared)
    upload.length = declared
    return upload
