"""A file's share links: made, listed in pages, revoked."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from files.operations.links import create_link, file_links, revoke_link
from files.views.answers import link_json, page_bounds, paged
from labdropbox.api.bodies import json_count, json_object
from labdropbox.api.callers import Caller
from labdropbox.api.responses import JsonAnswer
from labdropbox.api.views import api_view

MAX_LINK_SECONDS = 10**10  # some 300 years: "any length", within what dates can hold
MAX_LINK_DOWNLOADS = 10**9


@api_view("GET", "POST")
def links(request: HttpRequest, caller: Caller, file_id: str) -> HttpResponse:
    """A file's share links: POST makes one, GET lists them (newest first, in pages)."""
    if request.method == "GET":
        limit, offset = page_bounds(request)
        page = list(file_links(file_id, caller)[offset : offset + limit + 1])
        shown = [link_json(request, link) for link in page[:limit]]
        return JsonAnswer({"links": shown, **paged(page, limit, offset)})
    expires_in, max_downloads = link_options(request)
    link, token = create_link(file_id, caller, expires_in, max_downloads)
    answer = link_json(request, link, token)
    return JsonAnswer(answer, status=201, headers={"Location": answer["url"]})


def link_options(request: HttpRequest) -> tuple[int | None, int | None]:
    """A new share link's `expires_in_seconds` and `max_downloads` (each absent or null: none)."""
    options = json_object(request, fields=("expires_in_seconds", "max_downloads"))
    return (
        json_count(options, "expires_in_seconds", MAX_LINK_SECONDS),
        json_count(options, "max_downloads", MAX_LINK_DOWNLOADS),
    )


@api_view("DELETE")
def link_detail(request: HttpRequest, caller: Caller, file_id: str, link_id: str) -> HttpResponse:
    revoke_link(file_id, link_id, caller)
    return HttpResponse(status=204)
