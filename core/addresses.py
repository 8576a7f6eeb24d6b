"""Is an address on the public internet? The outgoing connections users aim at a host of their
choice (delivery callbacks, bucket connections) refuse private and loopback addresses unless a
setting allows them, checked on the name when it is saved and on every connected socket."""

from __future__ import annotations

import ipaddress
import socket


def not_public(address: str) -> bool:
    """The IP address (v4, v6, v4-mapped v6, with or without a zone) is not a global one."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return not ip.is_global


def resolves_private(host: str) -> bool:
    """Any address the host name resolves to is not public. An unresolvable name is not
    "private": connecting to it fails and says so."""
    try:
        infos = socket.getaddrinfo(host, None)
    except (OSError, UnicodeError, ValueError):
        return False
    return any(not_public(str(info[4][0])) for info in infos)
