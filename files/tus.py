"""Resumable uploads over HTTP: the tus 1.0 protocol at /uploads/ (creation) and
/uploads/{upload_id}, with its extensions creation, creation-with-upload, creation-defer-length,
expiration, checksum, termination, concatenation and concatenation-unfinished.

Views parse tus headers and call one operation each (files/operations/uploads.py, append.py).
checksum-trailer is not offered: gunicorn hands a WSGI application no request trailers (they
are reachable only through its private parser objects), and no common tus client sends them.
"""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.utils.http import http_date
from django.views.decorators.csrf import csrf_exempt

from accounts.callers import Caller
from files.errors import (
    FinalUploadImmutable,
    InvalidUploadRequest,
    MethodNotAllowed,
    ServiceError,
    TusVersionUnsupported,
    WrongContentType,
)
from files.http import api_view, body_watch, parse_count, request_body
from files.models import Upload
from files.operations.append import Checksum, append_to_upload
from files.operations.uploads import (
    create_upload,
    find_upload,
    finish_if_stored,
    terminate_upload,
)

TUS_VERSION = "1.0.0"
EXTENSIONS = (
    "creation,creation-with-upload,creation-defer-length,expiration,checksum,termination,"
    "concatenation,concatenation-unfinished"
)
CHECKSUM_ALGORITHMS = {"sha1": "sha1", "sha256": "sha256", "md5": "md5"}
OCTET_STREAM = "application/offset+octet-stream"

View = Callable[..., HttpResponseBase]


def tus_view(*methods: str) -> Callable[[View], View]:
    """A tus endpoint: X-HTTP-Method-Override honoured, then the API's rules (api_view), and
    Tus-Resumable on every answer but OPTIONS', errors included."""

    def decorate(view: View) -> View:
        endpoint = api_view(*methods)(view)

        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            override = request.headers.get("X-HTTP-Method-Override", "").strip().upper()
            if override and request.method == "POST":  # for clients that can only POST
                request.method = override
            response = endpoint(request, *args, **kwargs)
            if request.method != "OPTIONS":
                response["Tus-Resumable"] = TUS_VERSION
            return response

        return csrf_exempt(wrapper)

    return decorate


@tus_view("OPTIONS", "POST")
def uploads(request: HttpRequest, caller: Caller) -> HttpResponseBase:
    if request.method == "OPTIONS":
        return capabilities()
    require_tus_version(request)
    length = upload_length(request)
    if carries_bytes(request) and request.headers.get("Upload-Concat", "").startswith("final"):
        raise FinalUploadImmutable()
    upload = create_upload(
        length, request.headers.get("Upload-Metadata", ""), upload_concat(request, length), caller
    )
    location = request.build_absolute_uri(f"/uploads/{upload.id}")
    if carries_bytes(request) and upload.completed_at is None:
        body, body_length = request_body(request)
        try:
            upload = append_to_upload(
                str(upload.id),
                caller,
                0,
                body,
                body_length,
                checksum=upload_checksum(request),
                watch=body_watch(request),
            )
        except ServiceError as exc:  # the upload exists: the client may resume it
            exc.headers["Location"] = location
            raise
    response = HttpResponse(status=201)
    response["Location"] = location
    response["Upload-Offset"] = str(upload.offset)
    add_expiry(response, upload)
    return response


@tus_view("OPTIONS", "HEAD", "PATCH", "DELETE", "POST")
def upload(request: HttpRequest, caller: Caller, upload_id: str) -> HttpResponseBase:
    if request.method == "OPTIONS":
        return capabilities()
    require_tus_version(request)
    if request.method == "HEAD":
        return describe(finish_if_stored(find_upload(upload_id, caller)))
    if request.method == "DELETE":
        terminate_upload(upload_id, caller)
        return HttpResponse(status=204)
    if request.method == "POST":  # POST only stands in for another method (the header above)
        raise MethodNotAllowed(("OPTIONS", "HEAD", "PATCH", "DELETE"))
    return patch(request, caller, upload_id)


def patch(request: HttpRequest, caller: Caller, upload_id: str) -> HttpResponseBase:
    if request.content_type != OCTET_STREAM:
        raise WrongContentType()
    offset = header_count(request, "Upload-Offset", required=True)
    body, body_length = request_body(request)
    upload = append_to_upload(
        upload_id,
        caller,
        offset or 0,
        body,
        body_length,
        checksum=upload_checksum(request),
        declared_length=header_count(request, "Upload-Length"),
        watch=body_watch(request),
    )
    response = HttpResponse(status=204)
    response["Upload-Offset"] = str(upload.offset)
    add_expiry(response, upload)
    return response


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


# --- request headers -----------------------------------------------------------------------------


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
    length = request.META.get("CONTENT_LENGTH") or ""
    has_body = length not in ("", "0") or "HTTP_TRANSFER_ENCODING" in request.META
    return has_body and request.content_type == OCTET_STREAM


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
