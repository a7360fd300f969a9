"""What is wrong with a client's request: its form, its credentials, what it names, what it
asks for."""

from __future__ import annotations

from labdropbox.api.errors.base import ClientError


class BadRequest(ClientError):
    status, code = 400, "bad_request"
    default_detail = "the request is malformed"


class Forbidden(ClientError):
    status, code = 403, "forbidden"
    default_detail = "this request is not allowed"


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

    def explained_by(self, why: str) -> None:
        """Add why the body stopped, as the client's connection tells it."""
        if why not in self.detail:
            self.detail = f"{self.detail}: {why}"


class Unauthorized(ClientError):
    status, code = 401, "unauthorized"
    default_detail = "send Authorization: Bearer <token>"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="labdropbox"'})


class CrossOriginRefused(ClientError):
    status, code = 403, "cross_origin_refused"


class CsrfFailed(ClientError):
    status, code = 403, "csrf_failed"
    default_detail = (
        "a signed-in session writes only with its CSRF token (X-CSRFToken); programs use a token"
    )


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


class EntryNotFound(NotFound):
    """No live file or folder at this path or with this id (the caller may see)."""

    default_detail = "nothing here"


class FolderNotFound(NotFound):
    default_detail = "no folder has this id"


class VersionNotFound(NotFound):
    default_detail = "this file has no version with this id"


class TrashNotFound(NotFound):
    default_detail = "nothing in the trash has this id"


class LinkNotFound(NotFound):
    default_detail = "no live share link has this token: it may have expired or been revoked"


class MethodNotAllowed(ClientError):
    status, code = 405, "method_not_allowed"

    def __init__(self, allowed: tuple[str, ...]) -> None:
        super().__init__(f"use {' or '.join(allowed)}", headers={"Allow": ", ".join(allowed)})


class LengthRequired(ClientError):
    status, code = 411, "length_required"
    default_detail = "send Content-Length or a chunked body"


class NameTaken(ClientError):
    status, code = 409, "name_taken"


class NotAFolder(ClientError):
    status, code = 409, "not_a_folder"


class IntoItself(ClientError):
    status, code = 409, "into_itself"
    default_detail = "a folder cannot move into itself or into a folder inside it"


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
