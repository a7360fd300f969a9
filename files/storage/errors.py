"""Every chunk store's library errors, made the three of the error contract: ChunkNotFound (the
object is not there), StorageUnavailable (unreachable or failing for now: try again) and
StorageRejected (it answered and refused for good: credentials, bucket, permissions)."""

from __future__ import annotations

import errno

from botocore.exceptions import BotoCoreError, ClientError

from labdropbox.api.errors import ChunkNotFound, StorageRejected, StorageUnavailable

# --- S3, through boto3 -------------------------------------------------------------------------


class S3ErrorAnswer(Exception):
    """An S3 server's error answer to a chunk request sent without boto3 (s3_http.py)."""

    def __init__(self, status: int, code: str, message: str, request_id: str = "") -> None:
        super().__init__(f"{status} {code}: {message}".strip())
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id


def s3_error_code(exc: BaseException | None) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    if isinstance(exc, S3ErrorAnswer):
        return exc.code
    return ""


# HEAD requests carry no error body: a missing object or bucket is a bare 404.
NOT_FOUND_CODES = {"NoSuchKey", "InvalidRange", "NotFound", "404"}
# Refusals that another attempt may get past: the store is busy, or the bytes were damaged
# on the way (a wrong Content-MD5).
TRANSIENT_CODES = {
    "SlowDown",
    "RequestTimeout",
    "ServiceUnavailable",
    "InternalError",
    "BadDigest",
    "XAmzContentSHA256Mismatch",
}


def is_transient(status: int, code: str) -> bool:
    """Whether another attempt may get a different answer."""
    return code in TRANSIENT_CODES or status >= 500 or status in (408, 429)


def s3_error(key: str, exc: ClientError | S3ErrorAnswer) -> Exception:
    """The contract's exception for an S3 error answer (through boto3 or not)."""
    code = s3_error_code(exc)
    if isinstance(exc, S3ErrorAnswer):
        status, detail = exc.status, exc.message
    else:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        detail = exc.response.get("Error", {}).get("Message") or ""
    if code in NOT_FOUND_CODES:
        return ChunkNotFound(key)
    message = f"S3 refused {key}: {code} {detail}"
    if is_transient(status, code):
        return StorageUnavailable(message.strip())
    # AccessDenied, NoSuchBucket, InvalidAccessKeyId, SignatureDoesNotMatch…: trying again
    # cannot help.
    return StorageRejected(message.strip())


# --- any Django storage backend -----------------------------------------------------------

# By class name, so that the optional libraries need not be installed to be recognised.
NOT_FOUND_TYPES = {"FileNotFoundError", "ResourceNotFoundError", "NotFound"}
REJECTED_TYPES = {
    "PermissionError",  # the file system or SFTP server refuses
    "SuspiciousOperation",
    "AuthenticationException",  # paramiko: wrong key or password
    "BadHostKeyException",
    "ClientAuthenticationError",  # azure-core: wrong account key or SAS
    "ResourceExistsError",  # azure-core: an object that may not be overwritten
    "DefaultCredentialsError",  # google-auth: no credentials configured
    "RefreshError",  # google-auth: credentials refused
    "ImproperlyConfigured",
}


def storage_error(key: str, exc: BaseException) -> BaseException:
    """The error contract's exception for whatever a backend raised."""
    if isinstance(exc, ChunkNotFound | StorageUnavailable | StorageRejected):
        return exc
    if isinstance(exc, ClientError | S3ErrorAnswer):  # S3: the S3 store's own rules
        return s3_error(key, exc)
    if isinstance(exc, BotoCoreError):
        return StorageUnavailable(f"S3 unreachable for {key}: {exc}")
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & NOT_FOUND_TYPES or getattr(exc, "errno", None) == errno.ENOENT:
        return ChunkNotFound(key)
    status = http_status(exc)
    if status == 404:
        return ChunkNotFound(key)
    message = f"{type(exc).__name__} for {key}: {exc}"
    if names & REJECTED_TYPES or getattr(exc, "errno", None) in (errno.EACCES, errno.EPERM):
        return StorageRejected(message)
    if status is not None and 400 <= status < 500 and status not in (408, 429):
        return StorageRejected(message)
    # Connection refused, reset or timed out, an SSH channel closed, a 5xx, a 408 or 429,
    # anything unknown: the store failed for now, and trying again may succeed.
    return StorageUnavailable(message)


def http_status(exc: BaseException) -> int | None:
    """The HTTP status an SDK's error carries: azure-core's status_code, google's code."""
    for attribute in ("status_code", "code"):
        value = getattr(exc, attribute, None)
        if isinstance(value, int) and 100 <= value < 600:
            return value
    return None
