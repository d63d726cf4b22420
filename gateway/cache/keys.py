"""The cache's match keys, read from a frame with one unpack each, for both address families.

Where this sits: :meth:`gateway.cache.Cache.lookup` inlines the common l4 case
and calls :func:`key_for` for the rest; ``install`` keys an entry with it and
asks :func:`ipv4_slow_path` / :func:`ipv6_slow_path` whether the fast path
would ever look the frame up (a frame it never looks up is not installed).

IPv4 keys read a header without options; IPv6 keys a header followed directly
by TCP, UDP or ICMPv6 (a packet with extension headers takes the stages).
"""

from __future__ import annotations

import struct
from typing import Any, Final

from gateway.effects import L2, L3, L3_6, L4, L4_6, TUN
from gateway.headers import IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP
from gateway.headers import IPV4_WORDS as H10  # (the header checks' one unpack)

# TCP flags that always take the slow path (connection set-up and tear-down).
TCP_SLOW: Final = 0x01 | 0x02 | 0x04

KEY_L2: Final = struct.Struct("14s")
KEY_L3: Final = struct.Struct("14s12x8s")  # MACs+type, source and destination (uRPF reads the source)
KEY_L4: Final = struct.Struct("14s9xs2x8s4s")  # MACs+type, protocol, addresses, ports (or ICMP type..id)
# Outer MACs+type, outer addresses, the GRE header with its key, inner MACs+type (MAC-in-GRE).
KEY_TUN: Final = struct.Struct("14s12x8s8s14s")
KEY_L3_6: Final = struct.Struct("14s8x32s")  # MACs+type, source and destination
KEY_L4_6: Final = struct.Struct("14s6xs1x32s4s")  # MACs+type, next header, addresses, ports
IPPROTO_GRE: Final = 47
IPPROTO_ICMPV6: Final = 58
UPPER6: Final = frozenset((IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMPV6))  # what an IPv6 key may follow


def key_for(mask: int, port: int | None, vlan: int | None, buf: bytes | bytearray) -> tuple[Any, ...]:
    """The match key of ``buf`` for one field set."""
    if mask == L2:
        return (port, vlan, *KEY_L2.unpack_from(buf))
    if mask == L3:
        return (port, vlan, *KEY_L3.unpack_from(buf))
    if mask == TUN:
        return (port, vlan, *KEY_TUN.unpack_from(buf))
    if mask == L3_6:
        return (port, vlan, *KEY_L3_6.unpack_from(buf))
    if mask == L4_6:
        eth, proto, addrs, ports = KEY_L4_6.unpack_from(buf)
        if proto[0] == IPPROTO_ICMPV6:
            ports = bytes(buf[58:60]) + bytes(buf[54:55])  # echo id and type
        return (port, vlan, eth, proto, addrs, ports)
    assert mask == L4
    if len(buf) >= 38:
        eth, proto, addrs, ports = KEY_L4.unpack_from(buf)
    else:  # no room for ports (a bare IPv4 header)
        eth, proto, addrs, ports = bytes(buf[0:14]), bytes(buf[23:24]), bytes(buf[26:34]), bytes(buf[34:38])
    p = proto[0]
    if p == IPPROTO_ICMP:
        ports = bytes(buf[38:40]) + bytes(buf[34:35])  # echo id and type
    elif p != IPPROTO_TCP and p != IPPROTO_UDP:
        ports = b""
    return (port, vlan, eth, proto, addrs, ports)


def ipv4_slow_path(hdr: bytes) -> str | None:
    """Why :meth:`Cache.lookup` would send this IPv4 frame to the stages (None: it would not).

    ``hdr`` is the frame's first bytes as received; the length and checksum
    checks read only the header, so they give lookup's answer."""
    if len(hdr) < 34:
        return "ip-truncated"
    if hdr[14] != 0x45:
        return "ip-options"
    h = H10.unpack_from(hdr, 14)
    s = sum(h)
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    if h[1] < 20 or h[3] & 0x3FFF or s != 0xFFFF:
        return "ip-slow-path"  # a fragment, or a header the checks refuse
    return None


def ipv6_slow_path(buf: bytes | bytearray, n: int) -> str | None:
    """Why lookup sends this IPv6 frame (of ``n`` bytes) to the stages, None when it looks it up:
    a header cut short or longer than the frame, extension headers, an upper-layer header cut
    short, a TCP SYN, FIN or RST."""
    if n < 62 or buf[14] >> 4 != 6 or ((buf[18] << 8) | buf[19]) != n - 54:
        return "ip6-slow-path"
    nh = buf[20]
    if nh not in UPPER6:
        return "ip6-extension-headers"
    if nh == IPPROTO_TCP and (n < 74 or buf[67] & TCP_SLOW):
        return "ip6-slow-path"
    return None
