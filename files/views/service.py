"""The service itself: who is calling and what they store (/me), health, the OpenAPI document."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from files import health
from files.quotas import stored_split, usage_of
from labdropbox.api.callers import Caller, is_authenticated
from labdropbox.api.responses import JsonAnswer
from labdropbox.api.views import api_view

OPENAPI_DOCUMENT = Path(__file__).resolve().parent.parent / "openapi.json"


@api_view("GET")
def me(request: HttpRequest, caller: Caller) -> HttpResponse:
    """Who the token belongs to, and their storage: used (stored + held by uploads in progress)
    against their quota (null: unlimited); what is stored split into current versions, what
    only earlier versions keep, and what only the trash keeps."""
    usage = usage_of(caller.user_id)
    split = stored_split(caller.user_id)
    return JsonAnswer(
        {
            "username": caller.username or None,
            "is_staff": caller.is_staff,
            "used_bytes": usage.used,
            "stored_bytes": usage.stored,
            "current_bytes": split.current,
            "versions_bytes": split.versions,
            "trash_bytes": split.trash,
            "reserved_bytes": usage.reserved,
            "quota_bytes": usage.limit,
        }
    )


@api_view("GET", "HEAD", public=True)
def health_live(request: HttpRequest) -> HttpResponse:
    """Liveness: answers without touching any dependency."""
    return HttpResponse("OK", content_type="text/plain")


@api_view("GET", "HEAD", public=True)
def health_ready(request: HttpRequest) -> HttpResponse:
    """Readiness: the database, the cache and object storage each answer. Why one does not
    (hosts, paths, exception text) is shown only to a request with credentials."""
    checks = health.run_checks()
    ready = all(check["ok"] for check in checks.values())
    if not (is_authenticated(request) or settings.DEBUG):
        checks = {name: {"ok": check["ok"]} for name, check in checks.items()}
    return JsonAnswer(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status=200 if ready else 503,
    )


@functools.cache
def openapi_document() -> dict[str, Any]:
    return json.loads(OPENAPI_DOCUMENT.read_text())


@api_view("GET")
def openapi(request: HttpRequest, caller: Caller) -> HttpResponse:
    return JsonAnswer(openapi_document())
