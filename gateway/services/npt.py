"""NPTv6 (RFC 6296): stateless, checksum-neutral translation of IPv6 prefixes on the SR.

Where this sits: the SR's IPv6 walk (``stages/sr.py``) asks :meth:`Npt.inbound`
first, before the services and the FIB, for every IPv6 packet (a destination in
an outside prefix becomes the inside address, and so does the source quoted in
an ICMPv6 error); and :meth:`Npt.outbound` last, once the packet is routed
towards a segment of the SR other than its transit (the inside source becomes
the outside address).  Conntrack and the firewall in between see inside
addresses only, as a tenant has them.

Checksum-neutral (RFC 6296 3.2): besides the prefix, one 16-bit word of the
address changes so that the address's one's-complement sum stays the same; no
TCP, UDP or ICMPv6 checksum needs touching, nor the quoted packet of an
ICMPv6 error.  The word is the one right after a /48 (or shorter) prefix, or
the first word of the interface identifier that is not 0xFFFF after a /64;
an address whose word is 0xFFFF cannot be mapped (RFC 6296 3.5) and is
dropped (``npt-unmappable``).  Prefix lengths are multiples of 16 up to 64.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.headers6 import ip6_str


def _fold(x: int) -> int:
    while x >> 16:
        x = (x & 0xFFFF) + (x >> 16)
    return x


def _words(prefix: int, plen: int) -> list[int]:
    return [(prefix >> (112 - 16 * i)) & 0xFFFF for i in range(plen // 16)]


@dataclass
class NptRule:
    name: str
    inside: int  # prefix (int) and length
    outside: int
    plen: int
    hits_out: int = 0
    hits_in: int = 0
    # One's-complement deltas applied to the adjusted word: inside -> outside and back.
    delta_out: int = field(init=False)
    delta_in: int = field(init=False)
    mask: int = field(init=False)  # the prefix's bits

    def __post_init__(self) -> None:
        s_in = _fold(sum(_words(self.inside, self.plen)))
        s_out = _fold(sum(_words(self.outside, self.plen)))
        self.delta_out = _fold(s_in + (~s_out & 0xFFFF))
        self.delta_in = _fold(s_out + (~s_in & 0xFFFF))
        self.mask = ((1 << self.plen) - 1) << (128 - self.plen)

    def map(self, addr: int, to_outside: bool) -> int | None:
        """``addr`` (in the rule's inside or outside prefix) in the other prefix, or None when
        its adjusted word is 0xFFFF (RFC 6296 3.5: not mappable)."""
        to, delta = (self.outside, self.delta_out) if to_outside else (self.inside, self.delta_in)
        addr = (addr & ~self.mask & ((1 << 128) - 1)) | to
        if self.plen <= 48:
            at = 3
        else:
            at = next((i for i in range(4, 8) if (addr >> (112 - 16 * i)) & 0xFFFF != 0xFFFF), -1)
            if at < 0:
                return None
        shift = 112 - 16 * at
        word = (addr >> shift) & 0xFFFF
        if word == 0xFFFF:
            return None
        new = _fold(word + delta)
        if new == 0xFFFF:
            new = 0  # the one's-complement zero that is not all ones
        return addr & ~(0xFFFF << shift) | (new << shift)


class Npt:
    """The SR's NPTv6 rules (a few: one per tenant prefix, found by a scan)."""

    def __init__(self, rules: list[NptRule]) -> None:
        self.rules = rules
        self.unmappable = 0

    def outbound_rule(self, src: int) -> NptRule | None:
        return next((r for r in self.rules if src & r.mask == r.inside), None)

    def inbound_rule(self, dst: int) -> NptRule | None:
        return next((r for r in self.rules if dst & r.mask == r.outside), None)

    def show(self) -> list[dict[str, object]]:
        return [
            {
                "name": r.name,
                "inside": f"{ip6_str(r.inside)}/{r.plen}",
                "outside": f"{ip6_str(r.outside)}/{r.plen}",
                "translated": {"out": r.hits_out, "in": r.hits_in},
            }
            for r in self.rules
        ]
