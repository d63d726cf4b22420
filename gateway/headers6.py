"""IPv6 header codecs: the IPv6 header, its extension-header chain, ICMPv6 and
neighbour discovery (NS/NA), in the style of ``headers.py``.

Where this sits: the second address family's codecs, for the stages that will
carry IPv6 (DESIGN 1.2: both families go through the same stages).  Nothing in
the forwarding path uses them yet.  Every way a header can be bad has a named
reason (a :class:`HeaderError`), as the IPv4 ones do, so a stage can drop and
count it.

Addresses are 128-bit ints, as IPv4 addresses are 32-bit ones.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from typing import Final

from gateway.headers import HeaderError, checksum

IPPROTO_ICMPV6: Final = 58
IPV6_LEN: Final = 40
# Extension headers a router walks past (RFC 8200 4.1); ESP (50) ends the walk: what follows is opaque.
HOPOPTS, ROUTING, FRAGMENT, DSTOPTS, AH, NO_NEXT = 0, 43, 44, 60, 51, 59
EXTENSIONS = frozenset((HOPOPTS, ROUTING, FRAGMENT, DSTOPTS, AH))
MAX_EXTENSIONS: Final = 8  # a longer chain is refused: the walk is bounded whatever the packet says

ND_NS, ND_NA, ND_RS, ND_RA = 135, 136, 133, 134
ECHO_REQUEST6, ECHO_REPLY6 = 128, 129
OPT_SOURCE_LL, OPT_TARGET_LL = 1, 2
NA_ROUTER, NA_SOLICITED, NA_OVERRIDE = 0x80000000, 0x40000000, 0x20000000


def ip6_int(text: str) -> int:
    return int(ipaddress.IPv6Address(text))


def ip6_str(addr: int) -> str:
    return str(ipaddress.IPv6Address(addr))


def addr_str(addr: int) -> str:
    """An address of either family as an int: IPv6 addresses the gateway forwards are never in
    ::/96 (the IPv6 walk refuses those as ``not-routable``), so every one is past 32 bits."""
    return str(ipaddress.IPv4Address(addr)) if addr <= 0xFFFFFFFF else ip6_str(addr)


ALL_NODES: Final = 0xFF02 << 112 | 1
ALL_ROUTERS: Final = 0xFF02 << 112 | 2


def solicited_node(addr: int) -> int:
    """ff02::1:ffXX:XXXX, the group a neighbour solicitation for ``addr`` goes to (RFC 4291 2.7.1)."""
    return ip6_int("ff02::1:ff00:0") | (addr & 0xFFFFFF)


def multicast_mac(group: int) -> bytes:
    """33:33 and the group's last 32 bits (RFC 2464 7)."""
    return b"\x33\x33" + (group & 0xFFFFFFFF).to_bytes(4, "big")


@dataclass
class IPv6:
    """IPv6 header (RFC 8200).

    =============  =====================================
    Attribute      Description
    =============  =====================================
    src, dst       addresses (int)
    next_header    the header after this one
    hop_limit      hop limit
    payload_len    payload length; 0 means "compute on serialize"
    traffic_class  DSCP + ECN
    flow_label     flow label (20 bits)
    =============  =====================================
    """

    src: int
    dst: int
    next_header: int
    hop_limit: int = 64
    payload_len: int = 0
    traffic_class: int = 0
    flow_label: int = 0

    _PACK = struct.Struct("!IHBB16s16s")

    @classmethod
    def parser(cls, buf: bytes | bytearray | memoryview) -> tuple[IPv6, memoryview]:
        mv = memoryview(buf)
        reason = ipv6_check(mv, 0)
        if reason:
            raise HeaderError(reason)
        vtf, plen, nh, hlim, src, dst = cls._PACK.unpack_from(mv)
        hdr = cls(int.from_bytes(src, "big"), int.from_bytes(dst, "big"), nh, hlim, plen, (vtf >> 20) & 0xFF,
                  vtf & 0xFFFFF)  # fmt: skip
        return hdr, mv[IPV6_LEN : IPV6_LEN + plen]

    def serialize(self, payload_len: int = 0) -> bytes:
        vtf = (6 << 28) | (self.traffic_class << 20) | self.flow_label
        return self._PACK.pack(vtf, self.payload_len or payload_len, self.next_header, self.hop_limit,
                               self.src.to_bytes(16, "big"), self.dst.to_bytes(16, "big"))  # fmt: skip


def ipv6_check(buf: bytes | bytearray | memoryview, off: int) -> str | None:
    """Validate the IPv6 header at ``off``; return a drop reason or None (there is no
    header checksum: length and version are what a router can check)."""
    avail = len(buf) - off
    if avail < IPV6_LEN:
        return "ip6-truncated"
    if buf[off] >> 4 != 6:
        return "ip6-bad-version"
    if ((buf[off + 4] << 8) | buf[off + 5]) > avail - IPV6_LEN:
        return "ip6-bad-length"
    return None


def upper_layer(buf: bytes | bytearray | memoryview, off: int = 0) -> tuple[int, int, bool]:
    """Walk the extension headers of the (checked) IPv6 header at ``off``: the upper-layer
    protocol, its offset, and whether the packet is a fragment.  Raises :class:`HeaderError`
    for a chain that runs past the payload (``ip6-ext-truncated``), one longer than
    :data:`MAX_EXTENSIONS` (``ip6-ext-chain-too-long``) and a hop-by-hop header anywhere
    but first (``ip6-hbh-not-first``, RFC 8200 4.1)."""
    end = off + IPV6_LEN + ((buf[off + 4] << 8) | buf[off + 5])
    nh, at, fragment = buf[off + 6], off + IPV6_LEN, False
    for n in range(MAX_EXTENSIONS + 1):
        if nh not in EXTENSIONS:
            return nh, at, fragment
        if n == MAX_EXTENSIONS:
            raise HeaderError("ip6-ext-chain-too-long", f"more than {MAX_EXTENSIONS} extension headers")
        if nh == HOPOPTS and n:
            raise HeaderError("ip6-hbh-not-first")
        if at + 8 > end:
            raise HeaderError("ip6-ext-truncated", f"extension header {nh} at {at}, payload ends at {end}")
        if nh == FRAGMENT:
            fragment = True
            size = 8
        elif nh == AH:
            size = (buf[at + 1] + 2) * 4
        else:
            size = (buf[at + 1] + 1) * 8
        if at + size > end:
            raise HeaderError("ip6-ext-truncated", f"extension header {nh} of {size} bytes runs past the payload")
        nh, at = buf[at], at + size
    raise AssertionError("unreachable")  # the loop returns or raises by its last round


def pseudo_header6(src: int, dst: int, length: int, next_header: int) -> bytes:
    return src.to_bytes(16, "big") + dst.to_bytes(16, "big") + struct.pack("!I3xB", length, next_header)


def icmp6(src: int, dst: int, type_: int, code: int, body: bytes) -> bytes:
    """An ICMPv6 message (RFC 4443) with its checksum over the pseudo-header."""
    raw = bytearray(struct.pack("!BBH", type_, code, 0) + body)
    struct.pack_into("!H", raw, 2, checksum(pseudo_header6(src, dst, len(raw), IPPROTO_ICMPV6) + raw))
    return bytes(raw)


def icmp6_check(src: int, dst: int, msg: bytes | bytearray | memoryview) -> str | None:
    if len(msg) < 4:
        return "icmp6-truncated"
    if checksum(pseudo_header6(src, dst, len(msg), IPPROTO_ICMPV6) + bytes(msg)) != 0:
        return "icmp6-bad-checksum"
    return None


@dataclass
class Neighbour:
    """A neighbour solicitation or advertisement (RFC 4861 4.3, 4.4).

    ``flags`` are the advertisement's R/S/O bits (``NA_*``), 0 for a solicitation;
    ``lladdr`` the source (NS) or target (NA) link-layer address option, if any.
    """

    type: int
    target: int
    flags: int = 0
    lladdr: bytes | None = None

    @classmethod
    def parser(cls, hop_limit: int, msg: bytes | bytearray | memoryview) -> Neighbour:
        """From a checked ICMPv6 message that arrived with ``hop_limit``: the validity
        checks of RFC 4861 7.1.1/7.1.2 that need no state."""
        if len(msg) < 24:
            raise HeaderError("nd-truncated", f"{len(msg)} bytes")
        type_, code = msg[0], msg[1]
        if type_ not in (ND_NS, ND_NA):
            raise HeaderError("nd-not-neighbour", f"ICMPv6 type {type_}")
        if hop_limit != 255:
            raise HeaderError("nd-bad-hop-limit", f"{hop_limit}: not from a neighbour on the link")
        if code != 0:
            raise HeaderError("nd-bad-code", str(code))
        flags = int.from_bytes(msg[4:8], "big") if type_ == ND_NA else 0
        target = int.from_bytes(msg[8:24], "big")
        if target >> 120 == 0xFF:
            raise HeaderError("nd-multicast-target", ip6_str(target))
        want = OPT_SOURCE_LL if type_ == ND_NS else OPT_TARGET_LL
        lladdr, at = None, 24
        while at < len(msg):
            if at + 2 > len(msg) or msg[at + 1] == 0 or at + msg[at + 1] * 8 > len(msg):
                raise HeaderError("nd-bad-option", f"at byte {at}")
            if msg[at] == want and msg[at + 1] == 1:
                lladdr = bytes(msg[at + 2 : at + 8])
            at += msg[at + 1] * 8
        return cls(type_, target, flags & (NA_ROUTER | NA_SOLICITED | NA_OVERRIDE), lladdr)

    def serialize(self, src: int, dst: int) -> bytes:
        """The whole ICMPv6 message, checksummed for ``src`` -> ``dst``."""
        body = (self.flags if self.type == ND_NA else 0).to_bytes(4, "big") + self.target.to_bytes(16, "big")
        if self.lladdr is not None:
            body += bytes((OPT_SOURCE_LL if self.type == ND_NS else OPT_TARGET_LL, 1)) + self.lladdr
        return icmp6(src, dst, self.type, 0, body)
