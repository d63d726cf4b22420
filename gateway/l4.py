"""Flow tuples and in-place address/port rewrites with incremental checksums.

Where this sits: used by the SR's services (``services/``): conntrack reads
the 5-tuple of each packet, NAT rewrites addresses and ports.  A tuple is a
:class:`FlowTuple` ``(proto, src, sport, dst, dport)`` with int addresses: a
named tuple, so it hashes (and compares) as the plain tuple does.  For ICMP echo the identifier stands in for
both ports (RFC 5508: the identifier is translated like a port).

Rewrites update the IPv4 header checksum and the L4 checksum incrementally
(RFC 1624): TCP and UDP checksums cover the addresses through the pseudo
header, ICMP's does not.  A UDP checksum of 0 means "none" and stays 0.
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple

from gateway.fields import u32
from gateway.headers import IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, checksum
from gateway.headers6 import IPPROTO_ICMPV6, upper_layer


class FlowTuple(NamedTuple):
    proto: int
    src: int
    sport: int  # for ICMP echo: the identifier
    dst: int
    dport: int  # for ICMP echo: the identifier

    def inverse(self) -> FlowTuple:
        """The tuple of a packet of the other direction."""
        return invert(self)


# Per packet, a tuple is built with tuple.__new__ (a C call): the generated
# FlowTuple(...) constructor is a Python function and costs several times more.
_new: Final = tuple.__new__

# Every port (and echo identifier) as one shared int object, as CPython shares the small
# ints: a tuple refers to these, so a connection's two tuples hold no port objects of their
# own (128 bytes of its 900 less) and comparing a packet's tuple with a stored one finds
# the ports identical without reading them (``edgelab bench scale``, sessions).  A tuple is
# built with ``PORTS[port]`` and ``tuple.__new__``: typed Any (an object to the compiler,
# which would unbox an int read from a list and box a new one).
PORTS: Final[list[Any]] = list(range(65536))


def invert(t: FlowTuple) -> FlowTuple:
    """The tuple of a packet of the other direction (``FlowTuple.inverse``; a plain function
    is a native call from compiled code, a NamedTuple's method is not)."""
    return _new(FlowTuple, (t[0], t[3], PORTS[t[4]], t[1], PORTS[t[2]]))


ICMP_ECHO_REQUEST: Final = 8
ICMP_ECHO_REPLY: Final = 0
ICMP_ERRORS: Final = frozenset({3, 4, 5, 11, 12})

# What a tuple extraction found.
NORMAL: Final = 0
ICMP_ERROR: Final = 1
UNTRACKABLE: Final = 2  # a non-first fragment, or an L4 header cut short


def flow_tuple(buf: bytearray, l3: int = 14) -> tuple[FlowTuple, int]:
    """The 5-tuple of the IPv4 packet at ``l3`` and what kind of packet it is."""
    ihl = (buf[l3] & 0x0F) * 4
    proto = buf[l3 + 9]
    src = u32(buf, l3 + 12)
    dst = u32(buf, l3 + 16)
    if ((buf[l3 + 6] << 8) | buf[l3 + 7]) & 0x1FFF:
        return _new(FlowTuple, (proto, src, 0, dst, 0)), UNTRACKABLE
    l4 = l3 + ihl
    end = l3 + ((buf[l3 + 2] << 8) | buf[l3 + 3])
    if proto == IPPROTO_TCP or proto == IPPROTO_UDP:
        if end - l4 < (20 if proto == IPPROTO_TCP else 8):
            return _new(FlowTuple, (proto, src, 0, dst, 0)), UNTRACKABLE
        return _new(
            FlowTuple, (proto, src, PORTS[(buf[l4] << 8) | buf[l4 + 1]], dst, PORTS[(buf[l4 + 2] << 8) | buf[l4 + 3]])
        ), NORMAL
    if proto == IPPROTO_ICMP:
        if end - l4 < 8:
            return _new(FlowTuple, (proto, src, 0, dst, 0)), UNTRACKABLE
        itype = buf[l4]
        if itype == ICMP_ECHO_REQUEST or itype == ICMP_ECHO_REPLY:
            ident = (buf[l4 + 4] << 8) | buf[l4 + 5]
            return _new(FlowTuple, (proto, src, PORTS[ident], dst, PORTS[ident])), NORMAL
        if itype in ICMP_ERRORS:
            return _new(FlowTuple, (proto, src, 0, dst, 0)), ICMP_ERROR
    return _new(FlowTuple, (proto, src, 0, dst, 0)), NORMAL


def inner_tuple(buf: bytearray, l3: int = 14) -> tuple[FlowTuple, int] | None:
    """The tuple of the packet quoted in the ICMP error at ``l3``, and its offset."""
    ihl = (buf[l3] & 0x0F) * 4
    inner = l3 + ihl + 8
    if len(buf) < inner + 20 or buf[inner] >> 4 != 4:
        return None
    iihl = (buf[inner] & 0x0F) * 4
    if iihl < 20 or len(buf) < inner + iihl:
        return None  # the quoted header is malformed or cut short: nothing to relate it to
    proto = buf[inner + 9]
    src = u32(buf, inner + 12)
    dst = u32(buf, inner + 16)
    l4 = inner + iihl
    if proto in (IPPROTO_TCP, IPPROTO_UDP) and len(buf) >= l4 + 4:
        return _new(
            FlowTuple, (proto, src, PORTS[(buf[l4] << 8) | buf[l4 + 1]], dst, PORTS[(buf[l4 + 2] << 8) | buf[l4 + 3]])
        ), inner
    if proto == IPPROTO_ICMP and len(buf) >= l4 + 6:
        ident = (buf[l4 + 4] << 8) | buf[l4 + 5]
        return _new(FlowTuple, (proto, src, PORTS[ident], dst, PORTS[ident])), inner
    return _new(FlowTuple, (proto, src, 0, dst, 0)), inner


def rewrite(buf: bytearray, l3: int, src: bool, new_ip: int, new_port: int) -> None:
    """Set the source (``src``) or destination address and port of the packet at ``l3``.

    Checksums are updated incrementally (RFC 1624 eqn. 3), the address's two words then the
    port, as ``csum_update16`` would in turn; written out here because every translated
    packet on the slow path comes through (a UDP checksum of 0, none, stays 0)."""
    ihl = (buf[l3] & 0x0F) * 4
    proto = buf[l3 + 9]
    a_off = l3 + (12 if src else 16)
    old_ip = u32(buf, a_off)
    l4 = l3 + ihl
    whole = len(buf) - l4
    frag_first = not (((buf[l3 + 6] << 8) | buf[l3 + 7]) & 0x1FFF)
    if proto == IPPROTO_TCP:
        co = l4 + 16
    elif proto == IPPROTO_UDP:
        co = l4 + 6
    else:
        co = l4 + 2
    l4_csum = frag_first and (proto == IPPROTO_TCP or proto == IPPROTO_UDP) and whole >= co - l4 + 2
    if old_ip != new_ip:
        buf[a_off : a_off + 4] = new_ip.to_bytes(4, "big")
        # The address's words out (one's complement: ~old), the new ones in.
        delta = (~old_ip >> 16 & 0xFFFF) + (old_ip & 0xFFFF ^ 0xFFFF) + (new_ip >> 16) + (new_ip & 0xFFFF)
        t = (((buf[l3 + 10] << 8) | buf[l3 + 11]) ^ 0xFFFF) + delta
        t = (t & 0xFFFF) + (t >> 16)  # (five words at most: two folds carry everything)
        t = (t & 0xFFFF) + (t >> 16)
        c = t ^ 0xFFFF
        buf[l3 + 10], buf[l3 + 11] = c >> 8, c & 0xFF
        if l4_csum:
            old = (buf[co] << 8) | buf[co + 1]
            if not (proto == IPPROTO_UDP and old == 0):
                t = (old ^ 0xFFFF) + delta
                t = (t & 0xFFFF) + (t >> 16)
                t = (t & 0xFFFF) + (t >> 16)
                c = t ^ 0xFFFF
                if proto == IPPROTO_UDP and c == 0:
                    c = 0xFFFF
                buf[co], buf[co + 1] = c >> 8, c & 0xFF
    if not frag_first:
        return
    if proto == IPPROTO_TCP or proto == IPPROTO_UDP:
        p_off = l4 + (0 if src else 2)
        if whole < p_off - l4 + 2:
            return
    elif proto == IPPROTO_ICMP and whole >= 6 and buf[l4] in (ICMP_ECHO_REQUEST, ICMP_ECHO_REPLY):
        p_off = l4 + 4  # the echo identifier, for both directions
    else:
        return
    old_port = (buf[p_off] << 8) | buf[p_off + 1]
    if old_port == new_port:
        return
    buf[p_off], buf[p_off + 1] = new_port >> 8, new_port & 0xFF
    if whole < co - l4 + 2:
        return
    old = (buf[co] << 8) | buf[co + 1]
    if proto == IPPROTO_UDP and old == 0:
        return
    t = (old ^ 0xFFFF) + (old_port ^ 0xFFFF) + new_port
    t = (t & 0xFFFF) + (t >> 16)
    t = (t & 0xFFFF) + (t >> 16)
    c = t ^ 0xFFFF
    if proto == IPPROTO_UDP and c == 0:
        c = 0xFFFF
    buf[co], buf[co + 1] = c >> 8, c & 0xFF


def fix_icmp_error(buf: bytearray, l3: int, inner: int) -> None:
    """After rewriting the quoted packet: its header checksum, then the ICMP checksum."""
    iihl = (buf[inner] & 0x0F) * 4
    buf[inner + 10] = buf[inner + 11] = 0
    c = checksum(buf[inner : inner + iihl])
    buf[inner + 10], buf[inner + 11] = c >> 8, c & 0xFF
    ihl = (buf[l3] & 0x0F) * 4
    l4 = l3 + ihl
    end = l3 + ((buf[l3 + 2] << 8) | buf[l3 + 3])
    buf[l4 + 2] = buf[l4 + 3] = 0
    c = checksum(buf[l4:end])
    buf[l4 + 2], buf[l4 + 3] = c >> 8, c & 0xFF


def tcp_flags(buf: bytearray, l3: int = 14) -> int:
    return buf[l3 + (buf[l3] & 0x0F) * 4 + 13]


ICMP6_ECHO_REQUEST, ICMP6_ECHO_REPLY = 128, 129
ICMP6_ERRORS: Final = frozenset({1, 2, 3, 4})


def flow_tuple6(buf: bytearray, l3: int = 14) -> tuple[FlowTuple, int, int]:
    """The 5-tuple of the (checked, walkable) IPv6 packet at ``l3``, what kind of packet it
    is, and the offset of its upper-layer header.  A fragment is untrackable (the gateway
    does not reassemble); an ICMPv6 echo's identifier stands in for both ports."""
    src = int.from_bytes(buf[l3 + 8 : l3 + 24], "big")
    dst = int.from_bytes(buf[l3 + 24 : l3 + 40], "big")
    proto, l4, fragment = upper_layer(buf, l3)
    if fragment:
        return _new(FlowTuple, (proto, src, 0, dst, 0)), UNTRACKABLE, l4
    end = l3 + 40 + ((buf[l3 + 4] << 8) | buf[l3 + 5])
    if proto == IPPROTO_TCP or proto == IPPROTO_UDP:
        if end - l4 < (20 if proto == IPPROTO_TCP else 8):
            return _new(FlowTuple, (proto, src, 0, dst, 0)), UNTRACKABLE, l4
        sport, dport = (buf[l4] << 8) | buf[l4 + 1], (buf[l4 + 2] << 8) | buf[l4 + 3]
        return _new(FlowTuple, (proto, src, PORTS[sport], dst, PORTS[dport])), NORMAL, l4
    if proto == IPPROTO_ICMPV6:
        if end - l4 < 8:
            return _new(FlowTuple, (proto, src, 0, dst, 0)), UNTRACKABLE, l4
        itype = buf[l4]
        if itype == ICMP6_ECHO_REQUEST or itype == ICMP6_ECHO_REPLY:
            ident = (buf[l4 + 4] << 8) | buf[l4 + 5]
            return _new(FlowTuple, (proto, src, PORTS[ident], dst, PORTS[ident])), NORMAL, l4
        if itype in ICMP6_ERRORS:
            return _new(FlowTuple, (proto, src, 0, dst, 0)), ICMP_ERROR, l4
    return _new(FlowTuple, (proto, src, 0, dst, 0)), NORMAL, l4


def inner_tuple6(buf: bytearray, l4: int) -> FlowTuple | None:
    """The tuple of the IPv6 packet quoted in the ICMPv6 error at ``l4`` (its header followed
    directly by TCP, UDP or ICMPv6: a quote with extension headers relates to nothing)."""
    inner = l4 + 8
    if len(buf) < inner + 40 or buf[inner] >> 4 != 6:
        return None
    proto = buf[inner + 6]
    src = int.from_bytes(buf[inner + 8 : inner + 24], "big")
    dst = int.from_bytes(buf[inner + 24 : inner + 40], "big")
    at = inner + 40
    if proto in (IPPROTO_TCP, IPPROTO_UDP) and len(buf) >= at + 4:
        return _new(
            FlowTuple, (proto, src, PORTS[(buf[at] << 8) | buf[at + 1]], dst, PORTS[(buf[at + 2] << 8) | buf[at + 3]])
        )
    if proto == IPPROTO_ICMPV6 and len(buf) >= at + 6 and buf[at] in (ICMP6_ECHO_REQUEST, ICMP6_ECHO_REPLY):
        ident = (buf[at + 4] << 8) | buf[at + 5]
        return _new(FlowTuple, (proto, src, PORTS[ident], dst, PORTS[ident]))
    return None
