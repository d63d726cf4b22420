"""sr: the service router of a tenant logical router.

Where this sits: on the edge, between the transit switch and the uplink.
Outbound packets come from ``transit`` (sent by the DR), inbound packets from
``l2switch`` (frames to the uplink router port's MAC, or to a public NAT
address the SR answers ARP for).  The routing walk is ``routing.py``'s; the
services hang on its two hooks, in the order DESIGN 1.2 fixes:

``before_route`` (every packet the SR forwards)
    conntrack lookup.  Known connection: rewrite the *destination* as the
    connection says (un-SNAT of a reply, DNAT of an inbound flow), so the FIB
    sees the real destination.  ICMP error quoting a tracked packet (state
    related): translate outer and quoted headers back.  New connection: TCP
    that does not open with SYN is invalid; a destination that matches a DNAT
    or 1:1 rule is rewritten; a public NAT address with no session is dropped.
``after_route`` (once the next hop is chosen)
    known connection: rewrite the *source* as the connection says.  New
    connection: the firewall decides (rules in order, else the default
    policy), then SNAT picks the public source (uplink-bound traffic of a
    tenant source, and hairpin traffic that was DNAT'd back inside), then the
    connection is created.

Exits: ``egress``, ``transit``, ``sr`` (its own ICMP errors); drops: the
router's (``routing.RouterStage.DROPS``) and the services' (``SERVICE_DROPS``).
"""

from __future__ import annotations

from time import monotonic
from typing import Any

from gateway.cache import L4
from gateway.headers import IPPROTO_ICMP, IPPROTO_TCP, Icmp, ip_str
from gateway.l4 import ICMP_ERROR, UNTRACKABLE, fix_icmp_error, flow_tuple, inner_tuple, rewrite, tcp_flags
from gateway.packet import Packet
from gateway.services import SrServices
from gateway.services.conntrack import ACK, CLOSED, ORIG, RST, SYN, TIME_WAIT, UNTRACKED, inverse, tuple_str
from gateway.services.firewall import DROP, REJECT
from gateway.stages.routing import RouterStage
from gateway.tables.fib import Route

SERVICE_DROPS = (
    "untrackable",  # non-first fragment or cut-short L4 header: no ports to track or translate
    "ct-invalid",  # TCP without a SYN and no connection; an echo reply nobody asked for
    "nat-no-session",  # to a public NAT address, matching no session and no DNAT rule
    "fw-drop",  # a firewall rule said drop (also an existing flow after a rule change)
    "fw-reject",  # a firewall rule said reject: ICMP administratively prohibited sent
    "fw-unsolicited",  # inbound, new, not forwarded by NAT, no rule allowing it
    "nat-table-full",  # the connection table is at its configured limit
    "nat-pool-exhausted",  # no free public (address, port) in the SNAT pool
    "ct-clash",  # the reply tuple of a new connection is already in use
)


class ServiceRouter(RouterStage):
    name = "sr"
    DROPS = RouterStage.DROPS + SERVICE_DROPS

    def before_route(self, pkt: Packet) -> str | None:
        if pkt.fx is not None:
            # Which SR owns which address may move (HA takeover): flows through an SR depend on it.
            pkt.fx.depend(self.dp, "ownership_generation")
        svc: SrServices | None = pkt.router.services  # type: ignore[union-attr]
        if svc is None:
            return None
        buf = pkt.buf
        t, kind = flow_tuple(buf)
        if kind == UNTRACKABLE:
            return self.drop(pkt, "untrackable", tuple_str(t))
        if kind == ICMP_ERROR:
            return self._icmp_error(pkt, svc, t)
        conn, direction = svc.ct.lookup(t)
        flags = tcp_flags(buf) if t[0] == IPPROTO_TCP else 0
        if conn is not None:
            if conn.fw_gen != svc.fw.generation and not self._revalidate(svc, conn):
                svc.ct.remove(conn)
                return self.drop(pkt, "fw-drop", f"flow {tuple_str(conn.orig)} denied by a changed rule")
            stale_nat = (conn.snat is not None and not conn.snat.active) or (
                conn.dnat is not None and not conn.dnat.active
            )
            reopen = flags & SYN and not flags & ACK and direction == ORIG and conn.state in (TIME_WAIT, CLOSED)
            if stale_nat or reopen:
                svc.ct.remove(conn)
                conn = None
        if conn is not None:
            self._record(pkt, svc, conn, direction)
            svc.ct.touch(conn, direction, len(buf) - 14, monotonic(), flags)
            target = conn.target(direction)
            if t[3] != target[3] or t[4] != target[4]:
                rewrite(buf, 14, False, target[3], target[4])
            pkt.conn = conn
            pkt.conn_dir = direction
            pkt.note(self.name, f"conntrack {conn.state} #{conn.id} ({'orig' if direction == ORIG else 'reply'})")
            return None
        # A new connection.
        if t[0] == IPPROTO_TCP and (not flags & SYN or flags & (ACK | RST)):
            return self.drop(pkt, "ct-invalid", f"tcp flags {flags:#04x} with no connection")
        if t[0] == IPPROTO_ICMP and buf[14 + (buf[14] & 0x0F) * 4] == Icmp.ECHO_REPLY:
            return self.drop(pkt, "ct-invalid", "echo reply with no request")
        pkt.flow = t
        hit = svc.nat.match_dnat(t)
        if hit is not None:
            rule, to, to_port = hit
            rule.hits += 1
            rewrite(buf, 14, False, to, to_port)
            pkt.nat_rule = rule
            pkt.note(self.name, f"dnat {ip_str(t[3])}:{t[4]} -> {ip_str(to)}:{to_port} ({rule.name})")
        elif t[3] in svc.nat.publics:
            return self.drop(pkt, "nat-no-session", tuple_str(t))
        return None

    def after_route(self, pkt: Packet, route: Route) -> str | None:
        router = pkt.router
        svc: SrServices | None = router.services  # type: ignore[union-attr]
        if svc is None or pkt.originated:
            return None
        buf = pkt.buf
        conn = pkt.conn
        if conn is not None:
            target = conn.target(pkt.conn_dir)
            rewrite(buf, 14, True, target[1], target[2])  # no-op when already right
            return None
        t = pkt.flow
        if t is None:  # a related ICMP error, already translated
            return None
        inbound = pkt.rport is not None and pkt.rport.instance is not None
        proto, src, sport = t[0], t[1], t[2]
        dst = int.from_bytes(buf[30:34], "big")
        cur, _kind = flow_tuple(buf)
        dport = cur[4]
        action, rule = svc.fw.evaluate(inbound, proto, src, dst, dport, forwarded=pkt.nat_rule is not None)
        if pkt.conn_dir == UNTRACKED:
            # An ICMP error about no connection we know: the policy decides, nothing is tracked.
            if action != "allow":
                return self.drop(
                    pkt, "fw-drop" if rule is not None else "fw-unsolicited", f"icmp error {tuple_str(cur)}"
                )
            return None
        if action == DROP:
            return self.drop(
                pkt,
                "fw-drop" if rule is not None else "fw-unsolicited",
                f"{tuple_str(cur)} ({rule.name if rule else 'default policy'})",
            )
        if action == REJECT:
            self.send_error(pkt, Icmp.DEST_UNREACH, 13)
            return self.drop(pkt, "fw-reject", f"{tuple_str(cur)} ({rule.name})")  # type: ignore[union-attr]
        if svc.ct.full():
            return self.drop(pkt, "nat-table-full", f"{len(svc.ct)} connections")
        new_src, new_sport = src, sport
        snat_rule: Any = None
        hairpin = route.transit and pkt.nat_rule is not None
        if not inbound and (not route.transit or hairpin):
            choice = svc.nat.choose_snat(cur)
            if isinstance(choice, str):  # EXHAUSTED
                return self.drop(pkt, "nat-pool-exhausted", tuple_str(cur))
            if choice is not None:
                snat_rule, new_src, new_sport = choice
                snat_rule.hits += 1
        # An echo identifier is both "ports" of an ICMP tuple: a translated one is too.
        reply = (proto, dst, new_sport if proto == IPPROTO_ICMP else dport, new_src, new_sport)
        # reply == t: a host reaching itself through its own 1:1 address; both
        # directions would look the same, so it cannot be tracked.
        if reply == t or svc.ct.taken(reply) or svc.ct.taken(t):
            if snat_rule is not None:
                svc.nat.release_port(proto, new_src, new_sport, snat_rule)
            return self.drop(pkt, "ct-clash", tuple_str(reply))
        conn = svc.ct.add(t, reply, monotonic(), inbound)
        conn.snat, conn.dnat, conn.rule, conn.fw_gen = snat_rule, pkt.nat_rule, rule, svc.fw.generation
        svc.ct.touch(
            conn, ORIG, len(buf) - 14, conn.created, buf[14 + (buf[14] & 0x0F) * 4 + 13] if proto == IPPROTO_TCP else 0
        )
        if new_src != src or new_sport != sport:
            rewrite(buf, 14, True, new_src, new_sport)
            pkt.note(self.name, f"snat {ip_str(src)}:{sport} -> {ip_str(new_src)}:{new_sport} ({snat_rule.name})")  # type: ignore[union-attr]
        pkt.conn, pkt.conn_dir = conn, ORIG
        self._record(pkt, svc, conn, ORIG)
        pkt.note(self.name, f"conntrack new #{conn.id} {tuple_str(t)} ({rule.name if rule else 'default policy'})")
        return None

    def _record(self, pkt: Packet, svc: SrServices, conn: Any, direction: int) -> None:
        """Tell the cache: this flow is matched on its 5-tuple and touches ``conn``."""
        fx = pkt.fx
        if fx is None:
            return
        fx.read(L4)
        fx.conn = (svc.ct, conn)
        fx.conn_dir = direction
        fx.depend(conn, "released")
        fx.depend(svc.nat, "generation")
        fx.depend(svc.fw, "generation")

    def _revalidate(self, svc: SrServices, conn) -> bool:  # type: ignore[no-untyped-def]
        """A rule changed since this connection was allowed: would it still be?"""
        svc.revalidated += 1
        proto, src, _sport, _dst, _dport = conn.orig
        fw_dst, fw_dport = conn.reply[1], conn.reply[2]  # the destination after DNAT
        action, rule = svc.fw.evaluate(
            conn.inbound, proto, src, fw_dst, fw_dport, forwarded=conn.dnat is not None, count=False
        )
        if action != "allow":
            return False
        conn.rule, conn.fw_gen = rule, svc.fw.generation
        return True

    def _icmp_error(self, pkt: Packet, svc: SrServices, t) -> str | None:  # type: ignore[no-untyped-def]
        """An ICMP error: related to a tracked connection, or treated as a new flow."""
        buf = pkt.buf
        found = inner_tuple(buf)
        conn = None
        if found is not None:
            inner, ioff = found
            conn, direction = svc.ct.lookup(inverse(inner))
        if pkt.fx is not None:
            pkt.fx.no_cache("icmp-error")
        if conn is None:
            pkt.flow = t  # unrelated: the firewall decides, and it is not tracked
            pkt.conn_dir = UNTRACKED
            return None
        svc.related += 1
        cur = conn.orig if direction == ORIG else conn.reply
        target = conn.target(direction)
        if t[1] == cur[1] and t[1] != target[1]:
            rewrite(buf, 14, True, target[1], 0)
        if t[3] != target[3]:
            rewrite(buf, 14, False, target[3], 0)
        quoted = inverse(target)
        rewrite(buf, ioff, True, quoted[1], quoted[2])
        rewrite(buf, ioff, False, quoted[3], quoted[4])
        fix_icmp_error(buf, 14, ioff)
        conn.last = monotonic()
        pkt.note(self.name, f"icmp error related to #{conn.id}: translated to {ip_str(target[3])}")
        return None

    def tick(self, now: float) -> None:
        super().tick(now)
        for router in self.dp.model.routers:
            if router.kind == self.name and router.services is not None:
                router.services.ct.expire(now)
