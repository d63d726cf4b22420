"""IPv4 fragments put back together before the SR's services see them.

Where this sits: owned by an SR's services (``sr.SrServices.reasm``); the
``sr`` stage hands it every IPv4 fragment before conntrack and NAT, which need
the ports only the first fragment carries (Linux's ``nf_defrag_ipv4`` does the
same before its conntrack).  A fragment is held until its datagram is whole;
the whole datagram then goes on through the walk, and egress cuts it again
into fragments no larger than the largest that arrived (``Packet.frag_mtu``),
so the far side sees fragments as the sender made them, translated.

Bounds and refusals (named drops of the ``sr`` stage): at most
:data:`MAX_DATAGRAMS` datagrams wait at once (``frag-table-full``), none may
pass 65,535 bytes (``frag-too-big``), a fragment but the last must carry a
multiple of 8 bytes (``frag-bad-length``), fragments that overlap end their datagram
(``frag-overlap``: they are how overlapping-fragment attacks rewrite a header
after it was checked), and a datagram not whole within :data:`TIMEOUT` seconds
is dropped and counted (``timeouts``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from gateway.headers import checksum

MAX_DATAGRAMS: Final = 256
TIMEOUT: Final = 2.0
MAX_SIZE: Final = 65535


@dataclass
class _Datagram:
    deadline: float
    head: bytes = b""  # the first fragment's IP header (once it came)
    pieces: dict[int, bytes] = field(default_factory=dict)  # data offset (bytes) -> data
    end: int | None = None  # the data's length, known once the last fragment came
    largest = 0  # the largest fragment (IP header included): what egress cuts again to


class Reassembly:
    def __init__(self) -> None:
        self.pending: dict[tuple[int, int, int, int], _Datagram] = {}
        self.reassembled = 0
        self.timeouts = 0

    def add(self, buf: bytearray, now: float) -> tuple[bytes, int] | str | None:
        """The fragment in ``buf`` (an Ethernet frame, its IPv4 header checked): None while its
        datagram is incomplete, a drop reason, or the whole datagram (IP header and data) and
        the size of its largest fragment."""
        ihl = (buf[14] & 0x0F) * 4
        total = (buf[16] << 8) | buf[17]
        key = (int.from_bytes(buf[26:30], "big"), int.from_bytes(buf[30:34], "big"), buf[23], (buf[18] << 8) | buf[19])
        flags_off = (buf[20] << 8) | buf[21]
        offset, more = (flags_off & 0x1FFF) * 8, bool(flags_off & 0x2000)
        data = bytes(buf[14 + ihl : 14 + total])
        dgram = self.pending.get(key)
        if dgram is None:
            if len(self.pending) >= MAX_DATAGRAMS:
                return "frag-table-full"
            dgram = self.pending[key] = _Datagram(now + TIMEOUT)
        if offset + len(data) > MAX_SIZE - 20 or (more and len(data) % 8):
            del self.pending[key]
            return "frag-too-big" if offset + len(data) > MAX_SIZE - 20 else "frag-bad-length"
        for at, piece in dgram.pieces.items():
            if at < offset + len(data) and offset < at + len(piece):
                del self.pending[key]
                return "frag-overlap"
        if not more:
            if dgram.end is not None or any(at + len(p) > offset + len(data) for at, p in dgram.pieces.items()):
                del self.pending[key]
                return "frag-overlap"  # a second last fragment, or data beyond the end
            dgram.end = offset + len(data)
        elif dgram.end is not None and offset + len(data) > dgram.end:
            del self.pending[key]
            return "frag-overlap"
        dgram.pieces[offset] = data
        dgram.largest = max(dgram.largest, total)
        if offset == 0:
            dgram.head = bytes(buf[14 : 14 + ihl])
        if dgram.end is None or not dgram.head or sum(map(len, dgram.pieces.values())) != dgram.end:
            return None
        del self.pending[key]
        whole = b"".join(dgram.pieces[at] for at in sorted(dgram.pieces))
        head = bytearray(dgram.head)
        head[2:4] = (len(head) + len(whole)).to_bytes(2, "big")
        head[6:8] = (((head[6] << 8) | head[7]) & 0x4000).to_bytes(2, "big")  # no MF, offset 0
        head[10:12] = b"\0\0"
        head[10:12] = checksum(head).to_bytes(2, "big")
        self.reassembled += 1
        return bytes(head) + whole, dgram.largest

    def expire(self, now: float) -> None:
        for key in [k for k, d in self.pending.items() if d.deadline <= now]:
            del self.pending[key]
            self.timeouts += 1

    def show(self) -> dict[str, int]:
        return {"waiting": len(self.pending), "reassembled": self.reassembled, "timeouts": self.timeouts}
