"""Who each request acts for: a user's bearer token (or API_TOKEN, with staff rights), a staff
member's admin session for reading, or — only while API_OPEN — no one.

The middleware only attaches the resolution to the request; the API's views ask for it
(labdropbox.api.callers.caller_of), so pages that need no caller pay nothing for it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest
from django.http.response import HttpResponseBase

from accounts.tokens import caller_for_token
from labdropbox.api.callers import ANONYMOUS, Caller, caller_for_user
from labdropbox.api.errors import Unauthorized
from labdropbox.api.requests import SAFE_METHODS, bearer_token


class CallerMiddleware:
    """Gives every request `resolve_caller()`: its Caller, worked out on first use, then kept."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        request.resolve_caller = functools.cache(functools.partial(resolve_caller, request))  # type: ignore[attr-defined]
        return self.get_response(request)


def resolve_caller(request: HttpRequest) -> Caller:
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
