"""The one mapping of errors to JSON answers."""

from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest

from labdropbox.api.errors.base import ServiceError
from labdropbox.api.errors.dependencies import DatabaseUnavailable
from labdropbox.api.errors.requests import IncompleteBody
from labdropbox.api.responses import JsonAnswer

log = logging.getLogger("labdropbox.api.errors")


def as_service_error(exc: Exception) -> ServiceError | None:
    """The ServiceError that `exc` stands for, or None if it is a bug (a 500)."""
    if isinstance(exc, ServiceError):
        return exc
    # The database driver's errors reach us through Django: an unreachable or stalled server.
    if isinstance(exc, (OperationalError, InterfaceError)):
        return DatabaseUnavailable()
    return None


def json_error(error: ServiceError) -> JsonAnswer:
    return JsonAnswer(
        {"error": error.code, "detail": error.public_detail},
        status=error.status,
        reason=error.reason,
        headers=error.headers,
    )


def error_response(request: HttpRequest, exc: Exception) -> JsonAnswer | None:
    """The JSON error answer for `exc`, or None for an unexpected exception (let it raise)."""
    error = reported_error(request, exc)
    return None if error is None else json_error(error)


def reported_error(request: HttpRequest, exc: Exception) -> ServiceError | None:
    """The ServiceError `exc` stands for, explained and, if it is our fault, logged — whatever
    form the answer then takes (JSON for the API, a page for the web app); None for a bug."""
    error = as_service_error(exc)
    if error is None:
        return None
    why = getattr(request.META.get("gunicorn.socket"), "ended_early", None)
    if isinstance(error, IncompleteBody) and why:
        error.explained_by(why)
    if error.server_fault:
        log.warning("%s %s: %d %s: %s", request.method, request.path, error.status, error.code, exc)
    return error
