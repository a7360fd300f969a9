"""Who a request acts for, as the operations see it: a Caller, resolved once per request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest

from labdropbox.api.errors import Unauthorized


@dataclass(frozen=True)
class Caller:
    """A user (`user_id`), or no one: the open API's anonymous caller, or API_TOKEN's holder
    (staff without a user). Staff see every file; anyone else sees their own: files without an
    owner (stored before users existed, or through the open API) are the anonymous caller's."""

    user_id: int | None
    username: str
    is_staff: bool

    def may_access(self, owner_id: int | None) -> bool:
        return self.is_staff or owner_id == self.user_id

    @property
    def enduser(self) -> str:
        """The `enduser.id` of its spans."""
        return self.username or ("api-token" if self.is_staff else "anonymous")


ANONYMOUS = Caller(None, "", False)
# API_TOKEN's holder, and work the service does for itself (the admin's deletes, commands).
SERVICE = Caller(None, "", True)


def caller_for_user(user: Any) -> Caller:
    """A logged-in Django user (the admin's) as a caller."""
    return Caller(user.pk, user.get_username(), user.is_staff)


def caller_of(request: HttpRequest) -> Caller:
    """Who the request acts for, or Unauthorized. Resolved once per request by the middleware
    that knows the credentials (accounts.middleware.CallerMiddleware: tokens, sessions,
    API_OPEN), as Django's AuthenticationMiddleware gives each request its `user`: this layer
    knows no app."""
    resolve = getattr(request, "resolve_caller", None)
    if resolve is None:
        raise ImproperlyConfigured("MIDDLEWARE must list accounts.middleware.CallerMiddleware")
    caller: Caller = resolve()
    return caller


def is_authenticated(request: HttpRequest) -> bool:
    """The request proves who sent it (not merely that the API happens to be open)."""
    try:
        return caller_of(request) is not ANONYMOUS
    except Unauthorized:
        return False
