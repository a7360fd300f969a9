"""Who each request acts for: a user's bearer token (or API_TOKEN, with staff rights), a signed-in
user's session (the web app's, or the admin's) — writing only with its CSRF token — or, only
while API_OPEN, no one.

The middleware only attaches the resolution to the request; the API's views ask for it
(labdropbox.api.callers.caller_of), so pages that need no caller pay nothing for it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.middleware.csrf import CsrfViewMiddleware

from accounts.tokens import caller_for_token
from labdropbox.api.callers import ANONYMOUS, Caller, caller_for_user
from labdropbox.api.errors import CsrfFailed, Unauthorized
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
    member = session_caller(request)
    if member is not None:
        return member
    if settings.CSRF_HEADER_NAME in request.META:
        # A page's script whose session has ended (signed out in another tab, expired): never
        # the open API's no one, which would put its upload in the shared tree.
        raise Unauthorized("the session has ended: sign in again")
    if settings.API_OPEN:
        return ANONYMOUS
    raise Unauthorized()


def session_caller(request: HttpRequest) -> Caller | None:
    """A user signed in to the web app or the admin, with the same rights as their token. The
    API takes no CSRF token from programs, so a session's write must bring one (the web app's
    fetches send it as X-CSRFToken): without it, another site's page could write as the user."""
    user = getattr(request, "user", None)
    if not (user and user.is_authenticated and user.is_active):
        return None
    if request.method not in SAFE_METHODS and not csrf_token_matches(request):
        raise CsrfFailed()
    return caller_for_user(user)


def csrf_token_matches(request: HttpRequest) -> bool:
    """The request's X-CSRFToken is its session's, by Django's own check. Only the header counts:
    the check would look for a form field first, and read a form-encoded body to find it, which
    is the upload the view has yet to stream — so a form-encoded body is refused outright."""
    if settings.CSRF_HEADER_NAME not in request.META or request.content_type in FORM_TYPES:
        return False
    return CSRF_CHECK.process_view(request, csrf_checked, (), {}) is None


def csrf_checked(request: HttpRequest) -> HttpResponseBase:
    """What Django's CSRF check is asked about: a view that is not exempt (the API's are)."""
    raise NotImplementedError("never called: only its CSRF exemption is looked at")


CSRF_CHECK = CsrfViewMiddleware(csrf_checked)
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
