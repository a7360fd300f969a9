"""Who a WebDAV request acts for. WebDAV clients (Finder, Explorer, davfs2, rclone) send HTTP
Basic: the user name, and an API token as the password; programs may send a Bearer token as the
API takes it. A request without credentials is asked for them (401 with a Basic challenge, so
clients prompt), unless the API is open. Failed logins from one address are counted, as the
admin's are: past ADMIN_LOGIN_FAILURE_LIMIT of them it is refused for the cool-off time."""

from __future__ import annotations

import base64
import binascii

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

from accounts.tokens import caller_for_token
from labdropbox.api.callers import ANONYMOUS, SERVICE, Caller
from labdropbox.api.errors import TooManyAttempts, Unauthorized
from labdropbox.api.requests import bearer_token
from labdropbox.proxies import client_address

REALM = 'Basic realm="LabDropbox WebDAV", charset="UTF-8"'


def challenge(detail: str) -> Unauthorized:
    error = Unauthorized(detail)
    error.headers["WWW-Authenticate"] = REALM
    return error


def dav_caller(request: HttpRequest) -> Caller:
    """The request's caller, or Unauthorized (with a Basic challenge) or TooManyAttempts."""
    header = request.headers.get("Authorization", "")
    if not header:
        if settings.API_OPEN:
            return ANONYMOUS
        raise challenge("log in with your user name and an API token as the password")
    address = client_address(request)
    key = f"dav-login-failures:{address}"
    cooloff = int(settings.AXES_COOLOFF_TIME.total_seconds())
    failures = cache.get(key) or 0
    if failures >= settings.AXES_FAILURE_LIMIT:
        raise TooManyAttempts(headers={"Retry-After": str(cooloff)})
    try:
        caller = checked_caller(header)
    except Unauthorized as failed:
        if cache.add(key, 1, cooloff) is False:
            try:
                cache.incr(key)
            except ValueError:  # expired in between
                cache.add(key, 1, cooloff)
        raise challenge(failed.detail) from None
    if failures:  # a success starts the count again, as the admin's login does
        cache.delete(key)
    return caller


def checked_caller(header: str) -> Caller:
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() == "bearer":
        return caller_for_token(bearer_token(header) or "")
    if scheme.lower() != "basic":
        raise Unauthorized("send HTTP Basic (user name, API token) or a Bearer token")
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized("the Basic credentials are not base64 of user:token") from None
    username, colon, password = decoded.partition(":")
    if not colon or not password:
        raise Unauthorized("the password is an API token (manage.py create_token)")
    caller = caller_for_token(password)
    # API_TOKEN's holder may give any name; a user's token is good only with that user's name.
    if caller is not SERVICE and caller.username.casefold() != username.casefold():
        raise Unauthorized("that token is not this user's")
    return caller
