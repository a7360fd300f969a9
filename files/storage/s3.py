"""Chunk objects in an S3 bucket (MinIO, AWS, Ceph, moto…): each chunk's GET and PUT as a bare
signed request (s3_http.py), everything else through one boto3 client."""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import urllib3.exceptions
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from files.storage import CHUNK_PREFIX, StoredObject
from files.storage.errors import S3ErrorAnswer, s3_error, s3_error_code
from files.storage.s3_http import (
    TRANSPORT_ERRORS,
    Answer,
    ChunkObjects,
    ConnectionPool,
    SigV4Signer,
)
from labdropbox.api.errors import ChunkNotFound, StorageRejected, StorageUnavailable
from metrics.registry import (
    CHUNK_BYTES_READ,
    CHUNK_BYTES_WRITTEN,
    S3_DURATION,
    S3_ERRORS,
    labelled,
)

log = logging.getLogger(__name__)
# The spans of the chunk requests, named and shaped as OpenTelemetry's botocore instrumentation
# shapes the requests that go through boto3. Like those, they are not the service's own
# operations (`labdropbox.*` tracers): alone, they do not make a trace worth recording.
tracer = trace.get_tracer(__name__)

# DeleteObjects takes at most this many keys per request.
S3_DELETE_BATCH = 1000


class S3Store:
    """Chunk objects in an S3 bucket: GET and PUT through `objects`, the rest through boto3."""

    def __init__(self, client: Any, objects: ChunkObjects, description: str) -> None:
        self.client = client
        self.objects = objects
        self.bucket = objects.bucket
        self.description = description

    def put(self, key: str, data: bytes, sha256_hex: str | None = None) -> None:
        """Store `data`; `sha256_hex`, its SHA-256 if already known, is not computed again."""
        digest = sha256_hex or hashlib.sha256(data).hexdigest()
        with _s3_errors(key, "PutObject"), self._span("PutObject") as span:
            _answered(span, self.objects.put(key, data, digest))
        CHUNK_BYTES_WRITTEN.inc(len(data))

    def get(self, key: str, start: int = 0, stop: int | None = None) -> bytes:
        with _s3_errors(key, "GetObject"), self._span("GetObject") as span:
            data = _answered(span, self.objects.get(key, start, stop)).body
        CHUNK_BYTES_READ.inc(len(data))
        return data

    @contextmanager
    def _span(self, operation: str) -> Iterator[trace.Span]:
        pool = self.objects.pool
        attributes: dict[str, str | int] = {
            "rpc.system": "aws-api",
            "rpc.service": "S3",
            "rpc.method": operation,
            "cloud.region": self.objects.signer.region,
            "server.address": pool.hostname,
            "server.port": pool.port,
        }
        with tracer.start_as_current_span(
            f"S3.{operation}",
            kind=SpanKind.CLIENT,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield span
            except BaseException as exc:
                if isinstance(exc, S3ErrorAnswer):
                    span.set_attribute("http.status_code", exc.status)
                    span.set_attribute("aws.request_id", exc.request_id)
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
                raise

    def delete_many(self, keys: Iterable[str]) -> list[str]:
        keys = list(keys)
        failed: list[str] = []
        for first in range(0, len(keys), S3_DELETE_BATCH):
            batch = keys[first : first + S3_DELETE_BATCH]
            try:
                with _s3_errors(batch[0], "DeleteObjects"):
                    response = self.client.delete_objects(
                        Bucket=self.bucket,
                        Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
                    )
            except (StorageUnavailable, StorageRejected):
                log.warning("could not delete %d chunk objects", len(batch), exc_info=True)
                failed.extend(batch)
                continue
            failed.extend(error["Key"] for error in response.get("Errors", []))
        return failed

    def list(self, prefix: str = CHUNK_PREFIX) -> Iterator[StoredObject]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        )
        with _s3_errors(prefix, "ListObjectsV2"):
            for page in pages:
                for item in page.get("Contents", []):
                    yield StoredObject(item["Key"], item["Size"], item["LastModified"])

    def ensure_bucket(self) -> bool:
        if self._bucket_exists():
            return False
        extra = {}
        if settings.MINIO_REGION != "us-east-1":
            extra["CreateBucketConfiguration"] = {"LocationConstraint": settings.MINIO_REGION}
        try:
            with _s3_errors(self.bucket, "CreateBucket"):
                self.client.create_bucket(Bucket=self.bucket, **extra)
        except StorageRejected as exc:
            if s3_error_code(exc.__cause__) == "BucketAlreadyOwnedByYou":  # a worker won the race
                return False
            raise
        return True

    def check(self) -> None:
        if not self._bucket_exists():
            raise StorageUnavailable(f"bucket {self.bucket} does not exist")

    def _bucket_exists(self) -> bool:
        try:
            with _s3_errors(self.bucket, "HeadBucket"):
                self.client.head_bucket(Bucket=self.bucket)
        except ChunkNotFound:
            return False
        return True


def _answered(span: trace.Span, answer: Answer) -> Answer:
    span.set_attribute("http.status_code", answer.status)
    span.set_attribute("aws.request_id", answer.request_id)
    span.set_attribute("retry_attempts", answer.attempts - 1)
    return answer


@contextmanager
def _s3_errors(key: str, operation: str) -> Iterator[None]:
    """One S3 request (with its retries), timed and counted; boto3/botocore/urllib3 errors
    turned into ChunkNotFound, StorageUnavailable or StorageRejected."""
    started = time.perf_counter()
    try:
        yield
    except (ClientError, S3ErrorAnswer) as exc:
        S3_ERRORS.labels(operation, (s3_error_code(exc) or "unknown")[:40]).inc()
        raise s3_error(key, exc) from exc
    except (BotoCoreError, urllib3.exceptions.HTTPError, *TRANSPORT_ERRORS) as exc:
        S3_ERRORS.labels(operation, "unreachable").inc()
        raise StorageUnavailable(f"S3 unreachable for {key}: {exc}") from exc
    finally:
        labelled(S3_DURATION, operation).observe(time.perf_counter() - started)


def s3_endpoint_url(endpoint: str, secure: bool) -> str:
    """MINIO_ENDPOINT is host:port; a full URL is accepted too."""
    if "://" in endpoint:
        return endpoint
    return f"{'https' if secure else 'http'}://{endpoint}"


def s3_store(
    endpoint: str, bucket: str, access_key: str | None = None, secret_key: str | None = None
) -> S3Store:
    """The store of `bucket` at `endpoint`, with the settings' timeouts and pool size (every
    chunk I/O thread may hold a connection at once), and their credentials unless others are
    given."""
    url = s3_endpoint_url(endpoint, settings.MINIO_SECURE)
    pool = ConnectionPool(
        url,
        settings.STORAGE_CONNECT_TIMEOUT,
        settings.STORAGE_READ_TIMEOUT,
        settings.CHUNK_IO_THREADS,
    )
    access_key = access_key or settings.MINIO_ACCESS_KEY
    secret_key = secret_key or settings.MINIO_SECRET_KEY
    signer = SigV4Signer(access_key, secret_key, settings.MINIO_REGION)
    objects = ChunkObjects(pool, signer, bucket, settings.STORAGE_MAX_ATTEMPTS)
    client = s3_client(endpoint, access_key, secret_key)
    return S3Store(client, objects, f"S3 bucket {bucket} at {url}")


def s3_client(endpoint: str, access_key: str | None = None, secret_key: str | None = None) -> Any:
    """A boto3 S3 client for `endpoint` with the settings' timeouts and pool, and their
    credentials unless others are given."""
    return _cached_client(
        s3_endpoint_url(endpoint, settings.MINIO_SECURE),
        access_key or settings.MINIO_ACCESS_KEY,
        secret_key or settings.MINIO_SECRET_KEY,
        settings.MINIO_REGION,
        settings.STORAGE_CONNECT_TIMEOUT,
        settings.STORAGE_READ_TIMEOUT,
        settings.STORAGE_MAX_ATTEMPTS,
        settings.CHUNK_IO_THREADS,
    )


@functools.lru_cache(maxsize=16)
def _cached_client(
    endpoint_url: str,
    access_key: str,
    secret_key: str,
    region: str,
    connect_timeout: float,
    read_timeout: float,
    attempts: int,
    pool_size: int,
) -> Any:
    # Building a client costs tens of milliseconds (botocore loads the S3 model): one per
    # configuration, shared by every thread of the process (boto3 clients are thread-safe).
    config = Config(
        # boto3 >= 1.36 adds CRC checksums by default; older MinIO and other S3-compatible
        # stores reject them. We check every chunk's SHA-256 ourselves.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"mode": "standard", "total_max_attempts": attempts},
        # Every chunk I/O thread of the process may hold a connection at once.
        max_pool_connections=pool_size,
        s3={"addressing_style": "path"},
    )
    with _session_lock:  # a boto3 Session may not create clients from two threads at once
        return _boto_session().client(
            "s3",
            endpoint_url=endpoint_url,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name=region,
            config=config,
        )


_session_lock = threading.Lock()


@functools.cache
def _boto_session() -> boto3.session.Session:
    return boto3.session.Session()


def _forget_clients() -> None:
    # A forked worker must not reuse the parent's clients and their pooled connections.
    _cached_client.cache_clear()
    _boto_session.cache_clear()


os.register_at_fork(after_in_child=_forget_clients)
