"""Header codecs: Ethernet, 802.1Q, ARP, IPv4, ICMP, UDP, TCP.

Where this sits: every stage reads and writes headers through this module.
Each header class has one precompiled ``struct.Struct`` (``_PACK``), a
``parser(buf)`` classmethod returning ``(header, rest)`` and ``serialize()``
returning bytes.  The classes are for building packets the gateway originates
(ARP replies, ICMP errors) and for tests; the forwarding path reads fields in
place with the ``*_AT`` structs and the helpers at the bottom, so that a
forwarded packet is never decoded into objects.

Parsers raise :class:`HeaderError` with a short reason that doubles as a drop
reason name.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from typing import Final

# The checksums and the IPv4 header check live in a module of their own, which is compiled
# (gateway/native.py): every routed packet takes them.  Named here too, where they belong.
from gateway.checksums import IPV4_MIN as IPV4_MIN
from gateway.checksums import IPV4_WORDS as IPV4_WORDS
from gateway.checksums import checksum as checksum
from gateway.checksums import csum_update16 as csum_update16
from gateway.checksums import csum_update32 as csum_update32
from gateway.checksums import ipv4_check as ipv4_check

ETH_P_IP: Final = 0x0800
ETH_P_ARP: Final = 0x0806
ETH_P_8021Q: Final = 0x8100
ETH_P_IPV6: Final = 0x86DD

IPPROTO_ICMP: Final = 1
IPPROTO_TCP: Final = 6
IPPROTO_UDP: Final = 17

# UDP ports of the protocols the gateway itself speaks.
BFD_PORT: Final = 3784  # RFC 5881 single-hop BFD control
HELLO_PORT: Final = 3799  # not BFD: the HA agents' hellos to each other (which addresses each holds)

BROADCAST: Final = b"\xff\xff\xff\xff\xff\xff"
ZERO_MAC: Final = b"\x00\x00\x00\x00\x00\x00"

ETH_LEN: Final = 14
VLAN_LEN: Final = 4
ARP_LEN: Final = 28
ICMP_LEN: Final = 8
UDP_LEN: Final = 8
TCP_MIN: Final = 20

# In-place accessors for the forwarding path.
ETHERTYPE_AT = struct.Struct("!H")  # at offset 12
IPV4_AT = struct.Struct("!BBHHHBBH4s4s")
U16_AT = struct.Struct("!H")
U32_AT = struct.Struct("!I")
PORTS_AT = struct.Struct("!HH")


class HeaderError(ValueError):
    """A header that cannot be parsed; ``reason`` is a drop-reason name."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def mac_str(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


def mac_bytes(text: str) -> bytes:
    parts = text.split(":")
    if len(parts) != 6:
        raise ValueError(f"{text!r} is not a MAC address (expected like 02:00:00:00:00:01)")
    try:
        raw = bytes(int(p, 16) for p in parts)
    except ValueError:
        raise ValueError(f"{text!r} is not a MAC address (expected like 02:00:00:00:00:01)") from None
    return raw


def ip_str(addr: int | bytes) -> str:
    if isinstance(addr, (bytes, bytearray)):
        addr = int.from_bytes(addr, "big")
    return str(ipaddress.IPv4Address(addr))


def ip_int(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def pseudo_header(src: bytes, dst: bytes, proto: int, length: int) -> bytes:
    return src + dst + struct.pack("!BBH", 0, proto, length)


@dataclass
class Ethernet:
    """Ethernet II header.

    ========== =====================
    Attribute  Description
    ========== =====================
    dst        destination MAC (6 bytes)
    src        source MAC (6 bytes)
    ethertype  EtherType after any VLAN tag
    vlan       802.1Q VLAN id, or None when untagged
    pcp        802.1Q priority (0 when untagged)
    ========== =====================
    """

    dst: bytes
    src: bytes
    ethertype: int
    vlan: int | None = None
    pcp: int = 0

    _PACK = struct.Struct("!6s6sH")
    _TAG = struct.Struct("!HH")

    @classmethod
    def parser(cls, buf: bytes | bytearray | memoryview) -> tuple[Ethernet, memoryview]:
        mv = memoryview(buf)
        if len(mv) < ETH_LEN:
            raise HeaderError("runt", f"{len(mv)} bytes")
        dst, src, ethertype = cls._PACK.unpack_from(mv)
        if ethertype == ETH_P_8021Q:
            if len(mv) < ETH_LEN + VLAN_LEN:
                raise HeaderError("runt", "truncated 802.1Q tag")
            tci, ethertype = cls._TAG.unpack_from(mv, ETH_LEN)
            return cls(dst, src, ethertype, tci & 0x0FFF, tci >> 13), mv[ETH_LEN + VLAN_LEN :]
        return cls(dst, src, ethertype), mv[ETH_LEN:]

    def serialize(self) -> bytes:
        if self.vlan is None:
            return self._PACK.pack(self.dst, self.src, self.ethertype)
        return self._PACK.pack(self.dst, self.src, ETH_P_8021Q) + self._TAG.pack(
            (self.pcp << 13) | self.vlan, self.ethertype
        )


@dataclass
class Arp:
    """ARP for IPv4 over Ethernet (RFC 826).

    ========== =====================
    Attribute  Description
    ========== =====================
    op         1 request, 2 reply
    sha, spa   sender MAC (bytes), sender IPv4 (int)
    tha, tpa   target MAC (bytes), target IPv4 (int)
    ========== =====================
    """

    op: int
    sha: bytes
    spa: int
    tha: bytes
    tpa: int

    REQUEST = 1
    REPLY = 2
    _PACK = struct.Struct("!HHBBH6sI6sI")

    @classmethod
    def parser(cls, buf: bytes | bytearray | memoryview) -> tuple[Arp, memoryview]:
        mv = memoryview(buf)
        if len(mv) < ARP_LEN:
            raise HeaderError("arp-truncated", f"{len(mv)} bytes")
        htype, ptype, hlen, plen, op, sha, spa, tha, tpa = cls._PACK.unpack_from(mv)
        if htype != 1 or ptype != ETH_P_IP or hlen != 6 or plen != 4:
            raise HeaderError("arp-unsupported", f"htype {htype} ptype {ptype:#x}")
        return cls(op, sha, spa, tha, tpa), mv[ARP_LEN:]

    def serialize(self) -> bytes:
        return self._PACK.pack(1, ETH_P_IP, 6, 4, self.op, self.sha, self.spa, self.tha, self.tpa)


@dataclass
class IPv4:
    """IPv4 header (RFC 791).  Addresses are ints.

    ========== =====================
    Attribute  Description
    ========== =====================
    src, dst   addresses (int)
    proto      protocol number
    ttl        time to live
    total_len  total length; 0 means "compute on serialize"
    ident      identification
    flags_frag flags (3 bits) and fragment offset (13 bits)
    tos        type of service / DSCP+ECN
    options    raw options (multiple of 4 bytes)
    ========== =====================
    """

    src: int
    dst: int
    proto: int
    ttl: int = 64
    total_len: int = 0
    ident: int = 0
    flags_frag: int = 0
    tos: int = 0
    options: bytes = b""
    csum: int = 0

    _PACK = struct.Struct("!BBHHHBBHII")

    @property
    def header_len(self) -> int:
        return IPV4_MIN + len(self.options)

    @classmethod
    def parser(cls, buf: bytes | bytearray | memoryview) -> tuple[IPv4, memoryview]:
        mv = memoryview(buf)
        reason = ipv4_check(buf if not isinstance(buf, memoryview) else bytes(buf), 0)
        if reason:
            raise HeaderError(reason)
        vihl, tos, total, ident, ff, ttl, proto, csum, src, dst = cls._PACK.unpack_from(mv)
        ihl = (vihl & 0x0F) * 4
        hdr = cls(src, dst, proto, ttl, total, ident, ff, tos, bytes(mv[IPV4_MIN:ihl]), csum)
        return hdr, mv[ihl:total]

    def serialize(self, payload_len: int = 0) -> bytes:
        total = self.total_len or self.header_len + payload_len
        ihl = self.header_len // 4
        raw = bytearray(
            self._PACK.pack(
                0x40 | ihl,
                self.tos,
                total,
                self.ident,
                self.flags_frag,
                self.ttl,
                self.proto,
                0,
                self.src,
                self.dst,
            )
        )
        raw += self.options
        struct.pack_into("!H", raw, 10, checksum(raw))
        return bytes(raw)


@dataclass
class Icmp:
    """ICMP header (RFC 792): type, code and the 4-byte rest of header."""

    type: int
    code: int
    rest: bytes = b"\x00\x00\x00\x00"

    ECHO_REPLY = 0
    DEST_UNREACH = 3
    ECHO_REQUEST = 8
    TIME_EXCEEDED = 11
    _PACK = struct.Struct("!BBH4s")

    @classmethod
    def parser(cls, buf: bytes | bytearray | memoryview) -> tuple[Icmp, memoryview]:
        mv = memoryview(buf)
        if len(mv) < ICMP_LEN:
            raise HeaderError("icmp-truncated", f"{len(mv)} bytes")
        t, c, _csum, rest = cls._PACK.unpack_from(mv)
        return cls(t, c, rest), mv[ICMP_LEN:]

    def serialize(self, payload: bytes = b"") -> bytes:
        raw = bytearray(self._PACK.pack(self.type, self.code, 0, self.rest)) + payload
        struct.pack_into("!H", raw, 2, checksum(raw))
        return bytes(raw)


@dataclass
class Udp:
    """UDP header (RFC 768)."""

    sport: int
    dport: int
    length: int = 0
    csum: int = 0

    _PACK = struct.Struct("!HHHH")

    @classmethod
    def parser(cls, buf: bytes | bytearray | memoryview) -> tuple[Udp, memoryview]:
        mv = memoryview(buf)
        if len(mv) < UDP_LEN:
            raise HeaderError("udp-truncated", f"{len(mv)} bytes")
        sport, dport, length, csum = cls._PACK.unpack_from(mv)
        return cls(sport, dport, length, csum), mv[UDP_LEN:]

    def serialize(self, payload: bytes, src: int, dst: int) -> bytes:
        length = UDP_LEN + len(payload)
        raw = bytearray(self._PACK.pack(self.sport, self.dport, length, 0)) + payload
        if dst > 0xFFFFFFFF:  # IPv6 (RFC 8200 8.1): 128-bit addresses, a 32-bit length
            pseudo = src.to_bytes(16, "big") + dst.to_bytes(16, "big") + struct.pack("!I3xB", length, IPPROTO_UDP)
        else:
            pseudo = pseudo_header(src.to_bytes(4, "big"), dst.to_bytes(4, "big"), IPPROTO_UDP, length)
        csum = checksum(pseudo + raw) or 0xFFFF
        struct.pack_into("!H", raw, 6, csum)
        return bytes(raw)


@dataclass
class Tcp:
    """TCP header (RFC 9293); options kept raw."""

    sport: int
    dport: int
    seq: int = 0
    ack: int = 0
    flags: int = 0
    window: int = 65535
    csum: int = 0
    urg: int = 0
    options: bytes = b""

    FIN = 0x01
    SYN = 0x02
    RST = 0x04
    PSH = 0x08
    ACK = 0x10
    _PACK = struct.Struct("!HHIIBBHHH")

    @classmethod
    def parser(cls, buf: bytes | bytearray | memoryview) -> tuple[Tcp, memoryview]:
        mv = memoryview(buf)
        if len(mv) < TCP_MIN:
            raise HeaderError("tcp-truncated", f"{len(mv)} bytes")
        sport, dport, seq, ack, off, flags, win, csum, urg = cls._PACK.unpack_from(mv)
        hlen = (off >> 4) * 4
        if hlen < TCP_MIN or hlen > len(mv):
            raise HeaderError("tcp-bad-offset", f"data offset {hlen}")
        return cls(sport, dport, seq, ack, flags, win, csum, urg, bytes(mv[TCP_MIN:hlen])), mv[hlen:]

    def serialize(self, payload: bytes, src: int, dst: int) -> bytes:
        hlen = TCP_MIN + len(self.options)
        raw = bytearray(
            self._PACK.pack(
                self.sport,
                self.dport,
                self.seq,
                self.ack,
                (hlen // 4) << 4,
                self.flags,
                self.window,
                0,
                self.urg,
            )
        )
        raw += self.options + payload
        s, d = src.to_bytes(4, "big"), dst.to_bytes(4, "big")
        struct.pack_into("!H", raw, 16, checksum(pseudo_header(s, d, IPPROTO_TCP, len(raw)) + raw))
        return bytes(raw)


def describe(frame: bytes | bytearray | memoryview) -> str:
    """A one-line human summary of a frame, for traces and errors."""
    try:
        eth, rest = Ethernet.parser(frame)
    except HeaderError as exc:
        return f"unparsable frame ({exc.reason})"
    tag = f" vlan {eth.vlan}" if eth.vlan is not None else ""
    head = f"{mac_str(eth.src)} > {mac_str(eth.dst)}{tag}"
    try:
        if eth.ethertype == ETH_P_ARP:
            arp, _ = Arp.parser(rest)
            if arp.op == Arp.REQUEST:
                return f"{head} arp who-has {ip_str(arp.tpa)} tell {ip_str(arp.spa)}"
            return f"{head} arp {ip_str(arp.spa)} is-at {mac_str(arp.sha)}"
        if eth.ethertype == ETH_P_IP:
            ip, l4 = IPv4.parser(rest)
            line = f"{head} ip {ip_str(ip.src)} > {ip_str(ip.dst)} ttl {ip.ttl}"
            if ip.proto == IPPROTO_ICMP:
                icmp, _ = Icmp.parser(l4)
                return f"{line} icmp type {icmp.type} code {icmp.code}"
            if ip.proto in (IPPROTO_TCP, IPPROTO_UDP) and len(l4) >= 4:
                sport, dport = PORTS_AT.unpack_from(l4)
                name = "tcp" if ip.proto == IPPROTO_TCP else "udp"
                return f"{line} {name} {sport} > {dport}"
            return f"{line} proto {ip.proto}"
    except HeaderError as exc:
        return f"{head} malformed ({exc.reason})"
    return f"{head} ethertype {eth.ethertype:#06x}"
