"""The output half of a router's walk, the same for both address families: the services'
hooks, the next hop, the neighbour (ARP for IPv4, ND for IPv6) and the MAC rewrite.

Where this sits: the base of the routing walks (``routing6.py`` for IPv6,
``routing.py`` for IPv4 and the dispatch between them), which the ``dr`` and
``sr`` stages run.  A walk that has found a route calls :meth:`output`; what
has no neighbour entry yet waits in the family's table behind a resolution
(:meth:`resolve`: an ARP request, or a neighbour solicitation).
"""

from __future__ import annotations

import zlib
from time import monotonic

from gateway.effects import L4, L4_6
from gateway.headers import HeaderError, ip_str, mac_str
from gateway.headers6 import ip6_str, upper_layer
from gateway.l3 import arp_request
from gateway.l3v6 import neighbour_solicit
from gateway.model import Router, RouterPort
from gateway.packet import Packet
from gateway.stages.base import DONE, Context, Stage
from gateway.tables.arp import ArpTable
from gateway.tables.fib import Route


def flow_hash(buf: bytearray) -> int:
    """A hash of the 5-tuple (ports when present), the same for every packet of a flow.  An
    IPv6 packet's ports are past its extension headers (walked already: the chain is sound)."""
    if buf[12] == 0x86 and buf[13] == 0xDD:
        try:
            nh, l4, fragment = upper_layer(buf, 14)
        except HeaderError:  # (an own packet, never walked: the addresses alone)
            return zlib.crc32(bytes(buf[22:54]))
        ports = bytes(buf[l4 : l4 + 4]) if nh in (6, 17) and not fragment and len(buf) >= l4 + 4 else b""
        return zlib.crc32(bytes((nh,)) + bytes(buf[22:54]) + ports)
    ihl = (buf[14] & 0x0F) * 4
    l4 = 14 + ihl
    ports = bytes(buf[l4 : l4 + 4]) if buf[23] in (6, 17) and len(buf) >= l4 + 4 else b""
    return zlib.crc32(bytes(buf[23:24]) + bytes(buf[26:34]) + ports)


def is_ipv6(pkt: Packet) -> bool:
    return pkt.buf[12] == 0x86 and pkt.buf[13] == 0xDD


class Forwarding(Stage):
    """Hooks, next hop, neighbour, rewrite: what both families' walks end with."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.arp_requests = 0
        self.nd_solicits = 0
        self.arp_misses = 0  # packets queued behind a resolution (ARP or ND)
        self.echo_replies = 0
        self.icmp_errors = 0
        self.punted = 0  # to the kernel (a TLR or the management namespace) or to a process

    # -- hooks for the SR's services -------------------------------------------------
    def before_route(self, pkt: Packet) -> str | None:
        """Runs before the FIB lookup (the SR does DNAT here). A return value ends the walk."""
        return None

    def after_route(self, pkt: Packet, route: Route) -> str | None:
        """Runs after the FIB lookup, towards a segment (the SR's firewall and SNAT)."""
        return None

    def to_process(self, pkt: Packet, client: str, total: int) -> str:
        """For a process (BFD and hellos: the HA agent), through the unix-socket transport; or
        for the state replication (ha/sync.py), which answers at the sender's MAC."""
        buf = pkt.buf
        meta = {
            "type": "packet",
            "router": pkt.router.label,  # type: ignore[union-attr]
            "port": pkt.rport.label if pkt.rport else None,
            "src_mac": buf[6:12].hex(),
        }
        if not self.ctx.punt(client, meta, bytes(buf[14 : 14 + total])):
            return self.drop(pkt, "no-punt-client", f"for the {client} process, which is not connected")
        self.punted += 1
        if pkt.trace is not None:
            pkt.note(self.name, f"punted to the {client} process")
        return DONE

    def to_kernel(self, pkt: Packet, tag: int, total: int, where: str) -> str:
        """A packet for an SR address the datapath does not answer itself, of either family: to
        the namespace tagged ``tag`` (``gateway/kernel.py``)."""
        if pkt.fx is not None:
            pkt.fx.no_cache("local")
        meta = {"tag": tag, "router": pkt.router.label}  # type: ignore[union-attr]
        if not self.ctx.punt("kernel", meta, bytes(pkt.buf[14 : 14 + total])):
            return self.drop(pkt, "no-punt-client", f"no kernel transport for {where}")
        self.punted += 1
        if pkt.trace is not None:
            pkt.note(self.name, f"to the kernel, tag {tag} ({where})")
        return DONE

    # -- output ------------------------------------------------------------------------
    def output(self, pkt: Packet, route: Route, dst: int) -> str:
        verdict = self.after_route(pkt, route)
        if verdict is not None:
            return verdict
        v6 = is_ipv6(pkt)
        if route.transit:
            pkt.next_hop = route.via  # type: ignore[assignment]
            if pkt.trace is not None:
                text = ip6_str if v6 else ip_str
                pkt.note(self.name, f"{text(dst)} via transit {ip_str(route.via)}")  # type: ignore[arg-type]
            return "transit"
        if route.ecmp:
            nh, rport = route.pick(flow_hash(pkt.buf))
            if pkt.fx is not None:
                pkt.fx.read(L4_6 if v6 else L4)  # the next hop depends on the whole 5-tuple
        else:
            rport = route.port  # type: ignore[assignment]
            nh = route.via if route.via is not None else dst
        return self.to_neighbour(pkt, rport, nh, v6)

    def to_neighbour(self, pkt: Packet, rport: RouterPort, nh: int, v6: bool) -> str:
        """Send ``pkt`` to next hop ``nh`` on ``rport``'s segment, or queue it behind a resolution."""
        router: Router = pkt.router  # type: ignore[assignment]
        table: ArpTable = router.nd if v6 else router.arp  # type: ignore[assignment]
        neighbour = table.entry(rport, nh)
        if neighbour is None:
            if pkt.fx is not None:
                pkt.fx.no_cache("arp-miss")
            return self.resolve(pkt, rport, nh, v6)
        mac = neighbour.mac
        self.rewrite(pkt, rport, mac)
        fx = pkt.fx
        if fx is not None:
            fx.depend(neighbour, "valid")
            where = self.ctx.macs.lookup(rport.instance, mac)  # type: ignore[arg-type]
            if where is None:
                fx.no_cache("flood")
            else:
                fx.depend(where, "valid")
        if pkt.trace is not None:
            text = ip6_str if v6 else ip_str
            pkt.note(self.name, f"via {text(nh)} ({mac_str(mac)}) on {rport.instance.name}")  # type: ignore[union-attr]
        return "egress"

    def rewrite(self, pkt: Packet, rport: RouterPort, mac: bytes) -> None:
        buf = pkt.buf
        buf[0:6] = mac
        buf[6:12] = rport.mac
        pkt.outputs = self.ctx.macs.resolve(rport.instance, mac)  # type: ignore[arg-type]

    # -- resolution --------------------------------------------------------------------
    def resolve(self, pkt: Packet, rport: RouterPort, nh: int, v6: bool = False) -> str:
        router: Router = pkt.router  # type: ignore[assignment]
        table: ArpTable = router.nd if v6 else router.arp  # type: ignore[assignment]
        queued, new = table.enqueue(rport, nh, pkt, monotonic())
        text = ip6_str if v6 else ip_str
        if not queued:
            return self.drop(pkt, "nd-queue-full" if v6 else "arp-queue-full", text(nh))
        self.arp_misses += 1
        if new:
            if v6:
                self.send_solicit(rport, nh, pkt.trace)
            else:
                self.send_arp_request(rport, nh, pkt.trace)
        if pkt.trace is not None:
            pkt.note(self.name, f"{'nd' if v6 else 'arp'} miss for {text(nh)} on {rport.instance.name}: queued")  # type: ignore[union-attr]
        return DONE

    def send_arp_request(self, rport: RouterPort, ip: int, trace: list[str] | None = None) -> None:
        # An address we yield (HA without preemption) is not ours to announce: ask as an
        # ARP probe (sender 0.0.0.0, RFC 5227), so nobody rebinds it to our MAC.
        sender = 0 if rport.ip in rport.router.yielded else rport.ip
        req = Packet(arp_request(rport.mac, sender, ip), None, None)
        req.outputs = rport.instance.members  # type: ignore[union-attr]
        req.trace = trace
        self.arp_requests += 1
        self.ctx.emit(req, "egress")

    def send_solicit(self, rport: RouterPort, ip: int, trace: list[str] | None = None) -> None:
        """A multicast neighbour solicitation for ``ip``, from the port's global address
        (its link-local one for a link-local target, or when the global one is yielded)."""
        # (An address we yield, HA without preemption, is not ours to bind to our MAC.)
        glob = rport.ip6
        src = rport.ll6 if glob is None or glob in rport.router.yielded or ip >> 118 == 0x3FA else glob
        req = Packet(neighbour_solicit(rport.mac, src, ip), None, None)
        req.outputs = rport.instance.members  # type: ignore[union-attr]
        req.trace = trace
        self.nd_solicits += 1
        self.ctx.emit(req, "egress")
