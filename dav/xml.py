"""The XML of WebDAV: request bodies parsed with their size bounded and no DTD (so no entity
expansion), and answers written as text a piece at a time — a PROPFIND of a folder of any size
is sent as it is read, never built whole in memory."""

from __future__ import annotations

import xml.etree.ElementTree as ET  # noqa: S405  (bodies with a DOCTYPE are refused first)
from collections.abc import Iterable
from http import HTTPStatus
from xml.sax.saxutils import escape

from django.http import HttpRequest

from labdropbox.api.bodies import read_body_piece, request_body, request_has_body
from labdropbox.api.errors import BadRequest, BodyTooLarge

DAV = "DAV:"
MAX_XML_BYTES = 1024 * 1024
MAX_XML_DEPTH = 64  # what is written back (a dead property's value) is written recursively
HEAD = '<?xml version="1.0" encoding="utf-8"?>\n'


def dav(name: str) -> str:
    """An element's name in the DAV: namespace, as ElementTree spells it."""
    return f"{{{DAV}}}{name}"


def read_xml(request: HttpRequest) -> ET.Element | None:
    """The request's XML body (None for none), at most MAX_XML_BYTES."""
    if not request_has_body(request):
        return None
    body, length = request_body(request)
    if length is not None and length > MAX_XML_BYTES:
        raise BodyTooLarge(f"an XML body is at most {MAX_XML_BYTES} bytes")
    raw = read_body_piece(body, MAX_XML_BYTES + 1)
    if len(raw) > MAX_XML_BYTES:
        raise BodyTooLarge(f"an XML body is at most {MAX_XML_BYTES} bytes")
    if not raw.strip():
        return None
    # Read as UTF-8 whatever the body declares, so that a DOCTYPE (and with it any entity)
    # cannot hide in another encoding from this check.
    if b"<!DOCTYPE" in raw.upper() or b"<!ENTITY" in raw.upper():
        raise BadRequest("XML bodies with a DOCTYPE are refused")
    try:
        parser = ET.XMLParser(encoding="utf-8")  # noqa: S314
        parser.feed(raw)
        element = parser.close()
    except (ET.ParseError, ValueError, LookupError, RecursionError) as exc:
        raise BadRequest(f"the body is not well-formed UTF-8 XML: {exc}") from None
    if deeper_than(element, MAX_XML_DEPTH):
        raise BadRequest(f"XML bodies nest at most {MAX_XML_DEPTH} elements deep")
    return element


def deeper_than(element: ET.Element, limit: int) -> bool:
    """Whether the elements nest more than `limit` deep (walked with a list: any depth)."""
    pending = [(element, 1)]
    while pending:
        current, depth = pending.pop()
        if depth > limit:
            return True
        pending.extend((inner, depth + 1) for inner in current)
    return False


def split_tag(tag: str) -> tuple[str, str]:
    """`{namespace}name` → (namespace, name); a name in no namespace → ("", name)."""
    if tag.startswith("{"):
        namespace, _, name = tag[1:].partition("}")
        return namespace, name
    return "", tag


def element_xml(element: ET.Element) -> str:
    """An element as text that declares every namespace it uses: it can be put anywhere."""
    element.tail = None
    return ET.tostring(element, encoding="unicode")


def empty(namespace: str, name: str) -> str:
    """An empty element of any namespace, declaring it where it is not DAV:."""
    if namespace == DAV:
        return f"<D:{name}/>"
    return f'<{name} xmlns="{escape(namespace, {chr(34): "&quot;"})}"/>'


def text(value: object) -> str:
    return escape(str(value))


def propstat(props: Iterable[str], status: int) -> str:
    inner = "".join(props)
    return (
        f"<D:propstat><D:prop>{inner}</D:prop>"
        f"<D:status>HTTP/1.1 {status} {HTTPStatus(status).phrase}</D:status></D:propstat>"
    )


def response(href: str, propstats: Iterable[str]) -> str:
    return f"<D:response><D:href>{escape(href)}</D:href>{''.join(propstats)}</D:response>\n"


def multistatus(responses: Iterable[str]) -> Iterable[bytes]:
    """A 207 body: the responses as they come, encoded a batch at a time."""
    yield (HEAD + '<D:multistatus xmlns:D="DAV:">\n').encode()
    batch: list[str] = []
    for piece in responses:
        batch.append(piece)
        if len(batch) >= 64:
            yield "".join(batch).encode()
            batch = []
    yield ("".join(batch) + "</D:multistatus>\n").encode()
