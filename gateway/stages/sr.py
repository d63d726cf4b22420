"""sr: the service router of a tenant logical router.

Where this sits: on the edge, between the transit switch and the uplink.
Outbound packets come from ``transit`` (sent by the DR), inbound packets from
``l2switch`` (frames to the uplink router port's MAC, or to a public NAT
address the SR answers ARP for).  The routing walk is ``routing.py``'s; the
services (conntrack, NAT, firewall: ``services/``) decide on its two hooks,
``before_route`` (:meth:`SrServices.inbound`) and ``after_route``
(:meth:`SrServices.outbound`); this stage counts what they refuse.

The EVI tunnel endpoint (``gateway/evi``) is an SR too, one that forwards
nothing: GRE for its address goes on to ``evi_decap``; the packets
``evi_encap`` builds are routed into the core from here.

Exits: ``egress``, ``transit``, ``sr`` (its own ICMP errors re-enter it), ``evi_decap``;
drops: the router's (``routing.RouterStage.DROPS``) and the services'
(``services.DROPS``).
"""

from __future__ import annotations

from time import monotonic

from gateway.evi import EVI_PORT, IPPROTO_GRE
from gateway.headers import IPPROTO_UDP, Icmp
from gateway.packet import Packet
from gateway.services import DROPS as SERVICE_DROPS
from gateway.services import Verdict
from gateway.stages.base import DONE
from gateway.stages.routing import RouterStage
from gateway.tables.fib import Route


class ServiceRouter(RouterStage):
    name = "sr"
    DROPS = RouterStage.DROPS + SERVICE_DROPS
    NEXT = ("egress", "transit", "sr", "evi_decap")

    def local_input(self, pkt: Packet, ihl: int, total: int) -> str:
        evi = self.ctx.model.evi
        if evi is not None and pkt.router is evi.router:
            buf = pkt.buf
            if buf[23] == IPPROTO_GRE:
                return "evi_decap"  # MAC-in-GRE from another site (cacheable: stages/evi.py)
            if buf[23] == IPPROTO_UDP and total - ihl >= 8 and (buf[14 + ihl + 2] << 8 | buf[14 + ihl + 3]) == EVI_PORT:
                # Discovery and MAC advertisement: for the EVI control process (evi/agent.py).
                if pkt.fx is not None:
                    pkt.fx.no_cache("local")
                meta = {"type": "packet", "router": evi.rport.router.label, "port": evi.rport.label}
                if not self.ctx.punt("evi", meta, bytes(buf[14 : 14 + total])):
                    return self.drop(pkt, "no-punt-client", "for the EVI control process, which is not connected")
                self.punted += 1
                pkt.note(self.name, "punted to the evi process")
                return DONE
        return super().local_input(pkt, ihl, total)

    def before_route(self, pkt: Packet) -> str | None:
        if pkt.fx is not None:
            # Which SR owns which address may move (HA takeover): flows through an SR depend on it.
            pkt.fx.depend(self.ctx.model, "ownership_generation")
        svc = pkt.router.services  # type: ignore[union-attr]
        if svc is None:
            return None
        return self._refused(pkt, svc.inbound(pkt, monotonic()))

    def after_route(self, pkt: Packet, route: Route) -> str | None:
        svc = pkt.router.services  # type: ignore[union-attr]
        if svc is None or pkt.originated:
            return None
        return self._refused(pkt, svc.outbound(pkt, route.transit, monotonic()))

    def _refused(self, pkt: Packet, verdict: Verdict | None) -> str | None:
        if verdict is None:
            return None
        if verdict.reject:
            self.send_error(pkt, Icmp.DEST_UNREACH, 13)  # communication administratively prohibited
        return self.drop(pkt, verdict.reason, verdict.detail)

    def tick(self, now: float) -> None:
        super().tick(now)
        for router in self.ctx.model.routers:
            if router.kind == self.name and router.services is not None:
                router.services.expire(now)
