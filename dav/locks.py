"""Locks (WebDAV class 2): taken, refreshed and released by LOCK and UNLOCK, listed by PROPFIND's
lockdiscovery, and honoured by every change — checked again under the tree's lock, in the
transaction that makes the change, so a lock taken on one worker holds on every other."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from itertools import groupby

from django.http import HttpRequest
from django.utils import timezone

from dav.conditions import IfHeader, if_header
from dav.models import Lock
from dav.paths import below, covers, key_of
from files.models import Entry
from files.tree.place import Conditions
from files.tree.roots import resolve
from labdropbox.api.errors import (
    BadRequest,
    EntryNotFound,
    Locked,
    LockTokenMismatch,
    NotAFolder,
    PreconditionFailed,
    TooManyLocks,
)

DEFAULT_TIMEOUT = 3600
MAX_TIMEOUT = 24 * 3600  # a client asking for Infinite gets this, and refreshes
# Live locks a tree may hold: every change reads its tree's locks, so they must stay few.
MAX_LOCKS_PER_TREE = 1000


def live_locks(root: Entry, owners: bool = False) -> list[Lock]:
    """The tree's live locks; with the owners clients gave them only where they are shown."""
    found = Lock.objects.filter(root=root, expires_at__gt=timezone.now())
    return list(found if owners else found.defer("owner_xml"))


def new_token() -> str:
    return f"opaquelocktoken:{uuid.uuid4()}"


def requested_timeout(request: HttpRequest) -> int:
    """The first timeout of the Timeout header this server grants (`Second-n`, `Infinite`),
    held to MAX_TIMEOUT."""
    for part in request.headers.get("Timeout", "").split(","):
        word = part.strip().lower()
        if word == "infinite":
            return MAX_TIMEOUT
        seconds = word.removeprefix("second-")
        if seconds != word and seconds.isascii() and seconds.isdigit() and len(seconds) <= 12:
            return max(1, min(int(seconds), MAX_TIMEOUT))
    return DEFAULT_TIMEOUT


@dataclass
class Guard:
    """What the request's If header says, checked against the tree's locks: whether it holds
    (else 412) and whether it submits the tokens of the locks on what the request changes
    (else 423)."""

    root: Entry
    header: IfHeader

    @classmethod
    def of(cls, request: HttpRequest, root: Entry) -> Guard:
        return cls(root, if_header(request))

    def check(self, target: list[str], changes: list[Change] | None = None) -> None:
        """Raise if the If header fails for `target`, or a change touches a locked path whose
        token is not submitted. Read the locks afresh: call it under the tree's lock."""
        locks = live_locks(self.root) if (self.header.clauses or changes) else []
        known: dict[str, tuple[set[str], str | None]] = {}  # each resource looked at once

        def state(names: list[str]) -> tuple[set[str], str | None]:
            """A resource's lock tokens and entity tag."""
            key = key_of(names)
            if key not in known:
                tokens = {lock.token for lock in locks if covers(lock.path_key, lock.infinite, key)}
                known[key] = tokens, etag_at(self.root, names)
            return known[key]

        if not self.header.holds(target, state):
            raise PreconditionFailed("the If header does not hold")
        for change in changes or []:
            self.require(change, locks)

    def require(self, change: Change, locks: list[Lock]) -> None:
        key = key_of(change.names)
        folder = key_of(change.names[:-1]) if change.names else None
        needed = [
            lock
            for lock in locks
            if covers(lock.path_key, lock.infinite, key)
            or (change.members and below(key, lock.path_key))
            or (change.membership and lock.path_key == folder)
        ]
        submitted = self.header.tokens
        needed.sort(key=lambda lock: lock.path_key)
        for _, group in groupby(needed, key=lambda lock: lock.path_key):
            locks_there = list(group)
            if not submitted & {lock.token for lock in locks_there}:
                where = locks_there[0].path
                raise Locked(f"{where} is locked: send its lock token in an If header")


@dataclass(frozen=True)
class Change:
    """A path a request changes: `members` — what is below it too (DELETE and MOVE of a
    folder); `membership` — its folder's list of names (a new or removed name)."""

    names: list[str]
    members: bool = False
    membership: bool = False


@dataclass(frozen=True)
class GuardedConditions(Conditions):
    """A PUT's conditions: the HTTP ones, and the locks on its path, checked again under the
    tree's lock in the transaction that commits the new content."""

    guard: Guard | None = None
    names: tuple[str, ...] = ()

    @property
    def any(self) -> bool:
        return True  # look before reading the body: a locked path refuses it at once

    def check(self, existing: Entry | None) -> None:
        super().check(existing)
        if self.guard is not None:
            names = list(self.names)
            self.guard.check(names, [Change(names, membership=existing is None)])


def guarded(conditions: Conditions, guard: Guard, names: list[str]) -> GuardedConditions:
    fields = {name: getattr(conditions, name) for name in conditions.__dataclass_fields__}
    return GuardedConditions(**fields, guard=guard, names=tuple(names))


def etag_at(root: Entry, names: list[str]) -> str | None:
    try:
        entry = resolve(root, names)
    except (EntryNotFound, NotAFolder):
        return None
    return entry_etag(entry)


def entry_etag(entry: Entry) -> str | None:
    """A file's entity tag is its content's SHA-256, as everywhere in the API; a folder has none."""
    return f'"{entry.sha256}"' if entry.kind == Entry.Kind.FILE and entry.sha256 else None


def take(
    root: Entry,
    names: list[str],
    exclusive: bool,
    infinite: bool,
    owner_xml: str,
    timeout: int,
    user_id: int | None,
) -> Lock:
    """A new lock on a path (under the tree's lock): Locked if it conflicts with one there."""
    key = key_of(names)
    now = timezone.now()
    Lock.objects.filter(root=root, expires_at__lte=now).delete()
    current = live_locks(root)
    if len(current) >= MAX_LOCKS_PER_TREE:
        raise TooManyLocks()
    for lock in current:
        overlaps = covers(lock.path_key, lock.infinite, key) or (
            infinite and below(key, lock.path_key)
        )
        if overlaps and (exclusive or lock.exclusive):
            raise Locked(f"{lock.path} is locked already")
    return Lock.objects.create(
        token=new_token(),
        root=root,
        path="/" + "/".join(names),
        path_key=key,
        exclusive=exclusive,
        infinite=infinite,
        owner_xml=owner_xml,
        timeout_seconds=timeout,
        expires_at=now + timedelta(seconds=timeout),
        created_by_id=user_id,
    )


def refresh(root: Entry, names: list[str], header: IfHeader, timeout: int) -> Lock:
    """A LOCK without a body: the lock the If header names, on this path, lives on."""
    key = key_of(names)
    for lock in live_locks(root):
        if lock.token in header.tokens and covers(lock.path_key, lock.infinite, key):
            lock.timeout_seconds = timeout
            lock.expires_at = timezone.now() + timedelta(seconds=timeout)
            lock.save(update_fields=["timeout_seconds", "expires_at"])
            return lock
    raise PreconditionFailed("no lock of this path has the token in the If header")


def release(root: Entry, names: list[str], raw_token: str) -> None:
    token = raw_token.strip().removeprefix("<").removesuffix(">").strip()
    if not token:
        raise BadRequest("UNLOCK needs a Lock-Token header")
    key = key_of(names)
    lock = Lock.objects.filter(root=root, token=token, expires_at__gt=timezone.now()).first()
    if lock is None or not covers(lock.path_key, lock.infinite, key):
        raise LockTokenMismatch("no lock of this path has that token")
    lock.delete()


def forget_below(root: Entry, names: list[str]) -> None:
    """Locks of a path that is gone (deleted, moved away), and of every path below it."""
    key = key_of(names)
    for lock in live_locks(root):
        if lock.path_key == key or below(key, lock.path_key):
            lock.delete()
