"""Resumable uploads over HTTP: the tus 1.0 protocol at /uploads/ (creation) and
/uploads/{upload_id}, with its extensions creation, creation-with-upload, creation-defer-length,
expiration, checksum, termination, concatenation and concatenation-unfinished.

Each view reads its tus headers (files/uploads/headers.py) and calls one operation.
checksum-trailer is not offered: gunicorn hands a WSGI application no request trailers (they
are reachable only through its private parser objects), and no common tus client sends them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from files.uploads.append import append_to_upload
from files.uploads.headers import (
    OCTET_STREAM,
    TUS_VERSION,
    add_expiry,
    capabilities,
    carries_bytes,
    describe,
    header_count,
    require_tus_version,
    upload_checksum,
    upload_concat,
    upload_length,
)
from files.uploads.lifecycle import create_upload, find_upload, finish_if_stored, terminate_upload
from labdropbox.api.bodies import body_watch, request_body
from labdropbox.api.callers import Caller
from labdropbox.api.errors import (
    FinalUploadImmutable,
    MethodNotAllowed,
    ServiceError,
    WrongContentType,
)
from labdropbox.api.views import api_view

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
