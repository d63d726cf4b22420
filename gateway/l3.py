"""Packets a router builds itself: ARP requests and replies, ICMP echo replies
and ICMP errors, the fragments of a datagram too big for the next link; and the
in-place TTL decrement of a forwarded packet.

Where this sits: used by the router stages (``dr``, ``sr``); no state here.
Every function returns a complete untagged Ethernet frame (``bytearray``).
"""

from __future__ import annotations

from typing import Final

from gateway.headers import (
    BROADCAST,
    ETH_P_ARP,
    ETH_P_IP,
    IPPROTO_ICMP,
    ZERO_MAC,
    Arp,
    Ethernet,
    Icmp,
    IPv4,
    checksum,
    csum_update16,
)

# RFC 1812 4.3.2.3: an ICMP error carries as much of the offending datagram as
# fits in 576 bytes.
ICMP_ERROR_MAX: Final = 576


def arp_request(src_mac: bytes, src_ip: int, target_ip: int) -> bytearray:
    arp = Arp(Arp.REQUEST, src_mac, src_ip, ZERO_MAC, target_ip)
    return bytearray(Ethernet(BROADCAST, src_mac, ETH_P_ARP).serialize() + arp.serialize())


def arp_reply(src_mac: bytes, src_ip: int, dst_mac: bytes, dst_ip: int) -> bytearray:
    arp = Arp(Arp.REPLY, src_mac, src_ip, dst_mac, dst_ip)
    return bytearray(Ethernet(dst_mac, src_mac, ETH_P_ARP).serialize() + arp.serialize())


def echo_reply(frame: bytearray, ihl: int, total: int) -> bytearray:
    """Turn the echo request in ``frame`` into its reply (addresses swapped, TTL 64).

    The caller re-routes the reply, which rewrites the Ethernet header.
    """
    l3 = 14
    req = frame[l3 : l3 + total]
    icmp = bytearray(req[ihl:])
    icmp[0] = Icmp.ECHO_REPLY
    # Recomputed rather than updated: an all-zero echo would get the checksum
    # 0x0000 from an incremental update, which receivers reject.
    icmp[2] = icmp[3] = 0
    csum = checksum(icmp)
    icmp[2], icmp[3] = csum >> 8, csum & 0xFF
    src = int.from_bytes(req[12:16], "big")
    dst = int.from_bytes(req[16:20], "big")
    ip = IPv4(src=dst, dst=src, proto=IPPROTO_ICMP, ttl=64, tos=req[1])
    return bytearray(Ethernet(ZERO_MAC, ZERO_MAC, ETH_P_IP).serialize() + ip.serialize(len(icmp)) + icmp)


def icmp_error(frame: bytearray, src_ip: int, icmp_type: int, code: int, rest: int = 0) -> bytearray | None:
    """An ICMP error about the IPv4 packet in ``frame``, from ``src_ip``.

    Returns None where RFC 1122 3.2.2 / RFC 1812 4.3.2.7 forbid an error: about
    an ICMP error, a non-first fragment, a broadcast/multicast destination or
    an unspecified/multicast source.
    """
    l3 = 14
    ihl = (frame[l3] & 0x0F) * 4
    orig_src = int.from_bytes(frame[l3 + 12 : l3 + 16], "big")
    orig_dst = int.from_bytes(frame[l3 + 16 : l3 + 20], "big")
    frag_off = ((frame[l3 + 6] << 8) | frame[l3 + 7]) & 0x1FFF
    if frag_off:
        return None
    if orig_src == 0 or orig_src >> 28 == 0xE or orig_src == 0xFFFFFFFF:
        return None
    if orig_dst >> 28 == 0xE or orig_dst == 0xFFFFFFFF:
        return None
    if frame[l3 + 9] == IPPROTO_ICMP:
        itype = frame[l3 + ihl] if len(frame) > l3 + ihl else None
        if itype not in (Icmp.ECHO_REQUEST, Icmp.ECHO_REPLY, 13, 14, 15, 16, 17, 18):
            return None
    total = (frame[l3 + 2] << 8) | frame[l3 + 3]
    quote = bytes(frame[l3 : l3 + min(total, ICMP_ERROR_MAX - 28)])
    icmp = Icmp(icmp_type, code, rest.to_bytes(4, "big")).serialize(quote)  # (rest: a next-hop MTU)
    ip = IPv4(src=src_ip, dst=orig_src, proto=IPPROTO_ICMP, ttl=64)
    return bytearray(Ethernet(ZERO_MAC, ZERO_MAC, ETH_P_IP).serialize() + ip.serialize(len(icmp)) + icmp)


def fragments(frame: bytearray, mtu: int) -> list[bytearray]:
    """The IPv4 datagram in ``frame`` cut into fragments of at most ``mtu`` bytes (RFC 791
    3.2): data in multiples of 8 bytes, each offset from the datagram's own (it may be a
    fragment already), more-fragments on all but the last (which keeps the datagram's), the
    options marked "copied" in every fragment but the first's whole set in the first."""
    ihl = (frame[14] & 0x0F) * 4
    total = (frame[16] << 8) | frame[17]
    head, data = frame[14 : 14 + ihl], frame[14 + ihl : 14 + total]
    copied, at = bytearray(), 20
    while at < ihl and head[at] != 0:  # (0: end of options list)
        size = 1 if head[at] == 1 else max(2, head[at + 1] if at + 1 < ihl else 2)
        if head[at] & 0x80:
            copied += head[at : at + size]
        at += size
    copied += bytes(-len(copied) % 4)
    flags_off = (head[6] << 8) | head[7]
    offset, last_mf = flags_off & 0x1FFF, flags_off & 0x2000
    out: list[bytearray] = []
    at = 0
    while at < len(data):
        h = bytearray(head if not out else head[:20] + copied)
        room = max(8, (mtu - len(h)) & ~7)
        piece = data[at : at + room]
        more = 0x2000 if at + len(piece) < len(data) else last_mf
        h[0] = 0x40 | len(h) // 4
        h[2:4] = (len(h) + len(piece)).to_bytes(2, "big")
        h[6:8] = ((flags_off & 0x4000) | more | (offset + at // 8)).to_bytes(2, "big")
        h[10:12] = b"\0\0"
        h[10:12] = checksum(h).to_bytes(2, "big")
        out.append(bytearray(frame[:14]) + h + piece)
        at += len(piece)
    return out


def decrement_ttl(buf: bytearray, l3: int = 14) -> None:
    """TTL - 1 with the header checksum updated incrementally (RFC 1624)."""
    ttl = buf[l3 + 8]
    old = (ttl << 8) | buf[l3 + 9]
    new = ((ttl - 1) << 8) | buf[l3 + 9]
    csum = csum_update16((buf[l3 + 10] << 8) | buf[l3 + 11], old, new)
    buf[l3 + 8] = ttl - 1
    buf[l3 + 10] = csum >> 8
    buf[l3 + 11] = csum & 0xFF


def ip_checksum_ok(buf: bytearray, l3: int = 14) -> bool:
    ihl = (buf[l3] & 0x0F) * 4
    return checksum(buf[l3 : l3 + ihl]) == 0
