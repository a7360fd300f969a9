"""The tus protocol's headers: parsed from requests into plain values, and written onto answers."""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.http import http_date

from files.models import Upload
from labdropbox.api.bodies import request_has_body
from labdropbox.api.errors import InvalidUploadRequest, TusVersionUnsupported
from labdropbox.api.requests import parse_count

TUS_VERSION = "1.0.0"
EXTENSIONS = (
    "creation,creation-with-upload,creation-defer-length,expiration,checksum,termination,"
    "concatenation,concatenation-unfinished"
)
CHECKSUM_ALGORITHMS = {"sha1": "sha1", "sha256": "sha256", "md5": "md5"}
OCTET_STREAM = "application/offset+octet-stream"


@dataclass(frozen=True)
class Checksum:
    """Upload-Checksum: the algorithm (hashlib's name) and the digest the body must have."""

    algorithm: str
    digest: bytes


# --- requests -----------------------------------------------------------------------------


def require_tus_version(request: HttpRequest) -> None:
    if request.headers.get("Tus-Resumable") != TUS_VERSION:
        raise TusVersionUnsupported(headers={"Tus-Version": TUS_VERSION})


def header_count(request: HttpRequest, name: str, required: bool = False) -> int | None:
    raw = request.headers.get(name)
    if raw is None:
        if required:
            raise InvalidUploadRequest(f"{name} is required")
        return None
    value = parse_count(raw.strip())
    if value is None:
        raise InvalidUploadRequest(f"{name} {raw[:40]!r} is not a byte count")
    return value


def upload_length(request: HttpRequest) -> int | None:
    """Upload-Length, or None with Upload-Defer-Length: 1 (or for a final upload)."""
    length = header_count(request, "Upload-Length")
    deferred = request.headers.get("Upload-Defer-Length")
    if deferred is not None and (deferred.strip() != "1" or length is not None):
        raise InvalidUploadRequest("Upload-Defer-Length is 1, and only without Upload-Length")
    final = request.headers.get("Upload-Concat", "").startswith("final")
    if length is None and deferred is None and not final:
        raise InvalidUploadRequest("send Upload-Length, or Upload-Defer-Length: 1")
    return length


def upload_concat(request: HttpRequest, length: int | None) -> str:
    concat = request.headers.get("Upload-Concat", "").strip()
    if concat.startswith("final") and length is not None:
        raise InvalidUploadRequest("a final upload's length is its parts': send no Upload-Length")
    if concat not in ("", "partial") and not concat.startswith("final;"):
        raise InvalidUploadRequest("Upload-Concat is `partial`, or `final;` and the parts' URLs")
    return concat


def carries_bytes(request: HttpRequest) -> bool:
    """creation-with-upload: the creation request's body is the upload's first bytes."""
    return request_has_body(request) and request.content_type == OCTET_STREAM


def upload_checksum(request: HttpRequest) -> Checksum | None:
    """Upload-Checksum: `<algorithm> <base64 digest>`."""
    header = request.headers.get("Upload-Checksum")
    if header is None:
        return None
    algorithm, _, encoded = header.strip().partition(" ")
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise InvalidUploadRequest(
            f"checksum algorithm {algorithm[:20]!r}: use {', '.join(CHECKSUM_ALGORITHMS)}"
        )
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error:
        raise InvalidUploadRequest("Upload-Checksum's digest is not base64") from None
    return Checksum(CHECKSUM_ALGORITHMS[algorithm], digest)


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


def parse_concat_parts(concat: str) -> list[uuid.UUID]:
    """The part ids of `final;<url> <url>…` (absolute or relative URLs ending in the id)."""
    urls = concat.partition(";")[2].split()
    if concat.partition(";")[0] != "final" or not urls:
        raise InvalidUploadRequest("Upload-Concat is `partial`, or `final;` and the parts' URLs")
    try:
        return [uuid.UUID(url.rstrip("/").rsplit("/", 1)[-1]) for url in urls]
    except ValueError:
        raise InvalidUploadRequest("Upload-Concat names a part that is not an upload URL") from None


# --- answers -------------------------------------------------------------------------------------


def capabilities() -> HttpResponse:
    response = HttpResponse(status=204)
    response["Tus-Version"] = TUS_VERSION
    response["Tus-Extension"] = EXTENSIONS
    response["Tus-Max-Size"] = str(settings.MAX_UPLOAD_BYTES)
    response["Tus-Checksum-Algorithm"] = ",".join(CHECKSUM_ALGORITHMS)
    return response


def describe(upload: Upload) -> HttpResponse:
    """HEAD: where the upload stands, never cached."""
    response = HttpResponse(status=200)
    response["Cache-Control"] = "no-store"
    if not upload.is_final or upload.completed_at is not None:
        response["Upload-Offset"] = str(upload.offset)
    if upload.length is not None:
        response["Upload-Length"] = str(upload.length)
    elif not upload.is_final:
        response["Upload-Defer-Length"] = "1"
    if upload.metadata:
        response["Upload-Metadata"] = upload.metadata
    if upload.concat:
        response["Upload-Concat"] = upload.concat
    add_expiry(response, upload)
    return response


def add_expiry(response: HttpResponse, upload: Upload) -> None:
    if upload.completed_at is None:
        response["Upload-Expires"] = http_date(upload.expires_at.timestamp())
