"""l2switch: MAC learning and forwarding inside one EVI service instance.

Where this sits: after ``classify``.  Learns the source MAC against the
(port, VLAN) the frame came in on, then:

- destination is the MAC of the instance's router port -> the router's stage
  (``dr`` or ``sr``);
- broadcast/multicast -> flooded to every other member of the instance; an
  ARP broadcast is also handed to the router, which answers for its address, and so
  is IPv6 multicast to a group the router port listens on (neighbour discovery);
- known unicast -> the learned member; unknown unicast -> flooded;
- a member that is an EVI link (a remote site, ``gateway/evi``) -> ``evi_encap``.

Flooding uses the instance's member list only, so a frame never leaves its
instance.  Across sites (an extended instance's EVI links) only broadcast
goes, once per link; unknown unicast only to the MACs configured for
selective flooding, unknown multicast never; and nothing that came from one
link goes to another (split horizon, also for known unicast: ``split-horizon``).
An ARP request for a remote host the edge learned from the tunnels is
answered here and goes nowhere (ARP flood suppression, ``gateway/evi``).
Where a site has two edges, each extended instance has one appointed
forwarder; the other edge learns the instance's frames and drops them
(``not-appointed-forwarder``).  Drops: ``multicast-source``, ``same-segment`` (the destination
lives where the frame came from), ``no-other-member`` (a flood with nowhere
to go), ``split-horizon``, ``arp-spoofed`` (an ARP broadcast from a host claiming the router
port's address: never flooded).
"""

from __future__ import annotations

from time import monotonic

from gateway.headers import BROADCAST, ETH_P_ARP, ip_str, mac_str
from gateway.l3 import arp_reply
from gateway.packet import Packet
from gateway.stages.base import DONE, Context, Stage


class L2Switch(Stage):
    name = "l2switch"
    DROPS = (
        "multicast-source",
        "same-segment",
        "no-other-member",
        "arp-spoofed",
        "split-horizon",
        "not-appointed-forwarder",
    )
    NEXT = ("dr", "sr", "egress", "evi_encap")

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.floods = 0

    def process(self, pkt: Packet) -> str:
        buf = pkt.buf
        inst = pkt.instance
        src = bytes(buf[6:12])
        if src[0] & 1:
            return self.drop(pkt, "multicast-source", mac_str(src))
        macs = self.ctx.macs
        learned = macs.learn(inst, src, pkt.in_port, pkt.vlan, monotonic())  # type: ignore[arg-type]
        fx = pkt.fx
        if fx is not None:
            if learned is None:
                fx.no_cache("mac-not-learned")  # a table limit: the next frame may be learned
            else:
                fx.mac_touch = learned
                fx.depend(learned, "valid")
        if inst.netid is not None:  # type: ignore[union-attr]
            if fx is not None:
                fx.depend(inst, "forwarding")
            if not inst.forwarding:  # type: ignore[union-attr]
                # Another edge of this site is the appointed forwarder: the frame is its to
                # carry (learned here all the same, so a takeover starts knowing the site).
                return self.drop(pkt, "not-appointed-forwarder", inst.name)  # type: ignore[union-attr]
        dst = bytes(buf[0:6])
        rp = inst.router_macs.get(dst)  # type: ignore[union-attr]
        if rp is not None:
            if fx is not None and pkt.in_port.role == "evi":  # type: ignore[union-attr]
                fx.no_cache("evi-routed")  # the tunnel key holds no inner IP fields
            pkt.router = rp.router
            pkt.rport = rp
            if pkt.trace is not None:
                pkt.note(self.name, f"to router port {rp.label}")
            return rp.router.kind
        if dst[0] & 1:
            rp = inst.router_port  # type: ignore[union-attr]
            if fx is not None:
                fx.no_cache("flood")
            is_arp = buf[12] == ETH_P_ARP >> 8 and buf[13] == ETH_P_ARP & 0xFF
            if rp is not None and not is_arp and self.ctx.model.service_ports and self._for_service(buf):
                # A broadcast a router's service takes (DHCP for the relay): flooded as ever, and
                # a copy to the router.
                return self._flood_and_to_router(
                    pkt, self._flood_list(pkt, dst == BROADCAST), "broadcast for a service"
                )
            if is_arp and inst.netid is not None and pkt.in_port.role != "evi":  # type: ignore[union-attr]
                answered = self._suppress_arp(pkt)
                if answered is not None:
                    return answered
            flood = self._flood_list(pkt, dst == BROADCAST)
            if rp is not None and is_arp:
                spa = int.from_bytes(buf[28:32], "big") if len(buf) >= 42 else -1
                for own in inst.router_ports:  # type: ignore[union-attr]
                    if spa == own.ip and src != own.mac and own.ip not in own.router.yielded:
                        # A host claiming a router's address: flooded, it would move the other
                        # hosts' gateway to the claimant; it goes nowhere (the router drops it
                        # too).  (A peer may hold a yielded address.)
                        return self.drop(pkt, "arp-spoofed", f"{mac_str(src)} claims the router's address")
                return self._flood_and_to_router(pkt, flood, "arp broadcast")
            if rp is not None and dst in inst.router_groups:  # type: ignore[union-attr]
                # IPv6 multicast to a group the router listens on (neighbour discovery).
                return self._flood_and_to_router(pkt, flood, "ipv6 multicast")
            if not flood:
                return self.drop(pkt, "no-other-member")
            self.floods += 1
            pkt.outputs = flood
            if pkt.trace is not None:
                pkt.note(self.name, f"flood {mac_str(dst)} to {len(flood)} member(s)")
            return "egress"
        entry = macs.lookup(inst, dst)  # type: ignore[arg-type]
        if entry is None:
            if fx is not None:
                fx.no_cache("flood")
            flood = self._flood_list(pkt, dst in inst.flood_macs)  # type: ignore[union-attr]
            if not flood:
                return self.drop(pkt, "no-other-member")
            self.floods += 1
            pkt.outputs = flood
            if pkt.trace is not None:
                pkt.note(self.name, f"unknown {mac_str(dst)}: flood to {len(flood)} member(s)")
            return "egress"
        if entry.port is pkt.in_port and entry.vlan == pkt.vlan:
            return self.drop(pkt, "same-segment", mac_str(dst))
        pkt.outputs = [entry.member]
        if fx is not None:
            fx.depend(entry, "valid")
        if pkt.trace is not None:
            pkt.note(self.name, f"{mac_str(dst)} learned on {entry.port.name}")
        if entry.port.role == "evi":
            if pkt.in_port.role == "evi":  # type: ignore[union-attr]
                # Split horizon: what came from one site never goes on to another.
                return self.drop(pkt, "split-horizon", f"{mac_str(dst)} from {pkt.in_port.name} to {entry.port.name}")  # type: ignore[union-attr]
            return "evi_encap"
        return "egress"

    def _flood_and_to_router(self, pkt: Packet, flood: list, what: str) -> str:  # type: ignore[type-arg]
        """A broadcast the instance's router port takes too: a copy flooded to ``flood`` (EVI
        links among them get theirs through egress), the frame itself to the router."""
        rp = pkt.instance.router_port  # type: ignore[union-attr]
        if flood:
            copy = Packet(bytearray(pkt.buf), pkt.in_port, pkt.vlan)
            copy.instance = pkt.instance  # (egress encapsulates for an EVI link by its network id)
            copy.outputs = flood
            copy.trace = pkt.trace
            self.ctx.emit(copy, "egress")
            self.floods += 1
        for other in pkt.instance.router_ports[1:]:  # type: ignore[union-attr]
            # Several routers on the segment (tenant SRs on the provider's): each gets its copy.
            mine = Packet(bytearray(pkt.buf), pkt.in_port, pkt.vlan)
            mine.instance, mine.router, mine.rport, mine.trace = pkt.instance, other.router, other, pkt.trace
            self.ctx.emit(mine, other.router.kind)
        pkt.router = rp.router  # type: ignore[union-attr]
        pkt.rport = rp
        if pkt.trace is not None:
            pkt.note(self.name, f"{what}: flood {len(flood)} member(s) and to router port {rp.label}")  # type: ignore[union-attr]
        return rp.router.kind  # type: ignore[union-attr]

    def _for_service(self, buf: bytearray) -> bool:
        """An IPv4 UDP broadcast to a port a data-plane service takes."""
        if len(buf) < 42 or buf[12] != 0x08 or buf[13] != 0x00 or buf[23] != 17:
            return False
        ihl = (buf[14] & 0x0F) * 4
        if len(buf) < 14 + ihl + 4:
            return False
        return (17, buf[14 + ihl + 2] << 8 | buf[14 + ihl + 3]) in self.ctx.model.service_ports

    def _suppress_arp(self, pkt: Packet) -> str | None:
        """ARP flood suppression: a request for a remote host the edge knows is answered here
        (from that host's MAC), and nothing goes into the core.  None: not suppressed."""
        buf = pkt.buf
        evi = self.ctx.model.evi
        if evi is None or len(buf) < 42 or buf[20] != 0 or buf[21] != 1:  # only requests
            return None
        tpa = int.from_bytes(buf[38:42], "big")
        mac = evi.arp_answer(pkt.instance.netid, tpa, monotonic())  # type: ignore[union-attr,arg-type]
        if mac is None:
            return None
        where = self.ctx.macs.lookup(pkt.instance, mac)  # type: ignore[arg-type]
        if where is None or where.port.role != "evi":
            # Answering for a host whose MAC is not known behind a link (its site restarted,
            # say) would leave the requester sending unicast that goes nowhere: let it cross.
            return None
        reply = Packet(arp_reply(mac, tpa, bytes(buf[22:28]), int.from_bytes(buf[28:32], "big")), None, None)
        reply.outputs = [(pkt.in_port, pkt.vlan)]  # type: ignore[list-item]
        reply.trace = pkt.trace
        self.ctx.emit(reply, "egress")
        evi.arp_suppressed += 1
        if pkt.trace is not None:
            pkt.note(self.name, f"arp for {ip_str(tpa)} at another site: answered {mac_str(mac)} (suppressed)")
        return DONE

    def _flood_list(self, pkt: Packet, across: bool) -> list:  # type: ignore[type-arg]
        """The members a flood goes to: the instance's local records but the one it came in
        on; with ``across`` (a broadcast, or selective flooding) also each EVI link once,
        unless it came from one (split horizon)."""
        in_port, vlan = pkt.in_port, pkt.vlan
        inst = pkt.instance
        out = [m for m in inst.members if m[0] is not in_port or m[1] != vlan]  # type: ignore[union-attr]
        if across and inst.links and in_port.role != "evi":  # type: ignore[union-attr]
            out += [(link, None) for link in inst.links]  # type: ignore[union-attr]
        return out

    def counters(self) -> dict:  # type: ignore[type-arg]
        out = super().counters()
        out["floods"] = self.floods
        return out
