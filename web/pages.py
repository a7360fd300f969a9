"""How every page of the web app is served: for a signed-in member only (anyone else is sent to
the sign-in page), acting for them with the same rights as their API token, with the service's
errors shown as a page, and with the Content-Security-Policy."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.shortcuts import render

from files.quotas import usage_of
from labdropbox.api.callers import Caller, caller_for_user
from labdropbox.api.errors import reported_error
from labdropbox.pages import secured
from labdropbox.tracing import acting_for

Page = Callable[..., HttpResponseBase]


def member_page(view: Page) -> Page:
    """A page of the member's own files: the view is called with their Caller."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        caller = caller_for_user(request.user)
        try:
            with acting_for(caller.enduser):
                response = view(request, caller, *args, **kwargs)
        except Exception as exc:
            error = reported_error(request, exc)
            if error is None:
                raise
            response = render(request, "web/error.html", {"error": error}, status=error.status)
        return secured(response)

    return login_required(wrapper)


def secured_view(view: Page) -> Page:
    """A page anyone may open (signing in), with the Content-Security-Policy."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        return secured(view(request, *args, **kwargs))

    return wrapper


def storage_of(caller: Caller) -> dict[str, Any]:
    """The quota bar's figures, as GET /me gives them."""
    usage = usage_of(caller.user_id)
    return {"used": usage.used, "limit": usage.limit}
