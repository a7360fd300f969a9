"""The service's own failures: its dependencies (object storage, the database) and its limits."""

from __future__ import annotations

from labdropbox.api.errors.base import ServiceError


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


class WriteAbandoned(ServiceError):
    """A write's record (its blob) was collected before its commit: the write had stopped
    renewing it (a stalled worker), and `cleanup` took it for dead. Nothing of it is kept."""

    status, code = 503, "write_abandoned"
    default_detail = "this upload stalled and was cleaned up before it finished; send it again"


class DatabaseUnavailable(ServiceError):
    status, code = 503, "database_unavailable"
    default_detail = "the database is unavailable; try again"
