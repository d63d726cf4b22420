"""The IPv6 routing walk of the ``dr`` and ``sr`` stages: the second address family of the
same router (DESIGN 1.2), with neighbour discovery where IPv4 has ARP.

Where this sits: ``routing.py``'s :class:`RouterStage` hands every IPv6 frame
to :meth:`Ipv6Walk.ipv6_input`; the output half (hooks, next hop, neighbour,
rewrite) is ``forward.py``'s, shared with IPv4.  The walk::

    router without IPv6      -> drop (ip6-not-enabled)
    IPv6 checks              -> drop malformed (ip6-truncated, ip6-bad-length, ...)
    extension headers walked -> drop a chain that loops, runs past the packet or
                                puts hop-by-hop anywhere but first (ip6-ext-*)
    uRPF (DR tenant port)    -> source on the segment's prefix, link-local or ::
    ICMPv6 for us            -> checksum; NS: answer for our addresses (DAD-safe),
                                learn; NA: learn; RS: answer with an RA; RA from
                                anyone: dropped (ra-from-host: only the router
                                advertises); echo request: reply
    multicast, link-local,   -> never forwarded (not-routable)
    ::/96, ::ffff:0:0/96
    hop limit <= 1           -> ICMPv6 time exceeded (hop-limit-expired)
    before_route, FIB lookup -> none: ICMPv6 no route (no-route)
    hop limit - 1, output    -> forward.py (ND miss: queued, NS sent)

An IPv6 router never fragments: a packet too big for its next link (a port
with ``mtu`` configured) is answered with ICMPv6 packet too big and dropped
(``packet-too-big``).  The tick sends periodic router advertisements on DR tenant segments
(and at start), retries solicitations and gives up with ICMPv6 address
unreachable (``nd-unresolved``).  Routed IPv6 is not cached yet: every packet
takes these stages (``fx.no_cache("ipv6")``).
"""

from __future__ import annotations

from time import monotonic
from typing import Final

from gateway.effects import L3_6
from gateway.headers import IPPROTO_UDP, HeaderError, mac_str
from gateway.headers6 import (
    ALL_NODES,
    ECHO_REQUEST6,
    IPPROTO_ICMPV6,
    NA_OVERRIDE,
    NA_ROUTER,
    NA_SOLICITED,
    ND_NA,
    ND_NS,
    ND_RA,
    ND_RS,
    Neighbour,
    icmp6_check,
    ip6_str,
    ipv6_check,
    multicast_mac,
    upper_layer,
)
from gateway.l3v6 import (
    DEST_UNREACH6,
    PACKET_TOO_BIG,
    TIME_EXCEEDED6,
    decrement_hop_limit,
    echo_reply6,
    icmp6_error,
    neighbour_advert,
    router_advert,
)
from gateway.model import Router, RouterPort
from gateway.packet import Packet
from gateway.stages.base import DONE, Context
from gateway.stages.forward import Forwarding

RA_INTERVAL: Final = 10.0  # seconds between unsolicited router advertisements
RA_LIFETIME: Final = 1800  # seconds hosts keep us as a default router (RFC 4861's 3 x MaxRtrAdvInterval)

DROPS6 = (
    "ip6-not-enabled",  # IPv6 to a router with no IPv6 address
    "ip6-truncated",
    "ip6-bad-version",
    "ip6-bad-length",
    "ip6-ext-truncated",  # an extension header runs past the packet
    "ip6-ext-chain-too-long",  # more extension headers than the walk follows
    "ip6-hbh-not-first",  # hop-by-hop options anywhere but right after the IPv6 header
    "icmp6-truncated",
    "icmp6-bad-checksum",
    "nd-truncated",
    "nd-bad-hop-limit",  # NDP not sent with hop limit 255: not from a neighbour on the link
    "nd-bad-code",
    "nd-multicast-target",
    "nd-bad-option",
    "nd-not-neighbour",
    "nd-off-link",  # NDP from or about an address not on the segment
    "nd-spoofed",  # an NA claiming one of the router's own addresses for another MAC
    "nd-queue-full",
    "nd-unresolved",
    "ra-from-host",  # a router advertisement from a host: only the router advertises
    "hop-limit-expired",
    "packet-too-big",  # larger than the next link's MTU: ICMPv6 packet too big sent (never fragmented)
)


def _link_local(addr: int) -> bool:
    return addr >> 118 == 0x3FA


def _embeds_ipv4(addr: int) -> bool:
    """::/96 (the unspecified and loopback addresses among them) and ::ffff:0:0/96: never on the
    wire (RFC 4291 2.5.5); refused, an IPv6 address the gateway forwards is past 32 bits, which
    is how one table holds both families' connections (``headers6.addr_str``)."""
    return addr >> 32 == 0 or addr >> 32 == 0xFFFF


class Ipv6Walk(Forwarding):
    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.nd_adverts = 0  # neighbour advertisements sent
        self.nd_learned = 0
        self.nd_other = 0  # NDP not aimed at us (only refreshes known entries)
        self.ra_sent = 0
        self.rs_answered = 0
        self._next_ra = 0.0  # the first tick advertises

    def ipv6_input(self, pkt: Packet) -> str:
        buf = pkt.buf
        router: Router = pkt.router  # type: ignore[assignment]
        fx = pkt.fx
        if router.fib6 is None:
            return self.drop(pkt, "ip6-not-enabled", router.label)
        reason = ipv6_check(buf, 14)
        if reason is not None:
            return self.drop(pkt, reason)
        end = 54 + ((buf[18] << 8) | buf[19])
        if len(buf) > end:
            del buf[end:]  # Ethernet padding is not part of the packet
        try:
            nh, l4, _fragment = upper_layer(buf, 14)
        except HeaderError as exc:
            return self.drop(pkt, exc.reason, str(exc))
        src = int.from_bytes(buf[22:38], "big")
        dst = int.from_bytes(buf[38:54], "big")
        rport = pkt.rport
        if router.kind == "dr" and rport is not None and rport is not router.transit_port:
            if src != 0 and not rport.on_link6(src):
                return self.drop(pkt, "urpf", f"{ip6_str(src)} on {rport.label}")
        if nh == IPPROTO_ICMPV6 and (dst in router.local_ips6 or dst >> 120 == 0xFF):
            if fx is not None:
                fx.no_cache("local")
            reason = icmp6_check(src, dst, buf[l4:end])
            if reason is not None:
                return self.drop(pkt, reason)
            icmp_type = buf[l4]
            if icmp_type in (ND_NS, ND_NA):
                return self.nd_input(pkt, l4, end, src, dst)
            if icmp_type == ND_RS:
                if buf[21] != 255:  # RFC 4861 6.1.1: from a neighbour on the link
                    return self.drop(pkt, "nd-bad-hop-limit", f"router solicitation with hop limit {buf[21]}")
                return self.solicited_ra(pkt, src)
            if icmp_type == ND_RA:
                return self.drop(pkt, "ra-from-host", f"from {ip6_str(src)} ({mac_str(bytes(buf[6:12]))})")
            if icmp_type == ECHO_REQUEST6 and dst in router.local_ips6:
                pkt.buf = echo_reply6(buf, l4, end)
                pkt.originated = True
                self.echo_replies += 1
                pkt.note(self.name, "echo request for us: reply")
                return self.deliver6(pkt)
        if dst in router.local_ips6:
            if fx is not None:
                fx.no_cache("local")
            if nh == IPPROTO_UDP and end - l4 >= 8 and self.ctx.model.punts:
                # BFD with a neighbor over IPv6: the HA agent's (the replication runs over IPv4).
                if self.ctx.model.punts.get((IPPROTO_UDP, buf[l4 + 2] << 8 | buf[l4 + 3])) == "ha":
                    return self.to_process(pkt, "ha", end - 14)
            if router.kernel_tag is not None and not _link_local(dst):
                return self.to_kernel(pkt, router.kernel_tag, end - 14, "the TLR namespace")
            return self.drop(pkt, "local-unsupported", f"next header {nh} to {ip6_str(dst)}")
        if not router.forwards:
            return self.drop(pkt, "not-forwarding", f"{ip6_str(dst)}: {router.label} only terminates")
        if dst >> 120 == 0xFF or _link_local(dst) or _link_local(src) or _embeds_ipv4(src) or _embeds_ipv4(dst):
            return self.drop(pkt, "not-routable", f"{ip6_str(src)} -> {ip6_str(dst)}")
        if buf[21] <= 1:
            self.send_error6(pkt, TIME_EXCEEDED6, 0)
            return self.drop(pkt, "hop-limit-expired")
        verdict = self.before_route(pkt)
        if verdict is not None:
            return verdict
        dst = int.from_bytes(buf[38:54], "big")
        route = router.fib6.lookup(dst)
        if fx is not None:
            fx.read(L3_6)  # (the source is in the key too: a hit cannot skip uRPF)
            fx.depend(router.fib6, "generation")
        if route is None:
            self.send_error6(pkt, DEST_UNREACH6, 0)
            return self.drop(pkt, "no-route", ip6_str(dst))
        out = route.port if not route.transit else None
        mtu = out.mtu if out is not None else None
        if mtu is not None:
            if len(buf) - 14 > mtu:
                # IPv6 routers never fragment: the sender learns the path MTU from this.
                self.send_error6(pkt, PACKET_TOO_BIG, 0, mtu)
                return self.drop(pkt, "packet-too-big", f"{len(buf) - 14} bytes, MTU {mtu} on {out.label}")  # type: ignore[union-attr]
            if fx is not None:
                fx.max_len = 14 + mtu  # a larger packet of the flow meets this check, not the cache
        decrement_hop_limit(buf)
        if fx is not None:
            fx.ttl_dec += 1
        return self.output(pkt, route, dst)

    def deliver6(self, pkt: Packet) -> str:
        """Route a packet this router built: by the FIB, or out the port it concerns when its
        destination is link-local."""
        router: Router = pkt.router  # type: ignore[assignment]
        dst = int.from_bytes(pkt.buf[38:54], "big")
        if _link_local(dst):
            if pkt.rport is None or pkt.rport.instance is None:
                return self.drop(pkt, "no-route", f"own packet to {ip6_str(dst)} with no port")
            return self.to_neighbour(pkt, pkt.rport, dst, True)
        route = router.fib6.lookup(dst) if router.fib6 is not None else None
        if pkt.fx is not None:
            pkt.fx.depend(router.fib6, "generation")
        if route is None:
            return self.drop(pkt, "no-route", f"own packet to {ip6_str(dst)}")
        return self.output(pkt, route, dst)

    # -- neighbour discovery --------------------------------------------------------------
    def nd_input(self, pkt: Packet, l4: int, end: int, src: int, dst: int) -> str:
        buf = pkt.buf
        try:
            nd = Neighbour.parser(buf[21], buf[l4:end])
        except HeaderError as exc:
            return self.drop(pkt, exc.reason, str(exc))
        rport = pkt.rport
        router: Router = pkt.router  # type: ignore[assignment]
        if rport is None or rport.instance is None or router.nd is None:
            self.nd_other += 1
            return DONE
        now = monotonic()
        ours = router.answers_nd_for(rport, nd.target)
        if nd.type == ND_NS:
            if src == 0:
                # Duplicate address detection (RFC 4862 5.4): a prober for our address is told
                # it is taken, at all-nodes; it has no address to answer to, nor to learn.
                if nd.lladdr is not None:
                    return self.drop(pkt, "nd-bad-option", "source link-layer option with an unspecified source")
                if not ours:
                    self.nd_other += 1
                    return DONE
                self._advertise(pkt, rport, nd.target, ALL_NODES, multicast_mac(ALL_NODES), NA_ROUTER | NA_OVERRIDE)
                return DONE
            if not rport.on_link6(src):
                return self.drop(pkt, "nd-off-link", f"solicitation from {ip6_str(src)} on {rport.label}")
            if not ours:
                self.nd_other += 1  # another host's address: the switch floods it to that host
                return DONE
            mac = nd.lladdr or bytes(buf[6:12])
            if nd.lladdr is not None:
                self._learn(router, rport, src, mac, now, pkt)
            flags = NA_ROUTER | NA_SOLICITED | NA_OVERRIDE
            self._advertise(pkt, rport, nd.target, src, mac, flags)
            return DONE
        # An advertisement.
        if nd.target in (rport.ip6, rport.ll6) and nd.target not in router.yielded:
            # (A yielded address of ours may be a peer's to hold now: its NA is no spoof.)
            if nd.lladdr is not None and nd.lladdr != rport.mac:
                return self.drop(pkt, "nd-spoofed", f"{ip6_str(nd.target)} is-at {mac_str(nd.lladdr)}")
            self.nd_other += 1
            return DONE
        if not rport.on_link6(nd.target):
            return self.drop(pkt, "nd-off-link", f"advertisement for {ip6_str(nd.target)} on {rport.label}")
        if nd.lladdr is None:
            self.nd_other += 1  # nothing to learn from (RFC 4861 7.2.5: no target link-layer option)
            return DONE
        if nd.flags & NA_SOLICITED:
            self._learn(router, rport, nd.target, nd.lladdr, now, pkt)
        else:
            # Unsolicited (a host announcing a new MAC): only what we already know moves.
            released = router.nd.refresh(rport, nd.target, nd.lladdr, now)
            self.nd_other += 1
            self._release(released, rport, nd.lladdr, nd.target)
        return DONE

    def _learn(self, router: Router, rport: RouterPort, ip: int, mac: bytes, now: float, pkt: Packet) -> None:
        released = router.nd.learn(rport, ip, mac, now)  # type: ignore[union-attr]
        self.nd_learned += 1
        if pkt.trace is not None:
            pkt.note(self.name, f"nd {ip6_str(ip)} is-at {mac_str(mac)}: learned")
        self._release(released, rport, mac, ip)

    def _release(self, released: list[Packet], rport: RouterPort, mac: bytes, ip: int) -> None:
        for queued in released:
            self.rewrite(queued, rport, mac)
            if queued.trace is not None:
                queued.note(self.name, f"nd resolved {ip6_str(ip)}: released")
            self.ctx.emit(queued, "egress")

    def _advertise(self, pkt: Packet, rport: RouterPort, target: int, dst: int, dst_mac: bytes, flags: int) -> None:
        na = Packet(neighbour_advert(rport.mac, target, dst_mac, dst, target, flags), None, None)
        na.outputs = [(pkt.in_port, pkt.vlan)]  # type: ignore[list-item]
        na.trace = pkt.trace
        self.nd_adverts += 1
        self.ctx.emit(na, "egress")
        if pkt.trace is not None:
            pkt.note(self.name, f"nd who-has {ip6_str(target)}: advertised {mac_str(rport.mac)}")

    # -- router advertisements -------------------------------------------------------------
    def solicited_ra(self, pkt: Packet, src: int) -> str:
        rport = pkt.rport
        if rport is None or not self._advertises(rport):
            self.nd_other += 1
            return DONE
        ra = Packet(self._ra(rport), None, None)
        ra.outputs = [(pkt.in_port, pkt.vlan)]  # type: ignore[list-item]
        ra.trace = pkt.trace
        self.rs_answered += 1
        self.ra_sent += 1
        self.ctx.emit(ra, "egress")
        pkt.note(self.name, "router solicitation: advertised")
        return DONE

    @staticmethod
    def _advertises(rport: RouterPort) -> bool:
        """A DR's tenant segment with IPv6: its hosts learn their default router here."""
        return (
            rport.router.kind == "dr"
            and rport.ip6 is not None
            and rport.instance is not None
            and rport is not rport.router.transit_port
        )

    @staticmethod
    def _ra(rport: RouterPort) -> bytearray:
        return router_advert(rport.mac, rport.ll6, ALL_NODES, [(rport.network6, rport.plen6)], RA_LIFETIME)

    def tick6(self, router: Router, now: float, advertise: bool) -> None:
        """ND retries and aging; router advertisements when ``advertise``."""
        nd = router.nd
        if nd is None:
            return
        retry, failed = nd.due(now)
        for rport, ip in retry:
            self.send_solicit(rport, ip)
        for pkt in failed:
            self.send_error6(pkt, DEST_UNREACH6, 3)
            self.drop(pkt, "nd-unresolved")
        nd.age(now)
        if advertise:
            for rport in router.ports:
                if self._advertises(rport):
                    ra = Packet(self._ra(rport), None, None)
                    ra.outputs = list(rport.instance.members)  # type: ignore[union-attr]
                    self.ra_sent += 1
                    self.ctx.emit(ra, "egress")

    def ra_due(self, now: float) -> bool:
        if now < self._next_ra:
            return False
        self._next_ra = now + RA_INTERVAL
        return True

    # -- errors -----------------------------------------------------------------------------
    def send_error6(self, pkt: Packet, icmp_type: int, code: int, param: int = 0) -> None:
        if pkt.fx is not None:
            pkt.fx.no_cache("icmp-error")
        router: Router = pkt.router  # type: ignore[assignment]
        rport = pkt.rport
        src = rport.ip6 if rport is not None and rport.ip6 is not None else None
        if src is None:
            src = next((p.ip6 for p in router.ports if p.ip6 is not None), None)
        if src is None:
            return
        frame = icmp6_error(pkt.buf, src, icmp_type, code, param)
        if frame is None:
            return
        err = Packet(frame, None, None)
        err.router = router
        err.rport = rport
        err.originated = True
        err.trace = pkt.trace
        self.icmp_errors += 1
        if pkt.trace is not None:
            pkt.note(
                self.name, f"icmp6 type {icmp_type} code {code} to {ip6_str(int.from_bytes(pkt.buf[22:38], 'big'))}"
            )
        self.ctx.emit(err, self.name)

    def counters6(self) -> dict[str, int]:
        return {
            "nd_solicits": self.nd_solicits,
            "nd_adverts": self.nd_adverts,
            "nd_learned": self.nd_learned,
            "nd_other": self.nd_other,
            "ra_sent": self.ra_sent,
            "rs_answered": self.rs_answered,
        }
