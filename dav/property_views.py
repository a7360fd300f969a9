"""PROPFIND, PROPPATCH, LOCK and UNLOCK: what /dav/ says about entries, and the locks on them."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET  # noqa: S405  (parsed by dav.xml)
from collections.abc import Iterator

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

from dav import locks
from dav.locks import Change, Guard, live_locks, requested_timeout
from dav.paths import href
from dav.properties import Listing, Wanted, active_lock, dead_properties, patch, propstats, wanted
from dav.transfers import existing_folder
from dav.xml import HEAD, dav, element_xml, multistatus, propstat, read_xml, response, text
from files.models import Entry
from files.operations.write import write_file
from files.tree.listing import list_folder
from files.tree.place import Conditions
from files.tree.roots import locked_tree, resolve, tree_of
from labdropbox.api.callers import Caller
from labdropbox.api.errors import (
    BadRequest,
    EntryNotFound,
    InfiniteDepthRefused,
    PreconditionFailed,
)

XML = 'application/xml; charset="utf-8"'
PAGE = 500  # a folder's entries are read and sent this many at a time
MAX_OWNER_CHARACTERS = 1024  # a lock's owner: a name or an address, shown with every lock


def propfind(request: HttpRequest, caller: Caller, names: list[str]) -> StreamingHttpResponse:
    """Depth 0 (the entry) or 1 (and what a folder holds), streamed a page of entries at a
    time. Depth infinity is refused (403, RFC 4918 §9.1): a client walks the tree with Depth 1.
    A request without Depth is taken as Depth 1, as the clients that omit it expect."""
    depth = request.headers.get("Depth", "1").strip().lower()
    if depth == "infinity":
        raise InfiniteDepthRefused()
    if depth not in ("0", "1"):
        raise BadRequest("Depth is 0, 1 or infinity")
    ask = wanted(read_xml(request))
    root = tree_of(caller)
    entry = resolve(root, names)
    listing = Listing(root, live_locks(root, owners=True))
    body = multistatus(described(entry, names, depth == "1", ask, listing))
    return StreamingHttpResponse(body, status=207, content_type=XML)


def described(
    entry: Entry, names: list[str], with_children: bool, ask: Wanted, listing: Listing
) -> Iterator[str]:
    dead = dead_properties([entry])
    yield one(entry, names, ask, listing, dead.get(entry.id, []))
    if not with_children or entry.kind != Entry.Kind.FOLDER:
        return
    cursor: str | None = None
    while True:
        page = list_folder(entry, "name", False, cursor, PAGE)
        dead = dead_properties(page.entries)
        for inner in page.entries:
            yield one(inner, [*names, inner.name], ask, listing, dead.get(inner.id, []))
        cursor = page.next_cursor
        if cursor is None:
            return


def one(entry: Entry, names: list[str], ask: Wanted, listing: Listing, dead: list) -> str:
    folder = entry.kind == Entry.Kind.FOLDER
    stats = [
        propstat(props, status) for props, status in propstats(entry, names, ask, listing, dead)
    ]
    return response(href(names, folder), stats)


def proppatch(request: HttpRequest, caller: Caller, names: list[str]) -> HttpResponse:
    """Dead properties set and removed, all or none; the live ones are protected (403)."""
    root = tree_of(caller)
    body = read_xml(request)
    with locked_tree(root):
        entry = resolve(root, names)
        Guard.of(request, root).check(names, [Change(names)])
        results = patch(entry, body)
    folder = entry.kind == Entry.Kind.FOLDER
    answer = response(href(names, folder), [propstat(props, status) for props, status in results])
    return HttpResponse(b"".join(multistatus([answer])), status=207, content_type=XML)


def lock(request: HttpRequest, caller: Caller, names: list[str]) -> HttpResponse:
    """A new lock (200; 201 with an empty file made where nothing was), or with no body and
    the lock's token in an If header, a refresh."""
    root = tree_of(caller)
    body = read_xml(request)
    timeout = requested_timeout(request)
    guard = Guard.of(request, root)
    if body is None:
        with locked_tree(root):
            refreshed = locks.refresh(root, names, guard.header, timeout)
        return lock_answer(refreshed, 200)
    exclusive, owner = lock_info(body)
    depth = request.headers.get("Depth", "infinity").strip().lower()
    if depth not in ("0", "infinity"):
        raise BadRequest("LOCK takes Depth: 0 or infinity")
    with locked_tree(root):
        try:
            resolve(root, names)
            exists = True
        except EntryNotFound:
            existing_folder(root, names[:-1])
            exists = False
        # A name with nothing there becomes a file: its folder gains a member.
        guard.check(names, [] if exists else [Change(names, membership=True)])
        taken = locks.take(
            root, names, exclusive, depth == "infinity", owner, timeout, caller.user_id
        )
    if exists:
        return lock_answer(taken, 200)
    try:  # a lock on a name with nothing there makes an empty file (RFC 4918 §7.3)
        write_file(names, io.BytesIO(), 0, caller, Conditions(none_match=True))
    except PreconditionFailed:
        pass  # another request made it meanwhile: the lock holds it all the same
    except BaseException:
        taken.delete()
        raise
    return lock_answer(taken, 201)


def lock_info(body: ET.Element) -> tuple[bool, str]:
    """(exclusive, the owner's XML) of a DAV:lockinfo body."""
    if body.tag != dav("lockinfo"):
        raise BadRequest("a LOCK body is a DAV:lockinfo element")
    exclusive, owner = None, ""
    for part in body:
        if part.tag == dav("lockscope"):
            scopes = {child.tag for child in part}
            if scopes not in ({dav("exclusive")}, {dav("shared")}):
                raise BadRequest("a lockscope is exclusive or shared")
            exclusive = scopes == {dav("exclusive")}
        elif part.tag == dav("locktype") and dav("write") not in {child.tag for child in part}:
            raise BadRequest("only write locks exist")
        elif part.tag == dav("owner"):
            owner = text(part.text or "") + "".join(element_xml(child) for child in part)
            if len(owner) > MAX_OWNER_CHARACTERS:
                raise BadRequest(f"a lock's owner is at most {MAX_OWNER_CHARACTERS} characters")
    if exclusive is None:
        raise BadRequest("the lockinfo names no lockscope")
    return exclusive, owner


def lock_answer(lock: locks.Lock, status: int) -> HttpResponse:
    body = (
        f'{HEAD}<D:prop xmlns:D="DAV:"><D:lockdiscovery>{active_lock(lock)}'
        "</D:lockdiscovery></D:prop>\n"
    )
    answer = HttpResponse(body.encode(), status=status, content_type=XML)
    answer["Lock-Token"] = f"<{lock.token}>"
    return answer


def unlock(request: HttpRequest, caller: Caller, names: list[str]) -> HttpResponse:
    locks.release(tree_of(caller), names, request.headers.get("Lock-Token", ""))
    return HttpResponse(status=204)
