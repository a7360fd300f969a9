"""What is wrong with a resumable upload's request (the tus protocol)."""

from __future__ import annotations

from labdropbox.api.errors.base import ClientError
from labdropbox.api.errors.requests import IncompleteBody, NotFound


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


class UploadInterrupted(IncompleteBody):
    """A PATCH whose body stopped before its end: every byte that arrived is kept. 409, as
    for an offset that moved, because it is the status tus clients retry (after a HEAD) —
    they give up on other 4xx — and a client's broken connection is no server fault."""

    status, code = 409, "upload_interrupted"

    def __init__(self, broken: IncompleteBody, offset: int) -> None:
        self.broken, self.offset = broken, offset
        super().__init__(self._sentence(), headers={"Upload-Offset": str(offset)})

    def _sentence(self) -> str:
        return (
            f"{self.broken.detail}; what arrived is kept: the upload's offset is {self.offset}, "
            "resume from there"
        )

    def explained_by(self, why: str) -> None:
        self.broken.explained_by(why)
        self.detail = self._sentence()


class UploadComplete(ClientError):
    status, code = 403, "upload_complete"
    default_detail = "this upload has all its bytes; nothing more can be appended to it"


class TooManyUploads(ClientError):
    status, code, reason = 429, "too_many_uploads", "Too Many Requests"


class TooManyLinks(ClientError):
    status, code, reason = 429, "too_many_links", "Too Many Requests"


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
