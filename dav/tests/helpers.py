"""Requests to /dav/ and what their XML answers say, for the WebDAV tests."""

from __future__ import annotations

import xml.etree.ElementTree as ET  # noqa: S405  (our own answers)
from typing import Any
from urllib.parse import quote

from testing.uploads import Reply, send

D = "{DAV:}"
PROPFIND_ALL = b'<?xml version="1.0"?><propfind xmlns="DAV:"><allprop/></propfind>'
LOCK_EXCLUSIVE = (
    b'<?xml version="1.0"?><lockinfo xmlns="DAV:"><lockscope><exclusive/></lockscope>'
    b"<locktype><write/></locktype><owner><href>mailto:ada@example.org</href></owner></lockinfo>"
)
LOCK_SHARED = LOCK_EXCLUSIVE.replace(b"<exclusive/>", b"<shared/>")


def url(path: str) -> str:
    return "/dav" + quote(path)


def dav(target: Any, method: str, path: str, body: bytes = b"", **headers: str) -> Reply:
    """One WebDAV request; headers given as keyword arguments (`Overwrite="F"`)."""
    named = {name.replace("_", "-"): value for name, value in headers.items()}
    if body.startswith(b"<?xml"):
        named.setdefault("Content-Type", "application/xml")
    return send(target, method, url(path), body, named)


def prop_request(*names: str) -> bytes:
    props = "".join(f"<{name}/>" for name in names)
    return f'<?xml version="1.0"?><propfind xmlns="DAV:"><prop>{props}</prop></propfind>'.encode()


def responses(reply: Reply) -> dict[str, dict[str, tuple[int, ET.Element]]]:
    """A 207's answers: href → {property tag: (status, element)}."""
    assert reply.status == 207, reply
    found: dict[str, dict[str, tuple[int, ET.Element]]] = {}
    answer = ET.fromstring(reply.body)  # noqa: S314
    for response in answer.iter(f"{D}response"):
        href = response.findtext(f"{D}href") or ""
        props = found.setdefault(href, {})
        for propstat in response.iter(f"{D}propstat"):
            status = int((propstat.findtext(f"{D}status") or "").split()[1])
            for prop in propstat.find(f"{D}prop") or []:
                props[prop.tag] = (status, prop)
    return found


def lock(target: Any, path: str, body: bytes = LOCK_EXCLUSIVE, **headers: str) -> str:
    reply = dav(target, "LOCK", path, body, **headers)
    assert reply.status in (200, 201), reply
    return reply.headers["Lock-Token"].strip("<>")
