"""Who may call the API, and who a request acts for: a user's bearer token (or API_TOKEN, with
staff rights), a staff member's admin session for reading, or — only while API_OPEN — no one.
Also which web pages' scripts may write."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from accounts.callers import ANONYMOUS, Caller, caller_for_user
from accounts.tokens import bearer_token, caller_for_token
from files.errors import CrossOriginRefused, Unauthorized

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def caller_of(request: HttpRequest) -> Caller:
    """Who the request acts for, or Unauthorized. A token that is sent must be valid, even
    where the API is open: a client with a broken token learns it at once."""
    token = bearer_token(request.headers.get("Authorization", ""))
    if token is not None:
        return caller_for_token(token)
    staff = staff_session(request)
    if staff is not None:
        return staff
    if settings.API_OPEN:
        return ANONYMOUS
    raise Unauthorized()


def staff_session(request: HttpRequest) -> Caller | None:
    """A staff member logged into the admin, reading: the admin's download links use this.
    Only for reading, because the API is exempt from CSRF checks."""
    user = getattr(request, "user", None)
    if request.method in SAFE_METHODS and user and user.is_active and user.is_staff:
        return caller_for_user(user)
    return None


def is_authenticated(request: HttpRequest) -> bool:
    """The request proves who sent it (not merely that the API happens to be open)."""
    try:
        return caller_of(request) is not ANONYMOUS
    except Unauthorized:
        return False


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
