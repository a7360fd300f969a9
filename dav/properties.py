"""Properties: the live ones every entry has (its name, kind, size, entity tag, dates, locks,
and its tree's quota, RFC 4331), and the dead ones clients set with PROPPATCH."""

from __future__ import annotations

import mimetypes
import xml.etree.ElementTree as ET  # noqa: S405  (parsed elements only)
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC
from functools import cached_property

from django.db import transaction
from django.utils import timezone
from django.utils.http import http_date

from dav.locks import entry_etag
from dav.models import DeadProperty, Lock, property_key
from dav.paths import covers, href, key_of
from dav.xml import DAV, dav, element_xml, empty, split_tag, text
from files.models import Entry
from files.quotas import Usage, usage_of
from files.tree.trash import descendants
from labdropbox.api.errors import BadRequest

QUOTA = {"quota-available-bytes", "quota-used-bytes"}
# What an entry's dead properties may take: a client cannot grow the database without bound.
MAX_DEAD_PROPERTIES = 200
MAX_PROPERTY_CHARACTERS = 16 * 1024  # one property as XML
MAX_NAME_CHARACTERS = 255  # a property's name, and its namespace
MAX_ASKED = 1000  # properties one PROPFIND may name
# What PROPPATCH may not change; allprop lists them all but the quota (RFC 4331 §3).
LIVE = {
    "displayname",
    "resourcetype",
    "getcontentlength",
    "getcontenttype",
    "getetag",
    "getlastmodified",
    "creationdate",
    "supportedlock",
    "lockdiscovery",
    *QUOTA,
}
SUPPORTED_LOCK = "".join(
    f"<D:lockentry><D:lockscope><D:{scope}/></D:lockscope><D:locktype><D:write/></D:locktype>"
    "</D:lockentry>"
    for scope in ("exclusive", "shared")
)


@dataclass
class Listing:
    """What every entry of one PROPFIND answer shares: its tree, its locks, its usage."""

    root: Entry
    locks: list[Lock]

    @cached_property
    def usage(self) -> Usage:
        return usage_of(self.root.owner_id)


def live_property(entry: Entry, names: list[str], name: str, listing: Listing) -> str | None:
    """The live property `name` of an entry as XML, or None where the entry has none."""
    is_file = entry.kind == Entry.Kind.FILE
    if name == "displayname":
        return f"<D:displayname>{text(entry.name)}</D:displayname>"
    if name == "resourcetype":
        return (
            "<D:resourcetype/>" if is_file else "<D:resourcetype><D:collection/></D:resourcetype>"
        )
    if name == "getcontentlength" and is_file:
        return f"<D:getcontentlength>{entry.size}</D:getcontentlength>"
    if name == "getcontenttype" and is_file:
        kind = mimetypes.guess_type(entry.name)[0] or "application/octet-stream"
        return f"<D:getcontenttype>{text(kind)}</D:getcontenttype>"
    if name == "getetag" and (etag := entry_etag(entry)):
        return f"<D:getetag>{text(etag)}</D:getetag>"
    if name == "getlastmodified":
        return f"<D:getlastmodified>{http_date(entry.modified_at.timestamp())}</D:getlastmodified>"
    if name == "creationdate":
        moment = entry.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"<D:creationdate>{moment}</D:creationdate>"
    if name == "supportedlock":
        return f"<D:supportedlock>{SUPPORTED_LOCK}</D:supportedlock>"
    if name == "lockdiscovery":
        key = key_of(names)
        active = [lock for lock in listing.locks if covers(lock.path_key, lock.infinite, key)]
        return f"<D:lockdiscovery>{''.join(active_lock(lock) for lock in active)}</D:lockdiscovery>"
    if name in QUOTA and not is_file:
        usage = listing.usage
        if name == "quota-used-bytes":
            return f"<D:quota-used-bytes>{usage.used}</D:quota-used-bytes>"
        if usage.limit is not None:
            available = max(0, usage.limit - usage.used)
            return f"<D:quota-available-bytes>{available}</D:quota-available-bytes>"
    return None


def active_lock(lock: Lock) -> str:
    remaining = max(0, int((lock.expires_at - timezone.now()).total_seconds()))
    scope = "exclusive" if lock.exclusive else "shared"
    owner = f"<D:owner>{lock.owner_xml}</D:owner>" if lock.owner_xml else ""
    root_names = [name for name in lock.path.split("/") if name]
    return (
        f"<D:activelock><D:locktype><D:write/></D:locktype><D:lockscope><D:{scope}/></D:lockscope>"
        f"<D:depth>{'infinity' if lock.infinite else '0'}</D:depth>{owner}"
        f"<D:timeout>Second-{remaining}</D:timeout>"
        f"<D:locktoken><D:href>{text(lock.token)}</D:href></D:locktoken>"
        f"<D:lockroot><D:href>{text(href(root_names, False))}</D:href></D:lockroot></D:activelock>"
    )


@dataclass
class Wanted:
    """What a PROPFIND asks for: every property (`allprop`), their names (`propname`), or these."""

    mode: str  # "allprop", "propname" or "prop"
    names: list[tuple[str, str]] = field(default_factory=list)


def wanted(body: ET.Element | None) -> Wanted:
    if body is None:
        return Wanted("allprop")
    if body.tag != dav("propfind"):
        raise BadRequest("a PROPFIND body is a DAV:propfind element")
    for child in body:
        if child.tag in (dav("allprop"), dav("propname")):
            return Wanted(split_tag(child.tag)[1])
        if child.tag == dav("prop"):
            if len(child) > MAX_ASKED:
                raise BadRequest(f"a PROPFIND names at most {MAX_ASKED} properties")
            return Wanted("prop", [split_tag(prop.tag) for prop in child])
    raise BadRequest("a propfind names allprop, propname or prop")


def dead_properties(entries: list[Entry]) -> dict[object, list[DeadProperty]]:
    found: dict[object, list[DeadProperty]] = defaultdict(list)
    for prop in DeadProperty.objects.filter(entry_id__in=[entry.id for entry in entries]):
        found[prop.entry_id].append(prop)
    return found


def propstats(
    entry: Entry, names: list[str], ask: Wanted, listing: Listing, dead: list[DeadProperty]
) -> Iterable[tuple[list[str], int]]:
    """The entry's answer to a PROPFIND: (properties, status) pairs."""
    if ask.mode == "propname":
        live = [name for name in sorted(LIVE) if live_property(entry, names, name, listing)]
        yield [f"<D:{name}/>" for name in live] + [empty(p.namespace, p.name) for p in dead], 200
        return
    if ask.mode == "allprop":
        live = sorted(LIVE - QUOTA)
        shown = [value for name in live if (value := live_property(entry, names, name, listing))]
        yield shown + [prop.xml for prop in dead], 200
        return
    found: list[str] = []
    missing: list[str] = []
    by_name = {(prop.namespace, prop.name): prop for prop in dead}
    for namespace, name in ask.names:
        value = live_property(entry, names, name, listing) if namespace == DAV else None
        if value is None and (namespace, name) in by_name:
            value = by_name[namespace, name].xml
        (found if value is not None else missing).append(value or empty(namespace, name))
    if found:
        yield found, 200
    if missing:
        yield missing, 404


def patch(entry: Entry, body: ET.Element | None) -> list[tuple[list[str], int]]:
    """Apply a PROPPATCH: every change or none (RFC 4918 §9.2). The live properties are
    protected (403), and then the others fail with them (424)."""
    if body is None or body.tag != dav("propertyupdate"):
        raise BadRequest("a PROPPATCH body is a DAV:propertyupdate element")
    changes: list[tuple[bool, str, str, ET.Element]] = []
    for action in body:
        if action.tag not in (dav("set"), dav("remove")):
            continue
        for prop_list in action:
            for prop in prop_list if prop_list.tag == dav("prop") else []:
                namespace, name = split_tag(prop.tag)
                changes.append((action.tag == dav("set"), namespace, name, prop))
    if not changes:
        raise BadRequest("the propertyupdate changes nothing")
    if any(max(len(ns), len(name)) > MAX_NAME_CHARACTERS for _, ns, name, _ in changes):
        raise BadRequest(f"property names and namespaces are at most {MAX_NAME_CHARACTERS} long")
    protected = [(ns, name) for _, ns, name, _ in changes if ns == DAV and name in LIVE]
    if protected:
        others = [(ns, name) for _, ns, name, _ in changes if (ns, name) not in protected]
        answer = [([empty(ns, name) for ns, name in protected], 403)]
        return answer + ([([empty(ns, name) for ns, name in others], 424)] if others else [])
    names = {(ns, name) for setting, ns, name, _ in changes if setting}
    held = DeadProperty.objects.filter(entry=entry)
    kept = {(p.namespace, p.name) for p in held.only("namespace", "name")}
    values = {(ns, name): element_xml(prop) for setting, ns, name, prop in changes if setting}
    too_big = any(len(value) > MAX_PROPERTY_CHARACTERS for value in values.values())
    if too_big or len(kept | names) > MAX_DEAD_PROPERTIES:
        # 507: no room to record them (RFC 4918 §9.2.1)
        return [([empty(ns, name) for _, ns, name, _ in changes], 507)]
    with transaction.atomic():
        for setting, namespace, name, _ in changes:
            key = property_key(namespace, name)
            rows = DeadProperty.objects.filter(entry=entry, key=key)
            if not setting:
                rows.delete()
            elif not rows.update(xml=values[namespace, name]):
                DeadProperty.objects.create(
                    entry=entry,
                    key=key,
                    namespace=namespace,
                    name=name,
                    xml=values[namespace, name],
                )
    return [([empty(ns, name) for _, ns, name, _ in changes], 200)]


def copy_properties(source: Entry, made: Entry, members: bool = True) -> None:
    """A copy keeps the dead properties of what it copies (`members`: below a folder too)."""
    whole = members and source.kind == Entry.Kind.FOLDER
    ids = [source.id, *descendants(source.id)] if whole else [source.id]
    if not DeadProperty.objects.filter(entry_id__in=ids).exists():
        return
    pairs = [(source, made)]
    while pairs:
        original, copied = pairs.pop()
        DeadProperty.objects.bulk_create(
            DeadProperty(entry=copied, key=p.key, namespace=p.namespace, name=p.name, xml=p.xml)
            for p in DeadProperty.objects.filter(entry=original)
        )
        if whole and original.kind == Entry.Kind.FOLDER:
            made_children = {child.name: child for child in Entry.objects.filter(parent=copied)}
            for child in Entry.objects.filter(parent=original):
                if child.name in made_children:
                    pairs.append((child, made_children[child.name]))
