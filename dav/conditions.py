"""The If header (RFC 4918 §10.4): lists of state tokens and entity tags, for the request's
resource or for ones it tags. The header must hold for the request to go on (else 412), and the
lock tokens it names are the ones the client submits: what lets it change a locked path."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from django.http import HttpRequest

from dav.paths import url_names
from labdropbox.api.errors import BadRequest, DestinationElsewhere

# The state token no lock has (RFC 4918 §10.4.8): a list naming it can only hold negated.
NO_LOCK = "DAV:no-lock"
TOKEN = re.compile(r"\s*(<[^>]*>|\[[^\]]*\]|\(|\)|Not\b)", re.IGNORECASE)


@dataclass(frozen=True)
class Condition:
    negated: bool
    token: str | None = None  # a state token (a lock's, or DAV:no-lock) ...
    etag: str | None = None  # ... or an entity tag


@dataclass
class Clause:
    """One parenthesised list: true if every condition in it is."""

    resource: list[str] | None  # the tagged resource's names; None: the request's
    conditions: list[Condition] = field(default_factory=list)


@dataclass
class IfHeader:
    clauses: list[Clause]

    @property
    def tokens(self) -> set[str]:
        """The lock tokens the client submits: every one it names (RFC 4918 §10.4.1)."""
        return {c.token for clause in self.clauses for c in clause.conditions if c.token}

    def holds(
        self, target: list[str], state: Callable[[list[str]], tuple[set[str], str | None]]
    ) -> bool:
        """Whether any of its lists is true. `state(names)` gives a resource's lock tokens and
        entity tag. No header (no lists) holds."""
        if not self.clauses:
            return True
        return any(self.clause_holds(clause, target, state) for clause in self.clauses)

    @staticmethod
    def clause_holds(
        clause: Clause,
        target: list[str],
        state: Callable[[list[str]], tuple[set[str], str | None]],
    ) -> bool:
        tokens, etag = state(target if clause.resource is None else clause.resource)
        for condition in clause.conditions:
            if condition.token is not None:
                met = condition.token in tokens
            else:
                met = etag is not None and condition.etag in (etag, etag.removeprefix("W/"))
            if met == condition.negated:
                return False
        return True


def if_header(request: HttpRequest) -> IfHeader:
    raw = request.headers.get("If")
    if raw is None:
        return IfHeader([])
    try:
        return parse(request, raw)
    except (DestinationElsewhere, UnicodeDecodeError):
        # A list for another server's resource: it cannot hold here.
        return IfHeader([Clause(None, [Condition(negated=False, token=NO_LOCK)])])


def parse(request: HttpRequest, raw: str) -> IfHeader:
    clauses: list[Clause] = []
    resource: list[str] | None = None
    current: Clause | None = None
    negated = False
    position = 0
    while position < len(raw.rstrip()):
        match = TOKEN.match(raw, position)
        if match is None:
            raise BadRequest("the If header is malformed")
        word, position = match.group(1), match.end()
        if current is None:
            if word.startswith("<"):
                resource = url_names(request, word[1:-1])
            elif word == "(":
                current, negated = Clause(resource), False
            else:
                raise BadRequest("the If header is malformed")
        elif word == ")":
            if not current.conditions or negated:
                raise BadRequest("the If header has an empty list")
            clauses.append(current)
            current = None
        elif word.lower() == "not":
            negated = True
        elif word.startswith("<"):
            current.conditions.append(Condition(negated, token=word[1:-1].strip()))
            negated = False
        elif word.startswith("["):
            current.conditions.append(Condition(negated, etag=word[1:-1].strip()))
            negated = False
        else:
            raise BadRequest("the If header is malformed")
    if current is not None or not clauses:
        raise BadRequest("the If header is malformed")
    return IfHeader(clauses)
