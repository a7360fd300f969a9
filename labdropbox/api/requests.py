"""Request parsing that every app's views share: numbers in headers and queries, credentials."""

from __future__ import annotations

import re

from django.http import HttpRequest

from labdropbox.api.errors import InvalidParameter, Unauthorized

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
ASCII_DIGITS = re.compile(r"[0-9]+")
HUGE = 10**18


def parse_count(raw: str) -> int | None:
    """A count of bytes or items written in ASCII digits, or None if `raw` is not one.

    Only 0-9 count as digits (str.isdigit() also takes "²" and other digits that int() then
    refuses), and a number too long to mean anything is capped rather than parsed: int() itself
    refuses strings of over 4,300 digits, and no file or page is anywhere near 10^18.
    """
    if not ASCII_DIGITS.fullmatch(raw):
        return None
    return int(raw) if len(raw) < len(str(HUGE)) else HUGE


def query_int(request: HttpRequest, name: str, default: int, minimum: int, maximum: int) -> int:
    raw = request.GET.get(name, "")
    if not raw:
        return default
    value = parse_count(raw)
    if value is None or not minimum <= value <= maximum:
        raise InvalidParameter(f"{name} must be an integer from {minimum} to {maximum}")
    return value


def bearer_token(header: str) -> str | None:
    """The token of `Authorization: Bearer <token>`; None without the header; Unauthorized for
    any other shape."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token or len(token) > 200:
        raise Unauthorized("the Authorization header is malformed: send Bearer <token>")
    return token
