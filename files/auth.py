"""Who may call the API: the bearer token, a staff member's admin session for reading, and which
web pages' scripts may write."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest

from files.errors import CrossOriginRefused

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def has_api_token(request: HttpRequest) -> bool:
    """The request carries API_TOKEN as its bearer token (compared in constant time)."""
    if not settings.API_TOKEN:
        return False
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        token.strip().encode(), settings.API_TOKEN.encode()
    )


def has_staff_session(request: HttpRequest) -> bool:
    """A staff member logged into the admin, reading: the admin's download links use this.
    Only for reading, because the API is exempt from CSRF checks."""
    user = getattr(request, "user", None)
    return request.method in SAFE_METHODS and bool(user and user.is_active and user.is_staff)


def is_authenticated(request: HttpRequest) -> bool:
    """The request proves who sent it (not merely that the API happens to be open)."""
    return has_api_token(request) or has_staff_session(request)


def may_use_api(request: HttpRequest) -> bool:
    return not settings.API_TOKEN or is_authenticated(request)


def refuse_cross_origin_writes(request: HttpRequest) -> None:
    """A browser sends any page's form or script request to us with the user's network access;
    a write from a page on another origin is refused unless CORS_ALLOWED_ORIGINS lists it.
    Programs (curl, SDKs) send no Origin header and are not affected."""
    origin = request.headers.get("Origin")
    if origin is None or request.method in SAFE_METHODS:
        return
    own_origin = f"{request.scheme}://{request.get_host()}"
    if origin != own_origin and origin not in settings.CORS_ALLOWED_ORIGINS:
        raise CrossOriginRefused(f"requests from {origin[:100]} may not write here")
