"""Packets an IPv6 router builds itself: neighbour solicitations and advertisements,
router advertisements, echo replies and ICMPv6 errors; and the hop-limit decrement.

Where this sits: the IPv6 half of ``l3.py``, used by the router stages' IPv6
walk (``stages/routing6.py``); no state here.  Every function returns a
complete untagged Ethernet frame (``bytearray``); a frame to be routed has
zero MACs, which the router's output rewrites.
"""

from __future__ import annotations

import struct

from gateway.headers import ETH_P_IPV6, ZERO_MAC, Ethernet, HeaderError
from gateway.headers6 import (
    ECHO_REPLY6,
    IPPROTO_ICMPV6,
    IPV6_LEN,
    ND_NA,
    ND_NS,
    ND_RA,
    OPT_SOURCE_LL,
    IPv6,
    Neighbour,
    icmp6,
    multicast_mac,
    solicited_node,
    upper_layer,
)

# RFC 4443 2.4 (c): an error carries as much of the offending packet as fits in the minimum MTU.
MIN_MTU = 1280
ERROR_QUOTE = MIN_MTU - IPV6_LEN - 8
# ICMPv6 types 0-127 are errors (RFC 4443 2.1): never answered with an error.
ERROR_TYPES_BELOW = 128
DEST_UNREACH6, PACKET_TOO_BIG, TIME_EXCEEDED6, PARAM_PROBLEM = 1, 2, 3, 4
# Router advertisement values (RFC 4861 6.2.1 defaults, the router lifetime 3 x MaxRtrAdvInterval).
RA_HOP_LIMIT = 64
PREFIX_ON_LINK = 0x80
PREFIX_LIFETIME = 86400
OPT_PREFIX = 3


def _frame(dst_mac: bytes, src_mac: bytes, ip: IPv6, payload: bytes) -> bytearray:
    return bytearray(Ethernet(dst_mac, src_mac, ETH_P_IPV6).serialize() + ip.serialize(len(payload)) + payload)


def neighbour_solicit(mac: bytes, src: int, target: int) -> bytearray:
    """A multicast NS for ``target`` (to its solicited-node group), from ``src`` at ``mac``."""
    group = solicited_node(target)
    msg = Neighbour(ND_NS, target, 0, mac).serialize(src, group)
    return _frame(multicast_mac(group), mac, IPv6(src, group, IPPROTO_ICMPV6, 255), msg)


def neighbour_advert(
    mac: bytes, src: int, dst_mac: bytes, dst: int, target: int, flags: int, with_lladdr: bool = True
) -> bytearray:
    """An NA for ``target`` at ``mac`` (``flags``: the R/S/O bits)."""
    msg = Neighbour(ND_NA, target, flags, mac if with_lladdr else None).serialize(src, dst)
    return _frame(dst_mac, mac, IPv6(src, dst, IPPROTO_ICMPV6, 255), msg)


def router_advert(mac: bytes, src: int, dst: int, prefixes: list[tuple[int, int]], lifetime: int) -> bytearray:
    """An RA from link-local ``src``: this router as a default router for ``lifetime`` seconds,
    the on-link ``prefixes`` (no autoconfiguration: addresses are the plan's) and its MAC."""
    body = struct.pack("!BBHII", RA_HOP_LIMIT, 0, lifetime, 0, 0)
    body += bytes((OPT_SOURCE_LL, 1)) + mac
    for prefix, plen in prefixes:
        body += struct.pack("!BBBBII4x", OPT_PREFIX, 4, plen, PREFIX_ON_LINK, PREFIX_LIFETIME, PREFIX_LIFETIME)
        body += prefix.to_bytes(16, "big")
    msg = icmp6(src, dst, ND_RA, 0, body)
    return _frame(multicast_mac(dst) if dst >> 120 == 0xFF else ZERO_MAC, mac, IPv6(src, dst, IPPROTO_ICMPV6, 255), msg)


def echo_reply6(frame: bytearray, l4: int, end: int) -> bytearray:
    """The reply to the echo request in ``frame`` (ICMPv6 at ``l4``, the packet ending at
    ``end``): addresses swapped, hop limit 64, to be routed.  An echo request to a
    multicast group is not answered here (the caller only passes its own addresses)."""
    src = int.from_bytes(frame[22:38], "big")
    dst = int.from_bytes(frame[38:54], "big")
    body = bytes(frame[l4 + 4 : end])
    msg = icmp6(dst, src, ECHO_REPLY6, 0, body)
    return _frame(ZERO_MAC, ZERO_MAC, IPv6(dst, src, IPPROTO_ICMPV6, 64), msg)


def icmp6_error(frame: bytearray, src: int, type_: int, code: int, param: int = 0) -> bytearray | None:
    """An ICMPv6 error about the IPv6 packet in ``frame``, from ``src``.

    None where RFC 4443 2.4 (e) forbids one: about an ICMPv6 error, to a
    multicast destination (but packet too big), from an unspecified or
    multicast source.
    """
    orig_src = int.from_bytes(frame[22:38], "big")
    orig_dst = int.from_bytes(frame[38:54], "big")
    if orig_src == 0 or orig_src >> 120 == 0xFF:
        return None
    if orig_dst >> 120 == 0xFF and type_ != PACKET_TOO_BIG:
        return None
    if _is_icmp6_error(frame):
        return None
    quote = bytes(frame[14 : 14 + min(len(frame) - 14, ERROR_QUOTE)])
    msg = icmp6(src, orig_src, type_, code, param.to_bytes(4, "big") + quote)
    return _frame(ZERO_MAC, ZERO_MAC, IPv6(src, orig_src, IPPROTO_ICMPV6, 64), msg)


def _is_icmp6_error(frame: bytearray) -> bool:
    """Is the (checked) packet an ICMPv6 error?  One whose extension headers cannot be
    walked counts as one: no error is sent about it."""
    try:
        nh, at, _fragment = upper_layer(frame, 14)
    except HeaderError:
        return True
    return nh == IPPROTO_ICMPV6 and at < len(frame) and frame[at] < ERROR_TYPES_BELOW


def decrement_hop_limit(buf: bytearray, l3: int = 14) -> None:
    """Hop limit - 1 (IPv6 has no header checksum to update)."""
    buf[l3 + 7] -= 1
