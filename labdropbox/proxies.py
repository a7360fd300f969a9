"""Who is the client, when a reverse proxy (nginx in the compose stack and Kubernetes) stands in
front of the service: REMOTE_ADDR is then the proxy, and the client is in X-Forwarded-For."""

from __future__ import annotations

import functools
import ipaddress

from django.conf import settings
from django.core.checks import Error
from django.http import HttpRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.cache
def trusted_networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def is_trusted_proxy(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted_networks(tuple(settings.TRUSTED_PROXIES)))


def client_address(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, unless that is a trusted proxy — then the nearest
    address in X-Forwarded-For that is not one (a client can put anything at its start)."""
    address = request.META.get("REMOTE_ADDR", "")
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    while hops and is_trusted_proxy(address):
        address = hops.pop()
    return address


def network_errors(setting: str, entries: list[str], check_id: str) -> list[Error]:
    """An error for each entry of a list-of-networks setting that is not an address or network."""
    errors = []
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            errors.append(
                Error(
                    f"{setting} entry {entry!r} is not an IP address or network.",
                    hint="Use addresses or CIDR networks, e.g. 10.0.0.0/8,127.0.0.1.",
                    id=check_id,
                )
            )
    return errors
