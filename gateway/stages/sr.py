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
from typing import Any, Final

from gateway.effects import L3_6
from gateway.evi import EVI_PORT, IPPROTO_GRE
from gateway.headers import IPPROTO_TCP, IPPROTO_UDP, Icmp, checksum, ipv4_check, pseudo_header
from gateway.headers6 import IPPROTO_ICMPV6, ip6_str
from gateway.io.service import REPLY_DIRECTION
from gateway.l3v6 import DEST_UNREACH6
from gateway.l4 import flow_tuple
from gateway.packet import Packet
from gateway.services import DROPS as SERVICE_DROPS
from gateway.services import Verdict, seqadj
from gateway.services.npt import Npt
from gateway.stages.base import DONE
from gateway.stages.forward import is_ipv6
from gateway.stages.routing import RouterStage
from gateway.tables.fib import Route

# Refusals a peer's replication may undo (no entry yet), before any rewrite of the packet.
WAIT_FOR_PEER: Final = frozenset({"nat-no-session", "ct-invalid"})


class ServiceRouter(RouterStage):
    name = "sr"
    DROPS = RouterStage.DROPS + SERVICE_DROPS + ("npt-unmappable",)
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
        router = pkt.router
        v6 = is_ipv6(pkt)
        if router.npt is not None and v6:  # type: ignore[union-attr]
            refused = self._npt_in(pkt, router.npt)  # type: ignore[union-attr]
            if refused is not None:
                return refused
        svc = router.services  # type: ignore[union-attr]
        if svc is None:
            return None
        buf = pkt.buf
        if (buf[20] & 0x3F or buf[21]) and not v6:  # more fragments, or an offset
            held = self._fragment(pkt, svc)
            if held is not None:
                return held
        verdict = svc.inbound6(pkt, monotonic()) if v6 else svc.inbound(pkt, monotonic())
        # (Not behind NPTv6: the held frame would be translated a second time when it runs again;
        # nor a datagram put together from fragments: it would run again whole, never cut.)
        held_ok = not pkt.frag_mtu and not (router.npt is not None and v6)  # type: ignore[union-attr]
        if router.replicates and pkt.in_port is not None and held_ok:  # type: ignore[union-attr]
            # No connection for it here yet, but a peer SR may be replicating it right now (a
            # reply that came back through this SR, active/active): the replication holds it
            # a moment and carries it on once the entry is in, or drops it then.
            if verdict is not None and verdict.reason in WAIT_FOR_PEER:
                wait = verdict.reason
            elif verdict is None and svc.unsolicited(pkt):
                wait = "fw-unsolicited"  # (refused after routing: asked now, while it is as it came)
            else:
                wait = None
            if wait is not None:
                meta = {"router": pkt.router.label, "port": pkt.in_port, "vlan": pkt.vlan, "reason": wait}  # type: ignore[union-attr]
                if self.ctx.punt("sync-hold", meta, bytes(pkt.buf)):
                    if pkt.fx is not None:
                        pkt.fx.no_cache("held")
                    if pkt.trace is not None:
                        pkt.note(self.name, f"{wait}: held for the peers' replication")
                    return DONE
        return self._refused(pkt, verdict)

    def _fragment(self, pkt: Packet, svc: Any) -> str | None:
        """An IPv4 fragment: held until its datagram is whole (DONE), dropped by name, or (None)
        the last one, now the whole datagram, which goes on; egress cuts it again."""
        if pkt.fx is not None:
            pkt.fx.no_cache("fragment")
        got = svc.reasm.add(pkt.buf, monotonic())
        if got is None:
            if pkt.trace is not None:
                pkt.note(self.name, "IPv4 fragment held until its datagram is whole")
            return DONE
        if isinstance(got, str):
            return self.drop(pkt, got)
        whole, largest = got
        pkt.buf[14:] = whole  # (in place: the walk holds this buffer)
        pkt.frag_mtu = largest
        if pkt.trace is not None:
            pkt.note(self.name, f"IPv4 datagram reassembled: {len(whole)} bytes")
        return None

    def after_route(self, pkt: Packet, route: Route) -> str | None:
        router = pkt.router
        svc = router.services  # type: ignore[union-attr]
        if pkt.originated:
            return None
        if is_ipv6(pkt):
            refused = self._refused(pkt, svc.outbound6(pkt, route.transit, monotonic())) if svc else None
            npt = router.npt  # type: ignore[union-attr]
            if refused is None and npt is not None and not route.transit and route.port is not router.transit_port:  # type: ignore[union-attr]
                return self._npt_out(pkt, npt)
            return refused
        if svc is None:
            return None
        refused = self._refused(pkt, svc.outbound(pkt, route.transit, monotonic()))
        if refused is not None or pkt.conn is None or pkt.conn.alg is None:
            return refused
        return self._through_alg(pkt)

    def _through_alg(self, pkt: Packet) -> str | None:
        """A connection an application-level gateway reads (FTP control): its payload goes to
        the ALG's process and on when it returns (``AlgHold``); every segment gets the
        connection's sequence offsets."""
        conn, direction, buf = pkt.conn, pkt.conn_dir, pkt.buf
        if pkt.fx is not None:
            pkt.fx.alg = conn  # a hit applies the offsets; payload never hits (cache)
        ihl = (buf[14] & 0x0F) * 4
        l4 = 14 + ihl
        payload = ((buf[16] << 8) | buf[17]) - ihl - (buf[l4 + 12] >> 4) * 4
        if payload <= 0:
            seqadj.adjust(buf, conn, direction)
            return None
        if pkt.fx is not None:
            pkt.fx.no_cache("service")
        hold = AlgHold(self, pkt)
        meta = {
            "instance": pkt.instance,
            "port": pkt.in_port,
            "vlan": pkt.vlan,
            "router": pkt.router,
            "hold": hold,
            "flags": REPLY_DIRECTION if direction else 0,
        }
        if not self.ctx.punt("service", meta, bytes(buf[14:])):
            return self.drop(pkt, "service-unavailable", f"{conn.alg}: its process is gone, late or full")
        self.punted += 1
        if pkt.trace is not None:
            pkt.note(self.name, f"payload of #{conn.id} to {conn.alg}")
        return DONE

    # -- NPTv6 (services/npt.py) -----------------------------------------------------------
    def _npt_in(self, pkt: Packet, npt: Npt) -> str | None:
        """A destination in an outside prefix becomes the inside address; in an ICMPv6 error,
        so does the quoted packet's source (checksum-neutral: no checksum changes)."""
        return self._npt(pkt, npt, 38, inbound=True)

    def _npt_out(self, pkt: Packet, npt: Npt) -> str | None:
        """An inside source becomes the outside address."""
        return self._npt(pkt, npt, 22, inbound=False)

    def _npt(self, pkt: Packet, npt: Npt, at: int, inbound: bool) -> str | None:
        buf = pkt.buf
        if pkt.fx is not None:
            pkt.fx.read(L3_6)
        addr = int.from_bytes(buf[at : at + 16], "big")
        rule = npt.inbound_rule(addr) if inbound else npt.outbound_rule(addr)
        if rule is None:
            return None
        new = rule.map(addr, to_outside=not inbound)
        if new is None:
            npt.unmappable += 1
            return self.drop(pkt, "npt-unmappable", f"{ip6_str(addr)} ({rule.name})")
        buf[at : at + 16] = new.to_bytes(16, "big")
        if inbound:
            rule.hits_in += 1
            if buf[20] == IPPROTO_ICMPV6 and len(buf) >= 54 + 8 + 40 and buf[54] < 128:
                quoted = int.from_bytes(buf[70:86], "big")  # the quoted packet's source
                back = rule.map(quoted, to_outside=False) if quoted & rule.mask == rule.outside else None
                if back is not None:
                    buf[70:86] = back.to_bytes(16, "big")
        else:
            rule.hits_out += 1
        if pkt.trace is not None:
            pkt.note(self.name, f"nptv6 {ip6_str(addr)} -> {ip6_str(new)} ({rule.name})")
        return None

    def _refused(self, pkt: Packet, verdict: Verdict | None) -> str | None:
        if verdict is None:
            return None
        if verdict.reject and is_ipv6(pkt):
            self.send_error6(pkt, DEST_UNREACH6, 1)  # communication administratively prohibited
        elif verdict.reject:
            self.send_error(pkt, Icmp.DEST_UNREACH, 13)  # communication administratively prohibited
        return self.drop(pkt, verdict.reason, verdict.detail)

    def tick(self, now: float) -> None:
        super().tick(now)
        for router in self.ctx.model.routers:
            if router.kind == self.name and router.services is not None:
                router.services.age(now)


class AlgHold:
    """A segment in an ALG's hands: what the datapath keeps to check and carry on what returns.

    The frame is the segment as the SR left it (translated, TTL decremented,
    before its sequence offsets); what returns is the same segment with its
    payload rewritten: same connection, same direction, same sequence number,
    valid checksums, or it is refused by name.  The length change is recorded
    on the connection (``services/seqadj.py``); the result, or on a fail-open
    the original, is routed on as the SR's own.
    """

    __slots__ = ("stage", "router", "rport", "conn", "direction", "frame", "service", "trace")

    def __init__(self, stage: ServiceRouter, pkt: Packet) -> None:
        self.stage = stage
        self.router, self.rport = pkt.router, pkt.rport
        self.conn, self.direction = pkt.conn, pkt.conn_dir
        self.frame = bytearray(pkt.buf)
        self.service: str = pkt.conn.alg
        self.trace = pkt.trace

    def expect(self, addr: int, port: int) -> tuple[int, int] | str:
        if self.conn.released:
            return "connection-gone"
        return self.router.services.announce(self.conn, self.direction, addr, port)  # type: ignore[union-attr]

    def resume(self, ip: bytearray) -> str | None:
        why = self._check(ip)
        if why is not None:
            return why
        frame = self.frame
        l4 = 14 + (frame[14] & 0x0F) * 4
        seq = int.from_bytes(frame[l4 + 4 : l4 + 8], "big")
        seqadj.record(self.conn, self.direction, seq, len(ip) + 14 - len(frame))
        self._send(bytearray(frame[:14]) + ip)
        return None

    def release(self) -> None:
        """Fail-open: the segment goes on as it came."""
        self._send(bytearray(self.frame))

    def _check(self, ip: bytearray) -> str | None:
        if self.conn.released:
            return "connection-gone"
        if ipv4_check(ip, 0) is not None or len(ip) != ((ip[2] << 8) | ip[3]) or ip[9] != IPPROTO_TCP:
            return "bad-frame"
        ihl = (ip[0] & 0x0F) * 4
        if len(ip) < ihl + 20 or (ip[ihl + 12] >> 4) * 4 < 20 or ihl + (ip[ihl + 12] >> 4) * 4 > len(ip):
            return "bad-frame"
        t, _kind = flow_tuple(ip, 0)
        if t != self.conn.target(self.direction):
            return "other-connection"
        old = self.frame
        l4 = 14 + (old[14] & 0x0F) * 4
        if ip[ihl + 4 : ihl + 8] != old[l4 + 4 : l4 + 8]:
            return "other-segment"
        if checksum(pseudo_header(bytes(ip[12:16]), bytes(ip[16:20]), IPPROTO_TCP, len(ip) - ihl) + ip[ihl:]):
            return "bad-checksum"
        return None

    def _send(self, frame: bytearray) -> None:
        seqadj.adjust(frame, self.conn, self.direction)
        pkt = Packet(frame, None, None)
        pkt.router, pkt.rport, pkt.originated, pkt.trace = self.router, self.rport, True, self.trace
        self.stage.ctx.emit(pkt, self.stage.name)

    def __repr__(self) -> str:
        return f"AlgHold(#{self.conn.id}, {self.service})"
