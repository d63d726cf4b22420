"""Keywords: EVI between sites (topology evi-dci), judged on the core and at the hosts.

The checks are ``suites/lib/evi.py``'s, shared with ``suites/e2e/test_evi.py``.
"""

from __future__ import annotations

from typing import Any

from robot.api import logger
from robotlibcore import keyword
from scapy.layers.inet import GRE, IP

from suites.lib import evi
from suites.lib.expect import poll
from suites.lib.keywords.context import Context


class EviKeywords:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.copies: list[tuple[str, Any]] = []
        self.dst_mac = ""
        self.new_macs = 0
        self.replies: list[Any] = []
        self.arp_target = ""
        self.df_received = -1
        self.crashed = ""
        self.crashed_at = 0.0

    @property
    def lab(self) -> Any:
        return self.ctx.lab

    @keyword("every site reaches every other in the extended VLAN")
    def mesh(self) -> None:
        poll(lambda: evi.mesh_up(self.lab), timeout=15, what="every site reaching every other")

    @keyword("${src:[\\w-]+} sends a frame to ${dst:[\\w-]+} while the core is captured")
    def frame_to(self, src: str, dst: str) -> None:
        self.dst_mac = evi.mac(self.lab, dst)
        self.copies = evi.copies_on_core(self.lab, src, self.dst_mac)
        logger.info(f"copies arriving at the core: {[(i, p.summary()) for i, p in self.copies]}")

    @keyword("${src:[\\w-]+} broadcasts a frame while the core is captured")
    def broadcast(self, src: str) -> None:
        self.dst_mac = "ff:ff:ff:ff:ff:ff"
        self.copies = evi.copies_on_core(self.lab, src, self.dst_mac)
        logger.info(f"copies arriving at the core: {[(i, p.summary()) for i, p in self.copies]}")

    @keyword("${src:[\\w-]+} sends a frame to an unknown MAC while the core is captured")
    def unknown(self, src: str) -> None:
        self.dst_mac = "02:00:0e:99:99:98"
        self.copies = evi.copies_on_core(self.lab, src, self.dst_mac)

    @keyword("the core carries it as MAC-in-GRE with network id ${netid:\\d+} and DF")
    def gre_format(self, netid: str) -> None:
        if not self.copies:
            raise AssertionError("no MAC-in-GRE packet with the frame arrived at the core")
        for _iface, p in self.copies:
            g = p[GRE]
            if not (p[IP].flags == "DF" and g.key_present and not g.chksum_present and not g.seqnum_present):
                raise AssertionError(f"not GRE with only the key bit, DF set: {p.summary()} {g.fields}")
            if g.proto != 0x6558 or g.key >> 8 != int(netid) or evi.inner(p).dst != self.dst_mac:
                raise AssertionError(f"protocol {g.proto:#06x}, key {g.key:#x}: expected 0x6558, {netid} << 8")

    @keyword("the core carries one copy to each of ${sites}")
    def one_copy_each(self, sites: str) -> None:
        """``sites``: site numbers, e.g. ``2 and 3``; the copies must all come from site 1's edge
        (another site never sends a frame it got from a site on: split horizon)."""
        wanted = sorted(evi.tunnel_address(int(s)) for s in sites.replace("and", " ").split())
        got = sorted(p[IP].dst for _iface, p in self.copies)
        senders = {p[IP].src for _iface, p in self.copies}
        if got != wanted or senders - {evi.tunnel_address(1)}:
            raise AssertionError(f"copies from {sorted(senders)} to {got}; expected one each to {wanted} from site 1")

    @keyword("the core carries nothing of it")
    def nothing(self) -> None:
        if self.copies:
            raise AssertionError(f"{len(self.copies)} copies went into the core: {self.copies[0][1].summary()}")

    @keyword("a new MAC appears at ${host:[\\w-]+}")
    def new_mac_at(self, host: str) -> None:
        """A MAC nobody has seen sends one frame at ``host`` (to nobody known: it stays there)."""
        self.new_macs += 1
        self.dst_mac = f"02:00:0e:01:bb:{self.new_macs:02x}"
        evi.send_from_new_mac(self.lab, host, self.dst_mac)

    @keyword("the MAC moves to ${host:[\\w-]+}")
    def mac_moves(self, host: str) -> None:
        evi.send_from_new_mac(self.lab, host, self.dst_mac)

    @keyword("${src:[\\w-]+} reaches the new MAC at ${host:[\\w-]+}")
    def reaches_new_mac(self, src: str, host: str) -> None:
        poll(
            lambda: evi.unicast_arrives(self.lab, src, self.dst_mac, host),
            timeout=8,
            what=f"{src}'s unicast to {self.dst_mac} arriving at {host}",
        )

    @keyword("${src:[\\w-]+} no longer reaches the new MAC at ${host:[\\w-]+}")
    def not_at(self, src: str, host: str) -> None:
        if evi.unicast_arrives(self.lab, src, self.dst_mac, host):
            raise AssertionError(f"frames to {self.dst_mac} still arrive at {host}")

    @keyword("${src:[\\w-]+} asks for the MAC of ${target:[\\w-]+} again")
    def arp_again(self, src: str, target: str) -> None:
        self.replies, self.copies = evi.arp_across(self.lab, src, target)
        self.arp_target = target

    @keyword("the answer comes from the edge, not across the core")
    def arp_suppressed(self) -> None:
        want = evi.mac(self.lab, self.arp_target)
        if [r.hwsrc for r in self.replies] != [want]:
            raise AssertionError(f"ARP replies {[r.hwsrc for r in self.replies]}, expected one with {want}")
        self.nothing()

    @keyword("${src:[\\w-]+} pings ${dst:[\\w-]+} with ${size:\\d+} bytes and DF set")
    def ping_df(self, src: str, dst: str, size: str) -> None:
        self.df_received = evi.ping_df(self.lab, src, dst, int(size))

    @keyword("the big pings are answered")
    def df_ok(self) -> None:
        if self.df_received != 2:
            raise AssertionError(f"{self.df_received} of 2 answered")

    @keyword("no big ping is answered")
    def df_lost(self) -> None:
        if self.df_received != 0:
            raise AssertionError(f"{self.df_received} of 2 answered: a frame too big for the core went through")

    @keyword("${edge:[\\w-]+} stops")
    def edge_stops(self, edge: str) -> None:
        self.lab.stop_gateway(edge)

    @keyword("${edge:[\\w-]+} starts again")
    def edge_starts(self, edge: str) -> None:
        self.lab.start_gateway(edge)

    @keyword("a broadcast from site 1 reaches only ${sites}")
    def only(self, sites: str) -> None:
        wanted = sorted(evi.tunnel_address(int(s)) for s in sites.replace("and", " ").split())
        poll(lambda: evi.broadcast_destinations(self.lab) == wanted, timeout=12, what=f"broadcasts to {wanted} only")

    @keyword("a broadcast from ${src:[\\w-]+} reaches ${dst:[\\w-]+} once")
    def reaches_once(self, src: str, dst: str) -> None:
        n = evi.received_once(self.lab, src, dst)
        if n != 1:
            raise AssertionError(f"{dst} got {n} copies of {src}'s broadcast")

    @keyword("the broadcast of ${host:[\\w-]+} enters the core from one edge only")
    def one_edge(self, host: str) -> None:
        self.crashed = evi.forwarder(self.lab, host)
        logger.info(f"{host}'s site forwards through {self.crashed}")

    @keyword("that edge crashes")
    def forwarder_crashes(self) -> None:
        import time

        self.lab.gateway(self.crashed).crash()
        self.crashed_at = time.monotonic()

    @keyword("${src:[\\w-]+} reaches ${dst:[\\w-]+} again within ${seconds:\\d+} seconds")
    def reaches_again(self, src: str, dst: str, seconds: str) -> None:
        import time

        from suites.lib import traffic

        node, addr = self.lab.host(src), evi.ip(self.lab, dst)
        poll(lambda: traffic.ping(node, addr, count=1, wait=0.3).ok, timeout=float(seconds), what=f"{src} -> {dst}")
        logger.info(f"{src} reached {dst} {time.monotonic() - self.crashed_at:.2f} s after the crash")

    @keyword("the crashed edge comes back")
    def crashed_back(self) -> None:
        self.lab.start_gateway(self.crashed)
        self.mesh()
