"""How a file goes out over HTTP: its download headers (RFC 6266 names, the SHA-256 as ETag),
the one byte range asked for, and the answers to conditional requests."""

from __future__ import annotations

import re
from urllib.parse import quote

from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.utils.cache import get_conditional_response
from django.utils.http import http_date, parse_http_date_safe

from files.metadata import FileMeta
from files.names import ascii_fallback_name
from labdropbox.api.errors import PreconditionFailed, RangeNotSatisfiable, json_error
from labdropbox.api.requests import parse_count

SINGLE_RANGE = re.compile(r"\s*([0-9]*)\s*-\s*([0-9]*)\s*")


def content_disposition(name: str) -> str:
    """`attachment` with a safe ASCII fallback name and the exact name in RFC 5987 form."""
    exact = quote(name, safe="")
    return f"attachment; filename=\"{ascii_fallback_name(name)}\"; filename*=UTF-8''{exact}"


def file_etag(meta: FileMeta) -> str:
    return f'"{meta.sha256}"'


def download_headers(meta: FileMeta) -> dict[str, str]:
    return {
        "Content-Type": "application/octet-stream",
        "Content-Disposition": content_disposition(meta.name),
        "ETag": file_etag(meta),
        "Last-Modified": http_date(meta.modified_at.timestamp()),
        "Accept-Ranges": "bytes",
    }


def requested_range(request: HttpRequest, meta: FileMeta) -> tuple[int, int] | None:
    """The one byte range [start, stop) asked for, or None for the whole file.

    Several ranges get the whole file; a malformed Range header, or one whose If-Range no
    longer matches, is ignored (RFC 9110 §14.2, §13.1.5).
    """
    header = request.headers.get("Range", "")
    unit, _, specs = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in specs or not if_range_matches(request, meta):
        return None
    match = SINGLE_RANGE.fullmatch(specs)
    if not match or not any(match.groups()):
        return None
    first, last = (parse_count(number) if number else None for number in match.groups())
    size = meta.size
    if first is not None and last is not None and last < first:
        return None
    if first is not None:
        start, stop = first, min(last + 1, size) if last is not None else size
    else:
        start, stop = max(size - (last or 0), 0), size
    if start >= stop:
        raise RangeNotSatisfiable(size)
    return start, stop


def conditional_answer(
    request: HttpRequest, meta: FileMeta, headers: dict[str, str]
) -> HttpResponseBase | None:
    """The 304, or the 412 as JSON, that the request's If-None-Match, If-Modified-Since, If-Match
    or If-Unmodified-Since call for; None when the file is to be sent."""
    response = get_conditional_response(
        request,
        etag=headers["ETag"],
        last_modified=int(meta.modified_at.timestamp()),
        response=HttpResponse(headers=headers),
    )
    if response is None or response.status_code == 200:
        return None
    if response.status_code == 412:
        return json_error(PreconditionFailed())
    response["Content-Length"] = str(meta.size)
    return response


def if_range_matches(request: HttpRequest, meta: FileMeta) -> bool:
    """True without If-Range, or when it names this file's ETag or Last-Modified date."""
    validator = request.headers.get("If-Range")
    if validator is None:
        return True
    if validator.startswith('"'):
        return validator == file_etag(meta)
    return parse_http_date_safe(validator) == int(meta.modified_at.timestamp())
