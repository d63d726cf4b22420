"""The Internet checksum (RFC 1071), its incremental update (RFC 1624) and the IPv4 header
check a router makes (RFC 1812 5.2.2).

Where this sits: below ``headers.py``, which names them too; a module of its own so that it
is compiled (``gateway/native.py``) while the header classes are not -- every routed packet
is checked here, and every translated one updated.
"""

from __future__ import annotations

import struct
from typing import Final

IPV4_MIN: Final = 20
IPV4_WORDS = struct.Struct("!10H")  # an option-less IPv4 header as 16-bit words (its checksum)


def checksum(data: bytes | bytearray | memoryview) -> int:
    """RFC 1071 Internet checksum of ``data``."""
    if len(data) % 2:
        data = bytes(data) + b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def csum_update16(csum: int, old: int, new: int) -> int:
    """RFC 1624 eqn. 3: the checksum after one 16-bit word changed old -> new."""
    total = (~csum & 0xFFFF) + (~old & 0xFFFF) + new
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def csum_update32(csum: int, old: int, new: int) -> int:
    """The checksum after one 32-bit field (an address) changed old -> new."""
    csum = csum_update16(csum, old >> 16, new >> 16)
    return csum_update16(csum, old & 0xFFFF, new & 0xFFFF)


def ipv4_check(buf: bytes | bytearray, off: int) -> str | None:
    """Validate the IPv4 header at ``off``; return a drop reason or None.

    Checks what a router must (RFC 1812 5.2.2): length, version, IHL, total
    length against what arrived, header checksum.
    """
    avail = len(buf) - off
    if avail < IPV4_MIN:
        return "ip-truncated"
    vihl = buf[off]
    if vihl >> 4 != 4:
        return "ip-bad-version"
    ihl = (vihl & 0x0F) * 4
    if ihl < IPV4_MIN:
        return "ip-bad-ihl"
    if ihl > avail:
        return "ip-truncated"
    total = (buf[off + 2] << 8) | buf[off + 3]
    if total < ihl or total > avail:
        return "ip-bad-length"
    if ihl == IPV4_MIN:  # no options (nearly every packet): the ten words summed in place
        s = 0
        for i in range(off, off + IPV4_MIN, 2):
            s += (buf[i] << 8) | buf[i + 1]
        s = (s & 0xFFFF) + (s >> 16)
        s = (s & 0xFFFF) + (s >> 16)
        if s != 0xFFFF:
            return "ip-bad-checksum"
    elif checksum(buf[off : off + ihl]) != 0:
        return "ip-bad-checksum"
    return None
