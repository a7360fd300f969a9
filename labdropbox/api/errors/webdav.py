"""WebDAV's own failures (RFC 4918), in the same shape as every other error."""

from __future__ import annotations

from labdropbox.api.errors.base import ClientError


class Locked(ClientError):
    status, code = 423, "locked"
    default_detail = "a lock holds this path: send its token in an If header"


class MissingParent(ClientError):
    """WebDAV makes no folder on the way: PUT, MKCOL, COPY and MOVE into a folder that is not
    there are a conflict."""

    status, code = 409, "missing_parent"
    default_detail = "the folder this would go in does not exist"


class BodyNotUnderstood(ClientError):
    status, code = 415, "unsupported_media_type"
    default_detail = "this method takes no body of this kind"


class InfiniteDepthRefused(ClientError):
    status, code = 403, "propfind_finite_depth"
    default_detail = "PROPFIND with Depth: infinity is refused; walk the tree with Depth: 1"


class TooManyAttempts(ClientError):
    status, code, reason = 429, "too_many_attempts", "Too Many Requests"
    default_detail = "too many failed logins from this address; wait and try again"


class DestinationElsewhere(ClientError):
    status, code = 502, "destination_elsewhere"
    default_detail = "the Destination is not on this server's /dav/"


class LockTokenMismatch(ClientError):
    status, code = 409, "lock_token_mismatch"
    default_detail = "no lock of this path has that token"


class TooManyLocks(ClientError):
    status, code, reason = 429, "too_many_locks", "Too Many Requests"
    default_detail = "this tree has as many live locks as it may hold; release some"
