"""Folders: made at a path (with the missing ones above), shown, moved, trashed with everything
in them."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from files.models import Entry
from files.names import parse_place
from files.tree.moves import create_folder, move
from files.tree.roots import path_of, tree_of, visible
from files.tree.trash import trash
from files.views.answers import folder_json, target_path
from labdropbox.api.callers import Caller
from labdropbox.api.errors import Forbidden
from labdropbox.api.responses import JsonAnswer
from labdropbox.api.views import api_view


@api_view("POST")
def folders(request: HttpRequest, caller: Caller) -> HttpResponse:
    """A new folder: `{"path": "/a/new"}` → 201 with its `folder_id`."""
    names = parse_place(target_path(request))
    folder = create_folder(tree_of(caller), names)
    answer = JsonAnswer(folder_json(folder, "/" + "/".join(names)), status=201)
    answer["Location"] = f"/folders/{folder.id}"
    return answer


@api_view("GET", "DELETE")
def folder_detail(request: HttpRequest, caller: Caller, folder_id: str) -> HttpResponse:
    """GET: the folder; DELETE: to the trash, with everything in it."""
    folder = visible(folder_id, caller, Entry.Kind.FOLDER)
    if request.method == "GET":
        return JsonAnswer(folder_json(folder))
    refuse_the_root(folder)
    trash(folder, caller)
    return HttpResponse(status=204)


@api_view("POST")
def folder_move(request: HttpRequest, caller: Caller, folder_id: str) -> HttpResponse:
    """Move or rename a folder: `{"path": "/new/place"}`; one row changes, whatever it holds."""
    folder = visible(folder_id, caller, Entry.Kind.FOLDER)
    refuse_the_root(folder)
    names = parse_place(target_path(request))
    moved = move(folder, names)
    return JsonAnswer(folder_json(moved, path_of(moved)))


def refuse_the_root(folder: Entry) -> None:
    if folder.root_key is not None:
        raise Forbidden("the root folder cannot be moved or trashed")
