"""evi_encap, evi_decap: MAC-in-GRE between sites (DESIGN 1.6).

Where this sits.  ``evi_encap`` takes a frame of an extended instance that
``l2switch`` (known unicast) or ``egress`` (a copy of a broadcast, one per
remote site: head-end replication) sends to an EVI link; it wraps the frame
in an outer IPv4 header (DF set, TTL 64, from this site's tunnel address to
the link's) and a GRE header whose key holds the instance's network id, and
hands the result to the tunnel endpoint (a router on the core port, the
``sr`` stage) as a packet of its own, which routes it into the core (FIB,
ARP).  ``evi_decap`` takes GRE packets for the tunnel address from that
router, checks them, and hands the inner frame to ``l2switch`` as received
on the link it came from, in the instance its network id names.

Both are cacheable: an encapsulated flow becomes an entry that switches the
inner frame and pushes the outer headers (``Effects.push``); a decapsulated
one an entry matched on the outer addresses, the GRE key and the inner MACs
that strips them (``Effects.strip``, the ``tunnel`` subtable).

Exits and drops: ``NEXT`` and ``DROPS`` below.  ``mtu-exceeded``: an inner
frame that does not fit the link's MTU with the 28 bytes of outer IPv4 and
GRE (DF is set, nothing is fragmented).
"""

from __future__ import annotations

from time import monotonic
from typing import Final

from gateway.effects import TUN
from gateway.evi import ETH_P_TEB, GRE, GRE_FLAGS_KEY, IPPROTO_GRE, OUTER_IP, OVERHEAD
from gateway.evi.link import EviLink
from gateway.fields import u32
from gateway.headers import ETH_LEN, checksum, ip_str
from gateway.packet import Packet
from gateway.stages.base import Stage

_ETH_IP: Final = b"\x00" * 12 + b"\x08\x00"  # the routing walk writes the MACs


class EviEncap(Stage):
    name = "evi_encap"
    DROPS = ("mtu-exceeded", "no-link")
    NEXT = ("sr",)

    def __init__(self, ctx):  # type: ignore[no-untyped-def]
        super().__init__(ctx)
        self.encapsulated = 0

    def process(self, pkt: Packet) -> str:
        evi = self.ctx.model.evi
        link: EviLink = pkt.outputs[0][0]  # type: ignore[assignment]
        if evi is None or not link.valid:
            return self.drop(pkt, "no-link", link.name)
        inner = pkt.buf
        size = OVERHEAD + len(inner)
        mtu = link.mtu
        assert mtu is not None  # a link always has one: the smaller of the two sites' core MTUs
        if size > mtu:
            link.mtu_drops += 1
            return self.drop(pkt, "mtu-exceeded", f"{len(inner)}-byte frame + {OVERHEAD} > MTU {mtu} to {link.name}")
        netid = pkt.instance.netid  # type: ignore[union-attr]
        ip = bytearray(OUTER_IP)
        ip[0] = 0x45
        ip[2] = size >> 8
        ip[3] = size & 0xFF
        ip[6] = 0x40  # DF
        ip[8] = 64
        ip[9] = IPPROTO_GRE
        ip[12:16] = evi.address.to_bytes(4, "big")
        ip[16:20] = link.address.to_bytes(4, "big")
        c = checksum(ip)
        ip[10] = c >> 8
        ip[11] = c & 0xFF
        pkt.buf = bytearray(_ETH_IP) + ip + GRE.pack(GRE_FLAGS_KEY, ETH_P_TEB, netid << 8) + inner  # type: ignore[operator]
        fx = pkt.fx
        if fx is not None:
            fx.push = ETH_LEN + OVERHEAD
            fx.max_len = mtu - OVERHEAD
            fx.depend(link, "valid")
        pkt.router = evi.router
        pkt.rport = evi.rport
        pkt.originated = True
        pkt.outputs = []
        link.tx += 1
        self.encapsulated += 1
        if pkt.trace is not None:
            pkt.note(self.name, f"network id {netid} to {link.name} (site {link.site})")
        return "sr"

    def counters(self) -> dict:  # type: ignore[type-arg]
        out = super().counters()
        out["encapsulated"] = self.encapsulated
        return out


class EviDecap(Stage):
    name = "evi_decap"
    DROPS = (
        "not-a-neighbour",  # GRE from an address that is no EVI link of ours
        "gre-truncated",
        "gre-bad-header",  # flags other than the key bit, or a GRE version other than 0
        "gre-not-teb",  # a protocol other than 0x6558 (Transparent Ethernet Bridging)
        "unknown-network-id",  # a key that names no instance extended here
        "not-carried",  # a network id the link does not carry (the sender extends what we do not share)
        "inner-truncated",  # less than an Ethernet header inside
    )
    NEXT = ("l2switch",)

    def __init__(self, ctx):  # type: ignore[no-untyped-def]
        super().__init__(ctx)
        self.decapsulated = 0

    def process(self, pkt: Packet) -> str:
        evi = self.ctx.model.evi
        buf = pkt.buf
        src = u32(buf, 26)
        link = evi.links.get(src) if evi is not None else None
        if link is None:
            return self.drop(pkt, "not-a-neighbour", ip_str(src))
        off = ETH_LEN + (buf[14] & 0x0F) * 4
        if len(buf) < off + GRE.size:
            return self.drop(pkt, "gre-truncated", f"{len(buf) - off} bytes of GRE")
        flags, proto, key = GRE.unpack_from(buf, off)
        if flags != GRE_FLAGS_KEY:
            return self.drop(pkt, "gre-bad-header", f"flags/version {flags:#06x}")
        if proto != ETH_P_TEB:
            return self.drop(pkt, "gre-not-teb", f"protocol {proto:#06x}")
        netid = key >> 8
        inst = evi.netids.get(netid)  # type: ignore[union-attr]
        if inst is None:
            return self.drop(pkt, "unknown-network-id", str(netid))
        if netid not in link.netids:
            return self.drop(pkt, "not-carried", f"network id {netid} from {link.name}")
        start = off + GRE.size
        if len(buf) - start < ETH_LEN:
            return self.drop(pkt, "inner-truncated", f"{len(buf) - start} bytes")
        fx = pkt.fx
        if fx is not None:
            fx.read(TUN)
            fx.strip = start
            fx.depend(link, "valid")
        inner = pkt.buf = buf[start:]
        if len(inner) >= 42 and inner[12] == 0x08 and inner[13] == 0x06:
            # A remote host's ARP: its address for ARP flood suppression (l2switch answers for it).
            spa = int.from_bytes(inner[28:32], "big")
            if spa:
                evi.learn_arp(netid, spa, bytes(inner[22:28]), monotonic())  # type: ignore[union-attr]
        pkt.in_port = link  # type: ignore[assignment]
        pkt.vlan = None
        pkt.instance = inst
        pkt.router = None
        pkt.rport = None
        link.rx += 1
        self.decapsulated += 1
        if pkt.trace is not None:
            pkt.note(self.name, f"from {link.name} (site {link.site}) network id {netid} -> instance {inst.name}")
        return "l2switch"

    def counters(self) -> dict:  # type: ignore[type-arg]
        out = super().counters()
        out["decapsulated"] = self.decapsulated
        return out
