"""Paths of /dav/ as the tree's names, and back: the hrefs of answers and the Destination of a
COPY or MOVE."""

from __future__ import annotations

from urllib.parse import quote, unquote, urlsplit

from django.http import HttpRequest

from files.names import name_key, parse_path
from labdropbox.api.errors import BadRequest, DestinationElsewhere

PREFIX = "/dav"


def names_of(path: str) -> list[str]:
    """The tree's names of a path below /dav/ (already percent-decoded by Django)."""
    return parse_path("/" + path)


def href(names: list[str], folder: bool) -> str:
    """The URL path of an entry, each name percent-encoded; a folder's ends with `/`."""
    encoded = "".join("/" + quote(name, safe="") for name in names)
    return PREFIX + encoded + ("/" if folder and names else "" if names else "/")


def key_of(names: list[str]) -> str:
    """A path as names compare (NFC, case folded): how locks find the paths they cover."""
    return "".join("/" + name_key(name) for name in names)


def covers(lock_key: str, infinite: bool, key: str) -> bool:
    """Whether a lock on `lock_key` (of depth infinity, or 0) covers the path `key`."""
    return key == lock_key or (infinite and key.startswith(lock_key + "/"))


def below(key: str, other: str) -> bool:
    """Whether the path `other` is strictly below the path `key`."""
    return other.startswith(key + "/")


def url_names(request: HttpRequest, url: str) -> list[str]:
    """The tree's names of a URL a client sent (Destination, an If header's tag): an absolute
    URL of this host, or a path; anything outside /dav/ is DestinationElsewhere."""
    try:
        parts = urlsplit(url.strip())
        # Host names only: a proxy in front (nginx's $host) passes the name without the port
        # the client used, and the scheme it spoke (https) is not ours (http).
        own = urlsplit(f"//{request.get_host()}").hostname
        other = parts.hostname
    except ValueError:
        raise BadRequest(f"{url[:100]!r} is not a URL") from None
    if parts.netloc and other != own:
        raise DestinationElsewhere(f"{parts.netloc[:100]} is another server")
    path = unquote(parts.path, errors="strict") if parts.path else ""
    if path != PREFIX and not path.startswith(PREFIX + "/"):
        raise DestinationElsewhere()
    return parse_path(path[len(PREFIX) :] or "/")


def destination(request: HttpRequest) -> list[str]:
    raw = request.headers.get("Destination")
    if not raw:
        raise BadRequest("COPY and MOVE need a Destination header")
    try:
        return url_names(request, raw)
    except UnicodeDecodeError:
        raise BadRequest("the Destination is not UTF-8") from None
