"""Client IP resolution behind proxies: only trusted hops are believed."""

from __future__ import annotations

import ipaddress

import pytest

from edge.client_ip import resolve_client_ip

TRUSTED = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8"))


@pytest.mark.parametrize(("peer", "forwarded", "expected"), [
    ("203.0.113.9", ["1.2.3.4"], "203.0.113.9"),  # untrusted peer: its header is ignored
    ("203.0.113.9", [], "203.0.113.9"),
    ("10.0.0.2", ["198.51.100.7"], "198.51.100.7"),  # one trusted hop
    ("10.0.0.2", ["6.6.6.6, 198.51.100.7"], "198.51.100.7"),  # spoofed left part ignored
    ("10.0.0.2", ["6.6.6.6, 198.51.100.7, 10.1.1.1"], "198.51.100.7"),  # two trusted hops
    ("10.0.0.2", ["6.6.6.6", "198.51.100.7"], "198.51.100.7"),  # header given twice
    ("10.0.0.2", ["10.9.9.9, 10.1.1.1"], "10.9.9.9"),  # all trusted: the left-most
    ("10.0.0.2", ["garbage, 198.51.100.7"], "198.51.100.7"),
    ("10.0.0.2", ["198.51.100.7, garbage"], "10.0.0.2"),  # nothing past garbage is believed
    ("10.0.0.2", ["[2001:db8::1]:443"], "2001:db8::1"),
    ("10.0.0.2", ["198.51.100.7:5555"], "198.51.100.7"),
    ("::ffff:10.0.0.2", ["198.51.100.7"], "198.51.100.7"),  # v4-mapped peer
])
def test_resolution(peer: str, forwarded: list[str], expected: str) -> None:
    assert resolve_client_ip(peer, forwarded, TRUSTED) == expected


def test_nothing_is_trusted_by_default() -> None:
    assert resolve_client_ip("10.0.0.2", ["198.51.100.7"], ()) == "10.0.0.2"
