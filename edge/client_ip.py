"""Which address a request really comes from.

The socket peer, unless the peer is a trusted proxy (TRUSTED_PROXIES); then the right-most
address of X-Forwarded-For that is not itself a trusted proxy. Everything left of that was
written by the client and may be forged, so it is never read. Headers such as X-User-ID or
X-Real-IP are never believed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from aiohttp import web

from edge.app_keys import CLIENT_IP
from utils.config import IPNetwork

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _parse(text: str) -> IPAddress | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    return any(address in network for network in networks)


def resolve_client_ip(peer: str | None, forwarded_for: Iterable[str],
                      trusted: Sequence[IPNetwork]) -> str:
    """The client address as a string (pure: the peer and the X-Forwarded-For values in)."""
    if not trusted:
        return peer or "unknown"  # no proxy is believed: the socket peer, as it is
    address = _parse(peer or "")
    if address is None:
        return peer or "unknown"
    if not _trusted(address, trusted):
        return str(address)
    hops = [hop for value in forwarded_for for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        hop_address = _parse(hop)
        if hop_address is None:
            break  # garbage: nothing further left can be trusted either
        address = hop_address
        if not _trusted(hop_address, trusted):
            return str(hop_address)
    return str(address)


def in_networks(client_ip: str, networks: Sequence[IPNetwork]) -> bool:
    address = _parse(client_ip)
    return address is not None and _trusted(address, networks)





def client_ip(request: web.Request, trusted: Sequence[IPNetwork]) -> str:
    """Resolved once per request and remembered on it."""
    known = request.get(CLIENT_IP)
    if known is None:
        known = resolve_client_ip(request.remote, request.headers.getall("X-Forwarded-For", []),
                                  trusted)
        request[CLIENT_IP] = known
    return known
