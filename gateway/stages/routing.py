"""The routing walk shared by the ``dr`` and ``sr`` stages (not a stage itself).

Where this sits: ``dr.py`` and ``sr.py`` subclass :class:`RouterStage`; a
packet arrives with ``pkt.router`` (which DR or SR) and ``pkt.rport`` (the
router port it came in on) set by ``l2switch`` or ``transit``.

The walk, for a packet received by a router::

    ARP?            -> answer for our address / learn, release queued packets
    IPv4 checks     -> drop malformed (ip-truncated, ip-bad-ihl, ...)
    for us?         -> ICMP echo reply; anything else dropped (local-unsupported)
    TTL <= 1        -> ICMP time exceeded, drop (ttl-expired)
    before_route    -> hook (the SR's DNAT)
    FIB lookup      -> none: ICMP net unreachable, drop (no-route)
    TTL - 1
    transit route   -> exit ``transit`` towards the peer router
    after_route     -> hook (the SR's firewall and SNAT)
    ARP lookup      -> miss: queue behind a resolution (bounded), send request
    rewrite MACs    -> exit ``egress`` to the learned member (or flood)

Packets the router builds (echo replies, ICMP errors) re-enter the same stage
with ``originated`` set and skip straight to the FIB lookup.
"""

from __future__ import annotations

from time import monotonic
from typing import ClassVar

from gateway.config.kernel import MANAGEMENT_TAG
from gateway.effects import L3
from gateway.fields import u32
from gateway.headers import (
    ETH_P_ARP,
    ETH_P_IP,
    ETH_P_IPV6,
    IPPROTO_ICMP,
    IPPROTO_TCP,
    IPPROTO_UDP,
    Arp,
    HeaderError,
    Icmp,
    ip_str,
    ipv4_check,
    mac_str,
)
from gateway.l3 import arp_reply, decrement_ttl, echo_reply, icmp_error
from gateway.model import MgmtAccess, Router
from gateway.packet import Packet
from gateway.stages.base import DONE, Context
from gateway.stages.routing6 import DROPS6, Ipv6Walk
from gateway.tables.fib import mask


class RouterStage(Ipv6Walk):
    DROPS: ClassVar[tuple[str, ...]] = (
        "not-ip",
        "ip-truncated",
        "ip-bad-version",
        "ip-bad-ihl",
        "ip-bad-length",
        "ip-bad-checksum",
        "icmp-truncated",
        "arp-truncated",
        "arp-unsupported",
        "not-routable",
        "local-unsupported",
        "ttl-expired",
        "no-route",
        "frag-needed",  # past the next link's MTU with don't-fragment set (ICMP fragmentation needed sent)
        "arp-queue-full",
        "arp-unresolved",
        "no-punt-client",
        "mgmt-refused",  # to a management address, from a source or to a port it does not admit
        "arp-off-subnet",  # ARP from a sender address not on the segment it came in on: not learned
        "arp-spoofed",  # ARP claiming one of the router's own addresses for another MAC
        "urpf",  # from a tenant segment with a source address not on that segment
        "not-forwarding",  # through a router that only terminates (the EVI tunnel endpoint)
        "service-unavailable",  # for a data-plane service whose process is gone, late or full (fail-closed)
        *DROPS6,
    )

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.arp_replies = 0
        self.arp_other = 0  # ARP received that was not for us (only refreshes known entries)
        self.arp_learned = 0  # ARP replies (and gratuitous ARPs) for our addresses, learned from
        self.arp_probes = 0  # ARP probes (sender 0.0.0.0) for our addresses, answered

    # -- the walk ------------------------------------------------------------------------
    def process(self, pkt: Packet) -> str:
        buf = pkt.buf
        ethertype = (buf[12] << 8) | buf[13]
        if pkt.originated:
            return self.deliver6(pkt) if ethertype == ETH_P_IPV6 else self.deliver(pkt)
        fx = pkt.fx
        if ethertype == ETH_P_ARP:
            if fx is not None:
                fx.no_cache("arp")
            return self.arp_input(pkt)
        if ethertype == ETH_P_IPV6:
            return self.ipv6_input(pkt)
        if ethertype != ETH_P_IP:
            return self.drop(pkt, "not-ip", f"ethertype {ethertype:#06x}")
        reason = ipv4_check(buf, 14)
        if reason is not None:
            return self.drop(pkt, reason)
        total = (buf[16] << 8) | buf[17]
        if len(buf) > 14 + total:
            del buf[14 + total :]  # Ethernet padding is not part of the datagram
        dst = u32(buf, 30)
        router: Router = pkt.router  # type: ignore[assignment]
        rport = pkt.rport
        if self.ctx.model.service_ports and buf[23] == IPPROTO_UDP and (dst in router.local_ips or dst == 0xFFFFFFFF):
            # For a data-plane service (before uRPF: a DHCP client has no address yet).
            ihl = (buf[14] & 0x0F) * 4
            dport = buf[14 + ihl + 2] << 8 | buf[14 + ihl + 3] if total - ihl >= 8 else -1
            if (IPPROTO_UDP, dport) in self.ctx.model.service_ports:
                return self.to_service(pkt, total)
        if router.kind == "dr" and rport is not None and rport is not router.transit_port:
            # uRPF on a tenant segment: its hosts send from its subnet, nothing else.
            src = u32(buf, 26)
            if src & mask(rport.plen) != rport.network:
                return self.drop(pkt, "urpf", f"{ip_str(src)} on {rport.label}")
            # (the cache's l3 match includes the source address: a hit cannot skip this check)
        if dst in router.local_ips:
            return self.local_input(pkt, (buf[14] & 0x0F) * 4, total)
        if not router.forwards:
            return self.drop(pkt, "not-forwarding", f"{ip_str(dst)}: {router.label} only terminates")
        if dst == 0xFFFFFFFF or dst >> 28 == 0xE or dst == 0:
            return self.drop(pkt, "not-routable", ip_str(dst))
        if buf[22] <= 1:
            self.send_error(pkt, Icmp.TIME_EXCEEDED, 0)
            return self.drop(pkt, "ttl-expired")
        verdict = self.before_route(pkt)
        if verdict is not None:
            return verdict
        dst = u32(buf, 30)
        total = (buf[16] << 8) | buf[17]  # (the SR may have made a datagram of its fragments)
        route = router.fib.lookup(dst)
        if fx is not None:
            fx.read(L3)
            fx.depend(router.fib, "generation")
        if route is None:
            self.send_error(pkt, Icmp.DEST_UNREACH, 0)
            return self.drop(pkt, "no-route", ip_str(dst))
        out = route.port if not route.transit else None
        mtu = out.mtu if out is not None else None
        if mtu is not None:
            if total > mtu:
                if buf[20] & 0x40:  # don't fragment: the sender learns the path MTU from this (RFC 1191)
                    self.send_error(pkt, Icmp.DEST_UNREACH, 4, mtu)
                    return self.drop(pkt, "frag-needed", f"{total} bytes, MTU {mtu} on {out.label}")  # type: ignore[union-attr]
                pkt.frag_mtu = min(mtu, pkt.frag_mtu or mtu)  # egress sends its fragments
                if fx is not None:
                    fx.no_cache("fragmented")
            elif fx is not None:
                fx.max_len = 14 + mtu  # a larger packet of the flow meets this check, not the cache
        decrement_ttl(buf)
        if fx is not None:
            fx.ttl_dec += 1
        return self.output(pkt, route, dst)

    def deliver(self, pkt: Packet) -> str:
        """Route a packet this router built (no TTL checks, no hooks on the way in)."""
        dst = u32(pkt.buf, 30)
        route = pkt.router.fib.lookup(dst)  # type: ignore[union-attr]
        if pkt.fx is not None:  # (an encapsulated frame: the only own packet that may be cached)
            pkt.fx.depend(pkt.router.fib, "generation")  # type: ignore[union-attr]
        if route is None:
            return self.drop(pkt, "no-route", f"own packet to {ip_str(dst)}")
        return self.output(pkt, route, dst)

    # -- ARP -----------------------------------------------------------------------------
    def arp_input(self, pkt: Packet) -> str:
        try:
            arp, _ = Arp.parser(memoryview(pkt.buf)[14:])
        except HeaderError as exc:
            return self.drop(pkt, exc.reason)
        rport = pkt.rport
        router: Router = pkt.router  # type: ignore[assignment]
        now = monotonic()
        if rport is None or rport.instance is None:
            self.arp_other += 1
            return DONE
        if arp.spa != 0:
            if arp.spa == rport.ip and arp.sha != rport.mac and arp.spa not in router.yielded:
                # Someone claims this port's own address (a gratuitous ARP for the gateway
                # address, say): never learned, never moves anything.  (An address held for a
                # failed peer is not ours to defend: its owner claims it back when it returns.)
                return self.drop(pkt, "arp-spoofed", f"{ip_str(arp.spa)} is-at {mac_str(arp.sha)}")
            if arp.spa & mask(rport.plen) != rport.network:
                return self.drop(pkt, "arp-off-subnet", f"{ip_str(arp.spa)} on {rport.label}")
        if arp.spa == 0 and arp.op == Arp.REQUEST and router.answers_arp_for(rport, arp.tpa):
            self.arp_probes += 1
            # An ARP probe for our address: answer the prober directly, learn nothing.
            reply = Packet(arp_reply(rport.mac, arp.tpa, arp.sha, 0), None, None)
            reply.outputs = [(pkt.in_port, pkt.vlan)]  # type: ignore[list-item]
            reply.trace = pkt.trace
            self.arp_replies += 1
            self.ctx.emit(reply, "egress")
            return DONE
        if arp.spa != 0 and router.answers_arp_for(rport, arp.tpa):
            released = router.arp.learn(rport, arp.spa, arp.sha, now)
            if arp.op != Arp.REQUEST or arp.spa == arp.tpa:
                self.arp_learned += 1  # a reply, or a gratuitous ARP for an address we answer for
            if arp.op == Arp.REQUEST and arp.spa != arp.tpa:  # never answer a gratuitous ARP
                reply = Packet(arp_reply(rport.mac, arp.tpa, arp.sha, arp.spa), None, None)
                reply.outputs = [(pkt.in_port, pkt.vlan)]  # type: ignore[list-item]
                reply.trace = pkt.trace
                self.arp_replies += 1
                self.ctx.emit(reply, "egress")
                if pkt.trace is not None:
                    pkt.note(self.name, f"arp who-has {ip_str(arp.tpa)}: reply {mac_str(rport.mac)}")
            else:
                if pkt.trace is not None:
                    pkt.note(self.name, f"arp {ip_str(arp.spa)} is-at {mac_str(arp.sha)}: learned")
        else:
            # Not aimed at us: only refresh what we already know (RFC 826 merge), so a
            # gratuitous ARP moves an existing neighbour entry.
            released = router.arp.refresh(rport, arp.spa, arp.sha, now) if arp.spa else []
            self.arp_other += 1
            if pkt.trace is not None:
                pkt.note(self.name, f"arp for {ip_str(arp.tpa)}: not ours")
        for queued in released:
            self.rewrite(queued, rport, arp.sha)
            if queued.trace is not None:
                queued.note(self.name, f"arp resolved {ip_str(arp.spa)}: released")
            self.ctx.emit(queued, "egress")
        return DONE

    # -- packets for the router itself -------------------------------------------------
    def local_input(self, pkt: Packet, ihl: int, total: int) -> str:
        buf = pkt.buf
        router: Router = pkt.router  # type: ignore[assignment]
        if pkt.fx is not None:
            pkt.fx.no_cache("local")
        if router.mgmt:
            access = router.mgmt.get(int.from_bytes(buf[30:34], "big"))
            if access is not None:
                return self.management(pkt, access, ihl, total)
        punts = self.ctx.model.punts
        if buf[23] == IPPROTO_UDP and total - ihl >= 8 and punts:
            client = punts.get((IPPROTO_UDP, buf[14 + ihl + 2] << 8 | buf[14 + ihl + 3]))
            if client is not None:
                return self.to_process(pkt, client, total)
        if buf[23] == IPPROTO_ICMP:
            if total - ihl < 8:
                return self.drop(pkt, "icmp-truncated")
            if buf[14 + ihl] == Icmp.ECHO_REQUEST:
                pkt.buf = echo_reply(buf, ihl, total)
                pkt.originated = True
                self.echo_replies += 1
                pkt.note(self.name, "echo request for us: reply")
                return self.deliver(pkt)
        if router.kernel_tag is not None:
            return self.to_kernel(pkt, router.kernel_tag, total, "the TLR namespace")
        return self.drop(pkt, "local-unsupported", f"protocol {buf[23]} to {ip_str(bytes(buf[30:34]))}")

    def management(self, pkt: Packet, access: MgmtAccess, ihl: int, total: int) -> str:
        """In-band management: what the address admits goes to the management namespace."""
        buf = pkt.buf
        proto = buf[23]
        port = None
        if proto in (IPPROTO_TCP, IPPROTO_UDP) and total - ihl >= 4:
            port = (buf[14 + ihl + 2] << 8) | buf[14 + ihl + 3]
        src = u32(buf, 26)
        if not access.admits(src, proto, port):
            what = f"protocol {proto}" + (f" port {port}" if port is not None else "")
            return self.drop(pkt, "mgmt-refused", f"{what} from {ip_str(src)}")
        return self.to_kernel(pkt, MANAGEMENT_TAG, total, "the management namespace")

    def to_service(self, pkt: Packet, total: int) -> str:
        """A packet for a data-plane service (a DHCP request on the segment, say): handed to its
        process with where it came from; what returns resumes elsewhere (io/service.py)."""
        if pkt.fx is not None:
            pkt.fx.no_cache("service")
        meta = {"instance": pkt.instance, "port": pkt.in_port, "vlan": pkt.vlan, "router": pkt.router}
        if not self.ctx.punt("service", meta, bytes(pkt.buf[14 : 14 + total])):
            return self.drop(pkt, "service-unavailable", "its process is gone, late or full (fail-closed)")
        self.punted += 1
        pkt.note(self.name, "to a data-plane service")
        return DONE

    def send_error(self, pkt: Packet, icmp_type: int, code: int, rest: int = 0) -> None:
        if pkt.fx is not None:
            pkt.fx.no_cache("icmp-error")
        router: Router = pkt.router  # type: ignore[assignment]
        src = pkt.rport.ip if pkt.rport is not None else router.ports[0].ip
        frame = icmp_error(pkt.buf, src, icmp_type, code, rest)
        if frame is None:
            return
        err = Packet(frame, None, None)
        err.router = router
        err.rport = pkt.rport
        err.originated = True
        err.trace = pkt.trace
        self.icmp_errors += 1
        if pkt.trace is not None:
            pkt.note(self.name, f"icmp type {icmp_type} code {code} to {ip_str(bytes(pkt.buf[26:30]))}")
        self.ctx.emit(err, self.name)

    # -- timers ------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        advertise = self.ra_due(now)
        for router in self.ctx.model.routers:
            if router.kind != self.name:
                continue
            self.tick6(router, now, advertise)
            retry, failed = router.arp.due(now)
            for rport, ip in retry:
                self.send_arp_request(rport, ip)
            for pkt in failed:
                self.send_error(pkt, Icmp.DEST_UNREACH, 1)
                self.drop(pkt, "arp-unresolved")
            router.arp.age(now)

    def counters(self) -> dict:  # type: ignore[type-arg]
        out = super().counters()
        out.update(
            arp_requests=self.arp_requests,
            arp_replies=self.arp_replies,
            arp_other=self.arp_other,
            arp_learned=self.arp_learned,
            arp_probes=self.arp_probes,
            arp_misses=self.arp_misses,
            echo_replies=self.echo_replies,
            icmp_errors=self.icmp_errors,
            punted=self.punted,
            **self.counters6(),
        )
        return out
