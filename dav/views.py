"""/dav/: one view that serves every WebDAV method on a caller's tree, each through the same
operations as the REST API — reads through FileRead (verified chunks, fetched in parallel),
writes through write_file (the chunk pipeline, quota and size limits), the tree's moves, copies
and trash — with the lock checks of class 2 made under the tree's lock."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt
from opentelemetry import trace

from dav.auth import dav_caller
from dav.locks import Change, Guard, entry_etag, forget_below, guarded
from dav.paths import href, names_of
from dav.property_views import lock, propfind, proppatch, unlock
from dav.transfers import copy_or_move, existing_folder
from files import spans
from files.models import Entry
from files.names import join_path
from files.operations.read import FileRead
from files.operations.write import write_file
from files.spans import tracer as files_tracer
from files.tree.roots import child, locked_tree, new_entry, resolve, tree_of
from files.tree.trash import trash_locked
from files.views.answers import conditions, folder_json
from files.views.content import send_file
from labdropbox.api.bodies import request_body, request_has_body
from labdropbox.api.callers import Caller
from labdropbox.api.errors import (
    BadRequest,
    BodyNotUnderstood,
    Forbidden,
    MethodNotAllowed,
    error_response,
)
from labdropbox.api.responses import JsonAnswer
from labdropbox.api.views import refuse_cross_origin_writes
from labdropbox.tracing import acting_for

tracer = trace.get_tracer("labdropbox.dav")
Handler = Callable[[HttpRequest, Caller, list[str]], HttpResponseBase]
METHODS = (
    "OPTIONS", "GET", "HEAD", "PUT", "DELETE", "MKCOL", "COPY", "MOVE",
    "PROPFIND", "PROPPATCH", "LOCK", "UNLOCK",
)  # fmt: skip


@csrf_exempt
def dav(request: HttpRequest, path: str = "") -> HttpResponseBase:
    """Every method of /dav/<path>: the caller's tree (Basic or Bearer), errors as JSON with
    WebDAV's statuses."""
    try:
        if request.method == "OPTIONS":
            return options()
        caller = dav_caller(request)
        refuse_cross_origin_writes(request)
        handler = HANDLERS.get(request.method or "")
        if handler is None:
            raise MethodNotAllowed(METHODS)
        if "#" in request.META.get("RAW_URI", ""):
            # A fragment names part of a resource; acting on the whole would be a surprise.
            raise BadRequest("a request's URL has no #fragment (send # in a name as %23)")
        names = names_of(path)
        with (
            tracer.start_as_current_span(f"dav.{request.method}") as span,
            acting_for(caller.enduser),
        ):
            span.set_attribute("dav.path", join_path(names))
            return handler(request, caller, names)
    except Exception as exc:
        response = error_response(request, exc)
        if response is None:
            raise
        return response


def options() -> HttpResponse:
    return HttpResponse(
        headers={
            "DAV": "1, 2",
            "Allow": ", ".join(METHODS),
            "MS-Author-Via": "DAV",  # Office and Explorer look for it
            "Content-Length": "0",
        }
    )


def get(request: HttpRequest, caller: Caller, names: list[str]) -> HttpResponseBase:
    entry = resolve(tree_of(caller), names)
    if entry.kind == Entry.Kind.FOLDER:
        if request.method == "HEAD":
            return HttpResponse(content_type="application/json")
        return JsonAnswer(folder_json(entry, join_path(names)))
    with FileRead(str(entry.id), caller) as file_read:
        return send_file(request, file_read)


def put(request: HttpRequest, caller: Caller, names: list[str]) -> HttpResponseBase:
    """The body streamed into the chunk pipeline: a new file (201) or a new version (204)."""
    if not names:
        raise MethodNotAllowed(("PROPFIND", "MKCOL"))
    if "Content-Range" in request.headers:
        # A PUT of part of a file (RFC 9110 §14.5): taken for the whole, it would store a fragment.
        raise BadRequest("a PUT replaces the whole file: send it without Content-Range")
    root = tree_of(caller)
    there = child(existing_folder(root, names[:-1]), names[-1])
    if there is not None and there.kind == Entry.Kind.FOLDER:
        raise MethodNotAllowed(("PROPFIND", "DELETE", "MOVE", "COPY", "LOCK"))
    guard = Guard.of(request, root)
    body, length = request_body(request)
    placed = write_file(names, body, length, caller, guarded(conditions(request), guard, names))
    response = HttpResponse(status=201 if placed.created else 204)
    response["ETag"] = entry_etag(placed.file) or ""
    if placed.created:
        response["Location"] = href(names, folder=False)
    return response


def delete(request: HttpRequest, caller: Caller, names: list[str]) -> HttpResponseBase:
    """To the trash, with everything in it (as DELETE /files/{id}): it can be restored."""
    if not names:
        raise Forbidden("the root folder cannot be deleted")
    if request.headers.get("Depth", "infinity").lower() != "infinity":
        raise BadRequest("DELETE takes Depth: infinity, or none")
    root = tree_of(caller)
    with files_tracer.start_as_current_span(spans.TRASH) as span:
        with locked_tree(root):
            entry = resolve(root, names)
            span.set_attribute("entry.id", str(entry.id))
            Guard.of(request, root).check(names, [Change(names, members=True, membership=True)])
            trashed = trash_locked(entry, caller.user_id)
            forget_below(root, names)
        trashed.announce()
    return HttpResponse(status=204)


def mkcol(request: HttpRequest, caller: Caller, names: list[str]) -> HttpResponseBase:
    if request_has_body(request):
        raise BodyNotUnderstood("MKCOL takes no body")
    if not names:
        raise MethodNotAllowed(("PROPFIND",))
    root = tree_of(caller)
    with files_tracer.start_as_current_span(spans.CREATE_FOLDER) as span, locked_tree(root):
        span.set_attribute("folder.path", join_path(names))
        parent = existing_folder(root, names[:-1])
        if child(parent, names[-1]) is not None:
            raise MethodNotAllowed(("PROPFIND", "DELETE", "MOVE", "COPY"))
        Guard.of(request, root).check(names, [Change(names, membership=True)])
        folder = new_entry(parent, names[-1], Entry.Kind.FOLDER)
        span.set_attribute("folder.id", str(folder.id))
    response = HttpResponse(status=201)
    response["Location"] = href(names, folder=True)
    return response


HANDLERS: dict[str, Handler] = {
    "GET": get,
    "HEAD": get,
    "PUT": put,
    "DELETE": delete,
    "MKCOL": mkcol,
    "COPY": copy_or_move,
    "MOVE": copy_or_move,
    "PROPFIND": propfind,
    "PROPPATCH": proppatch,
    "LOCK": lock,
    "UNLOCK": unlock,
}
