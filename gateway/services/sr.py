"""The SR's services as two decisions: ``inbound`` before routing, ``outbound`` after.

Where this sits: the ``sr`` stage (``stages/sr.py``) routes; it calls
:meth:`SrServices.inbound` before its FIB lookup and
:meth:`SrServices.outbound` once the next hop is chosen, in the order DESIGN
1.2 fixes.  Each returns None (carry on) or a :class:`Verdict` (drop with a
named reason, or reject: the stage sends ICMP administratively prohibited).
They rewrite the packet in place and set ``pkt.conn``/``pkt.conn_dir``; for
the cache they record on ``pkt.fx`` what the decision read and depends on.

``inbound`` (every packet the SR forwards)
    conntrack lookup.  Known connection: rewrite the *destination* as the
    connection says (un-SNAT of a reply, DNAT of an inbound flow), so the FIB
    sees the real destination.  ICMP error quoting a tracked packet (state
    related): translate outer and quoted headers back.  New connection: TCP
    that does not open with SYN is invalid; a destination that matches a DNAT
    or 1:1 rule is rewritten; a public NAT address with no session is dropped.
``outbound`` (once the next hop is chosen)
    known connection: rewrite the *source* as the connection says.  New
    connection: the firewall decides (rules in order, else the default
    policy), then SNAT picks the public source (uplink-bound traffic of a
    tenant source, and hairpin traffic that was DNAT'd back inside), then the
    connection is created.
"""

from __future__ import annotations

from time import monotonic
from typing import Any

from gateway.effects import L4, L4_6, Effects
from gateway.epoch import Epoch
from gateway.headers import IPPROTO_ICMP, IPPROTO_TCP, Icmp, ip_str
from gateway.l4 import (
    ICMP_ERROR,
    PORTS,
    UNTRACKABLE,
    FlowTuple,
    fix_icmp_error,
    flow_tuple,
    inner_tuple,
    rewrite,
    tcp_flags,
)
from gateway.services.conntrack import (
    ACK,
    CLOSED,
    ORIG,
    RST,
    SYN,
    TIME_WAIT,
    UNTRACKED,
    ConnTable,
    SessionBudget,
    tuple_str,
)
from gateway.services.expect import Expectation, Expectations
from gateway.services.firewall import DROP, REJECT, Firewall
from gateway.services.nat import Nat
from gateway.services.reasm import Reassembly
from gateway.services.rules import FirewallConfig, NatConfig, SnatRule
from gateway.services.sr6 import Ipv6Services
from gateway.services.verdict import SrPacket, Verdict

DROPS = (
    "untrackable",  # an IPv6 fragment, or a cut-short L4 header: no ports to track or translate
    "frag-table-full",  # IPv4 fragments: too many datagrams waiting to be whole (reasm.py)
    "frag-too-big",  # ... one past 65,535 bytes
    "frag-bad-length",  # ... a fragment but the last whose data is no multiple of 8 bytes
    "frag-overlap",  # ... fragments that overlap (the datagram is dropped)
    "ct-invalid",  # TCP without a SYN and no connection; an echo reply nobody asked for
    "nat-no-session",  # to a public NAT address, matching no session and no DNAT rule
    "fw-drop",  # a firewall rule said drop (also an existing flow after a rule change)
    "fw-reject",  # a firewall rule said reject: ICMP administratively prohibited sent
    "fw-unsolicited",  # inbound, new, not forwarded by NAT, no rule allowing it
    "nat-table-full",  # the connection table is at its configured limit
    "nat-pool-exhausted",  # no free public (address, port) in the SNAT pool
    "ct-clash",  # the reply tuple of a new connection is already in use
)


class SrServices(Ipv6Services):
    def __init__(
        self,
        nat: NatConfig,
        firewall: FirewallConfig,
        epoch: Epoch,
        budget: SessionBudget | None = None,
        alg_ports: dict[int, str] | None = None,
    ) -> None:
        self.ct = ConnTable(nat.max_sessions, epoch, nat.timeouts, budget)
        self.nat = Nat(nat, epoch)
        self.fw = Firewall(firewall, epoch)
        self.ct.on_release = self.nat.release
        # TCP server port -> the application-level gateway reading those connections' payload.
        self.alg_ports = dict(alg_ports or {})
        self.expects = Expectations(self.nat)
        self.reasm = Reassembly()  # IPv4 fragments, whole before conntrack and NAT see them
        self.related = 0
        self.related_admitted = 0  # new connections an ALG announced, admitted as related
        self.revalidated = 0

    # -- before routing --------------------------------------------------------------------
    def inbound(self, pkt: SrPacket, now: float) -> Verdict | None:
        buf = pkt.buf
        t, kind = flow_tuple(buf)
        if kind == UNTRACKABLE:
            return Verdict("untrackable", tuple_str(t))
        if kind == ICMP_ERROR:
            return self._icmp_error(pkt, t, now)
        conn, direction = self.ct.lookup(t)
        flags = tcp_flags(buf) if t.proto == IPPROTO_TCP else 0
        if conn is not None:
            if conn.fw_gen != self.fw.generation and not self._revalidate(conn):
                self.ct.remove(conn)
                return Verdict("fw-drop", f"flow {tuple_str(conn.orig)} denied by a changed rule")
            stale_nat = (conn.snat is not None and not conn.snat.active) or (
                conn.dnat is not None and not conn.dnat.active
            )
            reopen = flags & SYN and not flags & ACK and direction == ORIG and conn.state in (TIME_WAIT, CLOSED)
            if stale_nat or reopen:
                self.ct.remove(conn)
                conn = None
        if conn is not None:
            self._record(pkt, conn, direction)
            self.ct.touch(conn, direction, len(buf) - 14, now, flags)
            target = conn.target(direction)
            if t.dst != target.dst or t.dport != target.dport:
                rewrite(buf, 14, False, target.dst, target.dport)
            pkt.conn = conn
            pkt.conn_dir = direction
            if pkt.trace is not None:
                pkt.note("sr", f"conntrack {conn.state} #{conn.id} ({'orig' if direction == ORIG else 'reply'})")
            return None
        # A new connection.
        if t.proto == IPPROTO_TCP and (not flags & SYN or flags & (ACK | RST)):
            return Verdict("ct-invalid", f"tcp flags {flags:#04x} with no connection")
        if t.proto == IPPROTO_ICMP and buf[14 + (buf[14] & 0x0F) * 4] == Icmp.ECHO_REPLY:
            return Verdict("ct-invalid", "echo reply with no request")
        pkt.flow = t
        exp = self.expects.match(t.dst, t.dport, t.src) if self.expects and t.proto == IPPROTO_TCP else None
        if exp is not None:
            # Announced on a control connection (an FTP data connection): related.
            if exp.translates:
                rewrite(buf, 14, False, exp.to, exp.to_port)
            pkt.nat_rule = exp
            if pkt.trace is not None:
                pkt.note(
                    "sr", f"related to #{exp.master.id}: {ip_str(t.dst)}:{t.dport} -> {ip_str(exp.to)}:{exp.to_port}"
                )
            return None
        hit = self.nat.match_dnat(t)
        if hit is not None:
            rule, to, to_port = hit
            rule.hits += 1
            rewrite(buf, 14, False, to, to_port)
            pkt.nat_rule = rule
            if pkt.trace is not None:
                pkt.note("sr", f"dnat {ip_str(t.dst)}:{t.dport} -> {ip_str(to)}:{to_port} ({rule.name})")
        elif t.dst in self.nat.publics:
            return Verdict("nat-no-session", tuple_str(t))
        return None

    # -- after routing ---------------------------------------------------------------------
    def outbound(self, pkt: SrPacket, via_transit: bool, now: float) -> Verdict | None:
        """``via_transit``: the route chosen leads back over the transit switch (to the DR)."""
        buf = pkt.buf
        conn = pkt.conn
        if conn is not None:
            target = conn.target(pkt.conn_dir)
            rewrite(buf, 14, True, target.src, target.sport)  # no-op when already right
            return None
        t = pkt.flow
        if t is None:  # a related ICMP error, already translated
            return None
        # Inbound: it came in on one of the SR's own segments (the uplink), not from its DR --
        # over the internal transit (a port of no instance) or a real transit segment (the
        # router's transit port, which has an instance like any other).
        rport = pkt.rport
        inbound = rport is not None and rport.instance is not None and rport is not rport.router.transit_port
        # After DNAT: what the firewall judges (untranslated: the tuple inbound took).
        cur = t if pkt.nat_rule is None else flow_tuple(buf)[0]
        related = pkt.nat_rule if isinstance(pkt.nat_rule, Expectation) else None
        if related is not None:
            action, rule = "allow", None  # admitted as related to its control connection
            self.related_admitted += 1
        else:
            action, rule = self.fw.evaluate(
                inbound, t.proto, t.src, cur.dst, cur.dport, forwarded=pkt.nat_rule is not None
            )
        if pkt.conn_dir == UNTRACKED:
            # An ICMP error about no connection we know: the policy decides, nothing is tracked.
            if action != "allow":
                return Verdict("fw-drop" if rule is not None else "fw-unsolicited", f"icmp error {tuple_str(cur)}")
            return None
        if action == DROP:
            return Verdict(
                "fw-drop" if rule is not None else "fw-unsolicited",
                f"{tuple_str(cur)} ({rule.name if rule else 'default policy'})",
            )
        if action == REJECT:
            return Verdict("fw-reject", f"{tuple_str(cur)} ({rule.name})", reject=True)  # type: ignore[union-attr]
        full = self.ct.full_reason()
        if full is not None:
            return Verdict("nat-table-full", full)
        new_src, new_sport = t.src, t.sport
        snat_rule: Any = None
        hairpin = via_transit and pkt.nat_rule is not None
        master = related.master if related is not None else None
        if not inbound and master is not None and isinstance(master.snat, SnatRule):
            # A related connection leaves from its control connection's public address.
            port = self.nat.reserve(t.proto, master.reply.dst, t.sport)
            if port is None:
                return Verdict("nat-pool-exhausted", tuple_str(cur))
            snat_rule, new_src, new_sport = master.snat, master.reply.dst, port
        elif not inbound and (not via_transit or hairpin):
            choice = self.nat.choose_snat(cur)
            if isinstance(choice, str):  # EXHAUSTED
                return Verdict("nat-pool-exhausted", tuple_str(cur))
            if choice is not None:
                snat_rule, new_src, new_sport = choice
                snat_rule.hits += 1
        # An echo identifier is both "ports" of an ICMP tuple: a translated one is too.
        back = PORTS[new_sport if t.proto == IPPROTO_ICMP else cur.dport]
        # The objects the packet's tuple and the pool hold, read as such (an int read by the
        # compiled code would be boxed anew: 32 bytes a connection each).
        objs: tuple[Any, ...] = cur
        dst = self.nat.address(new_src) if snat_rule is not None else objs[1]
        reply = FlowTuple(t.proto, objs[3], back, dst, PORTS[new_sport])
        # reply == t: a host reaching itself through its own 1:1 address; both
        # directions would look the same, so it cannot be tracked.
        if reply == t or self.ct.taken(reply) or self.ct.taken(t):
            if snat_rule is not None:
                self.nat.release_port(t.proto, new_src, new_sport, snat_rule)
            return Verdict("ct-clash", tuple_str(reply))
        conn = self.ct.add(t, reply, now, inbound)
        conn.snat, conn.dnat, conn.rule, conn.fw_gen = snat_rule, pkt.nat_rule, rule, self.fw.generation
        if related is not None:
            conn.master, conn.held, related.held = master, related.held, None  # it holds the port now
        elif t.proto == IPPROTO_TCP and self.alg_ports:
            conn.alg = self.alg_ports.get(reply.sport)
        flags = buf[14 + (buf[14] & 0x0F) * 4 + 13] if t.proto == IPPROTO_TCP else 0
        self.ct.touch(conn, ORIG, len(buf) - 14, conn.created, flags)
        if new_src != t.src or new_sport != t.sport:
            rewrite(buf, 14, True, new_src, new_sport)
            if pkt.trace is not None:
                pkt.note("sr", f"snat {ip_str(t.src)}:{t.sport} -> {ip_str(new_src)}:{new_sport} ({snat_rule.name})")
        pkt.conn, pkt.conn_dir = conn, ORIG
        self._record(pkt, conn, ORIG)
        if pkt.trace is not None:
            pkt.note("sr", f"conntrack new #{conn.id} {tuple_str(t)} ({rule.name if rule else 'default policy'})")
        return None

    # -- helpers -----------------------------------------------------------------------------
    def unsolicited(self, pkt: SrPacket) -> bool:
        """A new flow from outside, untranslated, that no rule admits (the firewall refuses it
        after routing): asked before routing, while the packet is as it came, so that a
        replicating SR can hold it for its peers (a reply through the SR that did not see its
        connection open: active/active SRs without NAT)."""
        t, rport = pkt.flow, pkt.rport
        if t is None or pkt.conn is not None or pkt.nat_rule is not None or pkt.conn_dir == UNTRACKED:
            return False
        if rport is None or rport.instance is None or rport is rport.router.transit_port:
            return False
        return self.fw.evaluate(True, t.proto, t.src, t.dst, t.dport, forwarded=False)[0] != "allow"

    def _record(self, pkt: SrPacket, conn: Any, direction: int, v6: bool = False) -> None:
        """Tell the cache: this flow is matched on its 5-tuple and touches ``conn`` (an IPv6
        flow is never translated: its entry does not depend on the NAT rules)."""
        fx: Effects | None = pkt.fx  # (declared: a native call, not a lookup by name)
        if fx is None:
            return
        fx.read(L4_6 if v6 else L4)
        fx.conn = (self.ct, conn)
        fx.conn_dir = direction
        fx.depend(conn, "released")
        if not v6:
            fx.depend(self.nat, "generation")
        fx.depend(self.fw, "generation")

    def _revalidate(self, conn: Any) -> bool:
        """A rule changed since this connection was allowed: would it still be?"""
        self.revalidated += 1
        orig, reply = conn.orig, conn.reply  # reply.src/sport: the destination after DNAT
        action, rule = self.fw.evaluate(
            conn.inbound, orig.proto, orig.src, reply.src, reply.sport, forwarded=conn.dnat is not None, count=False
        )
        if action != "allow":
            return False
        conn.rule, conn.fw_gen = rule, self.fw.generation
        return True

    def _icmp_error(self, pkt: SrPacket, t: FlowTuple, now: float) -> Verdict | None:
        """An ICMP error: related to a tracked connection, or treated as a new flow."""
        buf = pkt.buf
        found = inner_tuple(buf)
        conn = None
        if found is not None:
            inner, ioff = found
            conn, direction = self.ct.lookup(inner.inverse())
        if pkt.fx is not None:
            pkt.fx.no_cache("icmp-error")
        if conn is None:
            pkt.flow = t  # unrelated: the firewall decides, and it is not tracked
            pkt.conn_dir = UNTRACKED
            return None
        self.related += 1
        cur = conn.orig if direction == ORIG else conn.reply
        target = conn.target(direction)
        if t.src == cur.src and t.src != target.src:
            rewrite(buf, 14, True, target.src, 0)
        if t.dst != target.dst:
            rewrite(buf, 14, False, target.dst, 0)
        quoted = target.inverse()
        rewrite(buf, ioff, True, quoted.src, quoted.sport)
        rewrite(buf, ioff, False, quoted.dst, quoted.dport)
        fix_icmp_error(buf, 14, ioff)
        conn.last = now
        if pkt.trace is not None:
            pkt.note("sr", f"icmp error related to #{conn.id}: translated to {ip_str(target.dst)}")
        return None

    def announce(self, conn: Any, direction: int, addr: int, port: int) -> tuple[int, int] | str:
        """An ALG read an endpoint announced on ``conn``: what to write instead (``expect.py``)."""
        return self.expects.announce(conn, direction, addr, port, monotonic())

    def age(self, now: float) -> None:
        """Stale fragments and expectations (small tables, once a second); connections
        expire in the loop's slices (``Datapath.sweep``)."""
        if self.reasm.pending:
            self.reasm.expire(now)
        if self.expects:
            self.expects.expire(now)

    # -- show --------------------------------------------------------------------------------
    def show_nat(self, now: float, offset: int = 0, limit: int = 4096) -> dict[str, Any]:
        """The NAT sessions in pages, oldest first (``offset``, at most ``limit`` of them), and
        the whole table's counts."""
        page = self.ct.page(offset, limit, _translated)
        return {
            "sessions": [c.to_dict(now, self.ct.timeouts) for c in page],
            "session_count": self.ct.count(_translated),
            "table": {
                "entries": len(self.ct),
                "limit": self.ct.limit,
                "node_bound": {"used": self.ct.budget.used, "limit": self.ct.budget.limit},
                "created": self.ct.created,
                "expired": self.ct.expired,
            },
            "pools": self.nat.pool_usage(),
            "rules": self.nat.rules(),
            "public_addresses": self.nat.public_list(),
        }

    def show_conntrack(self, now: float, offset: int = 0, limit: int = 4096) -> dict[str, Any]:
        """The connections in pages, oldest first (``offset``, at most ``limit``), and their count."""
        return {
            "entries": [c.to_dict(now, self.ct.timeouts) for c in self.ct.page(offset, limit)],
            "count": len(self.ct),
            "limit": self.ct.limit,
            "timeouts": self.ct.timeouts,
            "related": self.related,
            "related_admitted": self.related_admitted,
            "expectations": self.expects.dump(now),
            "expectation_counts": dict(self.expects.counts),
            "revalidated": self.revalidated,
        }


def _translated(conn: Any) -> bool:
    return bool(conn.translated)
