"""Parsing of the networks (CIDRs) an inventory names, with errors that say what is wrong."""

from __future__ import annotations

import ipaddress

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_network(value: object, *, require_prefix: bool = True) -> Network:
    """Return `value` as a network; raise ValueError naming the problem.

    With `require_prefix`, a bare address ("10.0.0.0") is refused: it would silently mean a /32.
    """
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{value!r} is not a CIDR (expected address/prefix, e.g. 10.244.0.0/16)")
    if require_prefix and "/" not in value:
        raise ValueError(f"{value!r} has no prefix length (expected address/prefix, e.g. 10.244.0.0/16)")
    try:
        return ipaddress.ip_network(value.strip(), strict=True)
    except ValueError as error:
        raise ValueError(f"{value!r} is not a valid CIDR: {error}") from None


def family(network: Network) -> str:
    """nftables' name for the address family of `network`: "ip" or "ip6"."""
    return "ip" if network.version == 4 else "ip6"
