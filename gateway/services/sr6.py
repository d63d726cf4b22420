"""The SR's services for IPv6: the same conntrack and firewall, no NAT.

Where this sits: :class:`SrServices` (``sr.py``) inherits these two
decisions; the ``sr`` stage calls them instead of ``inbound``/``outbound``
for an IPv6 packet.  Tenants use global prefixes, so nothing is translated
(DESIGN 1.2: no NAT by default for IPv6): a connection is tracked so that
replies and related ICMPv6 errors (packet too big above all: IPv6 routers
never fragment, path MTU discovery depends on them) come back in, and
unsolicited inbound traffic meets the firewall's default policy.  One table
holds both families' connections: an IPv6 address the gateway forwards is
never in ::/96, so the two never share a tuple.
"""

from __future__ import annotations

from typing import Any

from gateway.headers import IPPROTO_TCP
from gateway.l4 import ICMP6_ECHO_REPLY, ICMP_ERROR, UNTRACKABLE, FlowTuple, flow_tuple6, inner_tuple6
from gateway.services.conntrack import ACK, CLOSED, ORIG, RST, SYN, TIME_WAIT, UNTRACKED, ConnTable, tuple_str
from gateway.services.firewall import DROP, REJECT, Firewall
from gateway.services.verdict import SrPacket, Verdict


class Ipv6Services:
    ct: ConnTable
    fw: Firewall
    related: int

    def _revalidate(self, conn: Any) -> bool:
        """SrServices's: would a changed rule still allow it?"""
        raise NotImplementedError

    def _record(self, pkt: SrPacket, conn: Any, direction: int, v6: bool = False) -> None:
        """SrServices's: tell the cache what the flow's entry depends on."""
        raise NotImplementedError

    def inbound6(self, pkt: SrPacket, now: float) -> Verdict | None:
        buf = pkt.buf
        t, kind, l4 = flow_tuple6(buf)
        if kind == UNTRACKABLE:
            return Verdict("untrackable", tuple_str(t))
        if kind == ICMP_ERROR:
            inner = inner_tuple6(buf, l4)
            conn = self.ct.lookup(inner.inverse())[0] if inner is not None else None
            if conn is None:
                pkt.flow = t  # unrelated: the firewall decides, and it is not tracked
                pkt.conn_dir = UNTRACKED
                if pkt.fx is not None:
                    pkt.fx.no_cache("icmp-error")
                return None
            self.related += 1
            conn.last = now
            if pkt.fx is not None:
                pkt.fx.no_cache("icmp-error")
            if pkt.trace is not None:
                pkt.note("sr", f"icmp6 error related to #{conn.id}")
            return None
        conn, direction = self.ct.lookup(t)
        flags = buf[l4 + 13] if t.proto == IPPROTO_TCP else 0
        if conn is not None:
            if conn.fw_gen != self.fw.generation and not self._revalidate(conn):
                self.ct.remove(conn)
                return Verdict("fw-drop", f"flow {tuple_str(conn.orig)} denied by a changed rule")
            if flags & SYN and not flags & ACK and direction == ORIG and conn.state in (TIME_WAIT, CLOSED):
                self.ct.remove(conn)
                conn = None
        if conn is not None:
            self._record(pkt, conn, direction, v6=True)
            self.ct.touch(conn, direction, len(buf) - 14, now, flags)
            pkt.conn, pkt.conn_dir = conn, direction
            if pkt.trace is not None:
                pkt.note("sr", f"conntrack {conn.state} #{conn.id} ({'orig' if direction == ORIG else 'reply'})")
            return None
        if t.proto == IPPROTO_TCP and (not flags & SYN or flags & (ACK | RST)):
            return Verdict("ct-invalid", f"tcp flags {flags:#04x} with no connection")
        if t.proto == 58 and buf[l4] == ICMP6_ECHO_REPLY:
            return Verdict("ct-invalid", "echo reply with no request")
        pkt.flow = t
        return None

    def outbound6(self, pkt: SrPacket, via_transit: bool, now: float) -> Verdict | None:
        if pkt.conn is not None:
            return None  # a known connection: nothing to translate
        t: FlowTuple | None = pkt.flow
        if t is None:
            return None  # a related ICMPv6 error
        rport = pkt.rport
        inbound = rport is not None and rport.instance is not None and rport is not rport.router.transit_port
        action, rule = self.fw.evaluate(inbound, t.proto, t.src, t.dst, t.dport, forwarded=False)
        unsolicited = "fw-drop" if rule is not None else "fw-unsolicited"
        if pkt.conn_dir == UNTRACKED:
            return None if action == "allow" else Verdict(unsolicited, f"icmp6 error {tuple_str(t)}")
        if action == DROP:
            return Verdict(unsolicited, f"{tuple_str(t)} ({rule.name if rule else 'default policy'})")
        if action == REJECT:
            return Verdict("fw-reject", f"{tuple_str(t)} ({rule.name})", reject=True)  # type: ignore[union-attr]
        full = self.ct.full_reason()
        if full is not None:
            return Verdict("nat-table-full", full)
        reply = t.inverse()
        if self.ct.taken(reply) or self.ct.taken(t):
            return Verdict("ct-clash", tuple_str(reply))
        conn = self.ct.add(t, reply, now, inbound)
        conn.rule, conn.fw_gen = rule, self.fw.generation
        _tuple, _kind, l4 = flow_tuple6(pkt.buf)
        flags = pkt.buf[l4 + 13] if t.proto == IPPROTO_TCP else 0
        self.ct.touch(conn, ORIG, len(pkt.buf) - 14, conn.created, flags)
        pkt.conn, pkt.conn_dir = conn, ORIG
        self._record(pkt, conn, ORIG, v6=True)
        if pkt.trace is not None:
            pkt.note("sr", f"conntrack new #{conn.id} {tuple_str(t)} ({rule.name if rule else 'default policy'})")
        return None
