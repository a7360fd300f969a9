"""Every error the service answers with: exceptions that carry their own HTTP status and code.

Every app's operations, the metadata layer and the chunk stores raise these; the API turns any
of them into `{"error": code, "detail": sentence}` with one function, `error_response`. A new
error is a new subclass here, never a new entry in a table somewhere else: this module is the
catalogue that docs/api.md lists.
"""

from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest

from labdropbox.api.responses import JsonAnswer

log = logging.getLogger(__name__)


class ServiceError(Exception):
    """Base of every error the API reports. `detail` defaults to the class's sentence."""

    status = 500
    code = "internal_error"
    default_detail = "the server failed; the error has been logged"
    reason: str | None = None  # the status line's phrase, where HTTP has none of its own
    # Our failure (a dependency, a bug) rather than the client's request: logged, and the
    # client is told only its kind.
    server_fault = True

    def __init__(self, detail: str | None = None, headers: dict[str, str] | None = None) -> None:
        self.detail = detail or self.default_detail
        self.headers = headers or {}
        super().__init__(self.detail)

    @property
    def public_detail(self) -> str:
        """What the client is told: its own mistake in full; of our failures, only the kind
        (the specifics, such as hosts and keys, go to the log)."""
        return self.default_detail if self.server_fault else self.detail


# --- the client's request ------------------------------------------------------------------------


class ClientError(ServiceError):
    """The request's fault: the detail tells the client exactly what to change."""

    server_fault = False


class InvalidName(ClientError):
    status, code = 400, "invalid_name"


class InvalidLength(ClientError):
    status, code = 400, "invalid_length"


class InvalidParameter(ClientError):
    status, code = 400, "invalid_parameter"


class IncompleteBody(ClientError):
    """The client sent less than it announced, or went away mid-upload. `partial`: the bytes
    of the piece being read when the body broke off (see ChunkUploader.read_chunk)."""

    status, code = 400, "incomplete_body"
    partial = b""


class Unauthorized(ClientError):
    status, code = 401, "unauthorized"
    default_detail = "send Authorization: Bearer <token>"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="labdropbox"'})


class CrossOriginRefused(ClientError):
    status, code = 403, "cross_origin_refused"


class MetricsForbidden(ClientError):
    status, code = 403, "forbidden"
    default_detail = "metrics are for METRICS_TOKEN holders and METRICS_ALLOWED_NETWORKS"


class NotFound(ClientError):
    status, code = 404, "not_found"
    default_detail = "nothing here"


class FileNotFound(NotFound):
    """No committed file has this id (or the id is not a UUID at all)."""

    def __init__(self, file_id: str) -> None:
        super().__init__("no file has this id")
        self.file_id = file_id


class LinkNotFound(NotFound):
    default_detail = "no live share link has this token: it may have expired or been revoked"


class MethodNotAllowed(ClientError):
    status, code = 405, "method_not_allowed"

    def __init__(self, allowed: tuple[str, ...]) -> None:
        super().__init__(f"use {' or '.join(allowed)}", headers={"Allow": ", ".join(allowed)})


class LengthRequired(ClientError):
    status, code = 411, "length_required"
    default_detail = "send Content-Length or a chunked body"


class PreconditionFailed(ClientError):
    status, code = 412, "precondition_failed"
    default_detail = "If-Match or If-Unmodified-Since failed"


class BodyTooLarge(ClientError):
    status, code = 413, "too_large"


class QuotaExceeded(ClientError):
    status, code, reason = 507, "quota_exceeded", "Insufficient Storage"

    def __init__(self, used: int, wanted: int, limit: int) -> None:
        free = max(0, limit - used)
        super().__init__(f"this upload needs {wanted} bytes; the quota has {free} of {limit} free")


class RangeNotSatisfiable(ClientError):
    status, code = 416, "range_not_satisfiable"

    def __init__(self, size: int) -> None:
        super().__init__(f"the file has {size} bytes", headers={"Content-Range": f"bytes */{size}"})


# --- resumable uploads (the tus protocol) --------------------------------------------------------


class UploadNotFound(NotFound):
    default_detail = "no upload has this id"


class UploadGone(ClientError):
    status, code = 410, "upload_expired"
    default_detail = "this upload expired; start a new one"


class InvalidUploadRequest(ClientError):
    """A tus header is missing, malformed or contradicts another."""

    status, code = 400, "invalid_upload_request"


class FinalUploadImmutable(ClientError):
    status, code = 403, "final_upload"
    default_detail = "a final (concatenated) upload takes no bytes of its own"


class OffsetMismatch(ClientError):
    status, code = 409, "offset_mismatch"

    def __init__(self, offset: int) -> None:
        super().__init__(f"the upload's offset is {offset}: HEAD it, then send from there")


class TusVersionUnsupported(ClientError):
    status, code = 412, "tus_version_unsupported"
    default_detail = "send Tus-Resumable: 1.0.0"


class WrongContentType(ClientError):
    status, code = 415, "unsupported_media_type"
    default_detail = "a PATCH body is Content-Type: application/offset+octet-stream"


class UploadLocked(ClientError):
    status, code = 423, "upload_locked"
    default_detail = "another request is writing to this upload; try again shortly"


class LockLost(UploadLocked):
    default_detail = "this request took too long and another one now writes to the upload"


class PartConflict(ClientError):
    """A part of a final upload that cannot be one."""

    status, code = 409, "part_unusable"


class ChecksumMismatch(ClientError):
    status, code, reason = 460, "checksum_mismatch", "Checksum Mismatch"
    default_detail = "the body does not match Upload-Checksum; nothing of it was kept"


class UnsupportedTransferEncoding(ClientError):
    status, code = 501, "unsupported_transfer_encoding"
    default_detail = "the only transfer coding accepted is chunked"

    def __init__(self, detail: str) -> None:
        super().__init__(f"{detail} is not supported; the only transfer coding accepted is chunked")


# --- the service's dependencies ------------------------------------------------------------------


class ChunkNotFound(ServiceError):
    """The chunk object does not exist (or not with the bytes asked for)."""

    status, code = 502, "chunk_missing"
    default_detail = "a chunk of this file is missing from object storage"


class ChunkCorrupt(ServiceError):
    """A chunk object's bytes do not match the size or SHA-256 recorded for it."""

    status, code = 502, "chunk_corrupt"
    default_detail = "a chunk of this file does not match its checksum"


class StorageRejected(ServiceError):
    """Object storage answered, and refused for good: wrong credentials, no such bucket, no
    permission. Retrying will not help; the service's configuration must change."""

    status, code = 502, "storage_misconfigured"
    default_detail = "object storage refused the request; the service's storage settings are wrong"


class StorageUnavailable(ServiceError):
    """The object store could not be reached, timed out, or failed for now."""

    status, code = 503, "storage_unavailable"
    default_detail = "object storage is unavailable; try again"


class ServerBusy(ServiceError):
    """The worker's chunk memory is taken by other transfers for longer than a transfer may
    wait for its first buffer."""

    status, code = 503, "server_busy"
    default_detail = "the server is busy with other transfers; try again"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"Retry-After": "1"})


class DatabaseUnavailable(ServiceError):
    status, code = 503, "database_unavailable"
    default_detail = "the database is unavailable; try again"


def as_service_error(exc: Exception) -> ServiceError | None:
    """The ServiceError that `exc` stands for, or None if it is a bug (a 500)."""
    if isinstance(exc, ServiceError):
        return exc
    # The database driver's errors reach us through Django: an unreachable or stalled server.
    if isinstance(exc, (OperationalError, InterfaceError)):
        return DatabaseUnavailable()
    return None


def json_error(error: ServiceError) -> JsonAnswer:
    return JsonAnswer(
        {"error": error.code, "detail": error.public_detail},
        status=error.status,
        reason=error.reason,
        headers=error.headers,
    )


def error_response(request: HttpRequest, exc: Exception) -> JsonAnswer | None:
    """The JSON error answer for `exc`, or None for an unexpected exception (let it raise)."""
    error = as_service_error(exc)
    if error is None:
        return None
    if error.server_fault:
        log.warning("%s %s: %d %s: %s", request.method, request.path, error.status, error.code, exc)
    return json_error(error)
