"""COPY and MOVE (RFC 4918 §9.8, §9.9) through the tree's own copy and move: no chunk is copied,
and whatever Overwrite replaces goes to the trash, from where it can be restored."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from dav.locks import Change, Guard, forget_below
from dav.paths import destination, href, key_of
from dav.properties import copy_properties
from files.models import Entry
from files.names import join_path
from files.tree.moves import copy, is_inside, move
from files.tree.roots import at_path, child, locked_tree, new_entry, resolve, tree_of
from files.tree.trash import trash_locked
from labdropbox.api.callers import Caller
from labdropbox.api.errors import (
    BadRequest,
    EntryNotFound,
    Forbidden,
    IntoItself,
    MissingParent,
    NotAFolder,
    PreconditionFailed,
)


def copy_or_move(request: HttpRequest, caller: Caller, names: list[str]) -> HttpResponse:
    """201 if the destination was free, 204 if what was there was replaced (Overwrite: T, the
    default); 412 if it was taken and Overwrite is F; 409 if its folder is not there."""
    moving = request.method == "MOVE"
    target = destination(request)
    overwrite = request.headers.get("Overwrite", "T").strip().upper() != "F"
    depth = request.headers.get("Depth", "infinity").strip().lower()
    if depth not in ("0", "infinity") or (moving and depth != "infinity"):
        raise BadRequest("MOVE takes Depth: infinity; COPY 0 or infinity")
    if not names or not target:
        raise Forbidden("the root folder cannot be copied, moved or replaced")
    renaming = key_of(names) == key_of(target)  # the same name in another case or form
    if renaming and (not moving or names == target):
        raise Forbidden("the source and the destination are the same")
    root = tree_of(caller)
    source = resolve(root, names)
    replaced = None
    with locked_tree(root):
        parent = existing_folder(root, target[:-1])
        existing = None if renaming else child(parent, target[-1])
        if existing is not None and not overwrite:
            raise PreconditionFailed(f"{href(target, False)} exists and Overwrite is F")
        changes = [Change(target, members=True, membership=True)]
        if moving:
            changes.append(Change(names, members=True, membership=True))
        Guard.of(request, root).check(names, changes)
        if moving:
            move(source, target, replace=overwrite)
            forget_below(root, names)
        elif source.kind == Entry.Kind.FOLDER and depth == "0":
            if existing is not None and is_inside(source, existing):
                raise IntoItself("the destination holds what is being copied")
            replaced = trash_locked(existing, caller.user_id) if existing is not None else None
            made = new_entry(parent, target[-1], Entry.Kind.FOLDER)
            copy_properties(source, made, members=False)
        else:
            made = copy(source, target, replace=overwrite)
            copy_properties(source, made)
    if replaced is not None:
        replaced.announce()
    response = HttpResponse(status=204 if existing is not None else 201)
    if existing is None:
        response["Location"] = href(target, source.kind == Entry.Kind.FOLDER)
    return response


def existing_folder(root: Entry, names: list[str]) -> Entry:
    """The folder at a path, or MissingParent: WebDAV makes no folder on the way (RFC 4918
    §9.3.1, §9.7.1, §9.8.5)."""
    try:
        folder = at_path(root, names) or resolve(root, names)
    except (EntryNotFound, NotAFolder):
        raise MissingParent(f"{join_path(names)} is not a folder here") from None
    if folder.kind != Entry.Kind.FOLDER:
        raise MissingParent(f"{join_path(names)} is a file")
    return folder
