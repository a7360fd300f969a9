"""The `api_view` decorator that every endpoint of every app is made with."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from labdropbox.api.callers import caller_of
from labdropbox.api.errors import (
    BadRequest,
    CrossOriginRefused,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    ServiceError,
    error_response,
    json_error,
)
from labdropbox.api.requests import SAFE_METHODS
from labdropbox.tracing import acting_for

View = Callable[..., HttpResponseBase]


def api_view(*methods: str, public: bool = False) -> Callable[[View], View]:
    """An API endpoint: the view is called with the request's Caller after the request, its
    URL arguments (401 without valid credentials while the API is closed), unless `public`:
    then it gets no caller. Writes from other origins' pages refused, 405 for other methods,
    our exceptions as JSON errors, and no CSRF token (the API is for programs, not forms)."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            try:
                caller = None if public else caller_of(request)
                refuse_cross_origin_writes(request)
                if request.method not in methods:
                    raise MethodNotAllowed(methods)
                if caller is None:
                    return view(request, *args, **kwargs)
                with acting_for(caller.enduser):
                    return view(request, caller, *args, **kwargs)
            except Exception as exc:
                response = error_response(request, exc)
                if response is None:
                    raise
                return response

        return csrf_exempt(wrapper)

    return decorate


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


# --- Django's error views: JSON, like every answer of the API -----------------------------------


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return json_error(NotFound(f"nothing at {request.path}"))


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if isinstance(exception, DisallowedHost):
        return json_error(BadRequest("this service does not answer to that Host header"))
    return json_error(BadRequest())


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return json_error(Forbidden())


def server_error(request: HttpRequest) -> HttpResponse:
    return json_error(ServiceError())
