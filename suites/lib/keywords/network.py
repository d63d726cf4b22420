"""Keywords: the topology and the traffic hosts send and see."""

from __future__ import annotations

from robot.api import logger
from robotlibcore import keyword
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Raw

from suites.lib import traffic
from suites.lib.expect import poll
from suites.lib.gateway import drop_count, leaked
from suites.lib.keywords.context import MARK_TYPE, Context


class TopologyKeywords:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    @keyword
    def start_topology(self, name: str = "edge-basic") -> None:
        """Start topology ``name`` with the library's DUT; ``Stop Topology`` tears it down."""
        import topologies

        self.ctx._cm = topologies.start(name, dut=self.ctx.dut, log=logger.info)
        self.ctx.lab = self.ctx._cm.__enter__()

    @keyword
    def stop_topology(self) -> None:
        """Tear the topology down; first, a warning for each gateway whose daemon holds objects in
        reference cycles (``suites.lib.gateway.leaked``: the end-to-end suites fail on it)."""
        if self.ctx._cm is not None:
            try:
                for name, report in leaked(self.ctx.lab).items():
                    logger.warn(f"{name}: objects in reference cycles, never freed: {report}")
            finally:
                cm, self.ctx._cm, self.ctx.lab = self.ctx._cm, None, None
                cm.__exit__(None, None, None)

    @keyword("Topology ${name} is running")
    def topology_is_running(self, name: str) -> None:
        if self.ctx.lab is None or self.ctx.lab.name != name:
            raise AssertionError(f"topology {name} is not running")


class TrafficKeywords:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    @keyword("${src:[\\w-]+} pings ${dst:[\\w.-]+}")
    def pings(self, src: str, dst: str) -> None:
        self.ctx.last_ping = traffic.ping(self.ctx.lab.host(src), self.ctx.resolve(dst), count=3)
        logger.info(self.ctx.last_ping.text)

    @keyword("${src:[\\w-]+} pings ${dst:[\\w.-]+} with TTL ${ttl:\\d+}")
    def pings_with_ttl(self, src: str, dst: str, ttl: str) -> None:
        self.ctx.last_ping = traffic.ping(self.ctx.lab.host(src), self.ctx.resolve(dst), count=1, ttl=int(ttl))
        logger.info(self.ctx.last_ping.text)

    @keyword("the ping succeeds")
    def ping_succeeds(self) -> None:
        result = self._last()
        if not result.ok:
            raise AssertionError(f"ping failed:\n{result.text}")

    @keyword("the replies arrive with TTL ${ttl:\\d+}")
    def replies_ttl(self, ttl: str) -> None:
        result = self._last()
        if not result.ttls or any(t != int(ttl) for t in result.ttls):
            raise AssertionError(f"expected every reply with TTL {ttl}, got {result.ttls}")

    @keyword("${router:[\\w.:-]+} answers with ${message}")
    def icmp_error_from(self, router: str, message: str) -> None:
        result = self._last()
        want = self.ctx.address(router)
        if not any(src == want and message.lower() in text.lower() for src, text in result.errors):
            raise AssertionError(f"no '{message}' from {want}; ping said:\n{result.text}")

    @keyword("${src:[\\w-]+} reaches ${dst:[\\w.-]+} through ${hops:\\d+} routed hop(s)")
    def reaches_through(self, src: str, dst: str, hops: str) -> None:
        self.pings(src, dst)
        self.ping_succeeds()
        self.replies_ttl(str(64 - int(hops)))

    @keyword("${sender:[\\w-]+} broadcasts a marked frame on VLAN ${vlan:\\d+}")
    def broadcast_marked(self, sender: str, vlan: str) -> None:
        """Send three tagged broadcasts with a marker while every host captures."""
        lab, plan = self.ctx.lab, self.ctx.plan
        marker = f"edgelab-robot-vlan-{vlan}".encode()
        caps = {
            name: traffic.Capture(lab.host(name), lab.host(name).defaultIntf().name, 3, 200) for name in plan["hosts"]
        }
        src_mac = (plan.get("probes", {}).get(sender) or plan["hosts"][sender])["mac"]
        frame = Ether(dst="ff:ff:ff:ff:ff:ff", src=src_mac) / Dot1Q(vlan=int(vlan), type=MARK_TYPE) / Raw(marker)
        traffic.send(lab.host(sender), [frame] * 3, gap_ms=20)
        self.ctx.received = {name: [f for f in cap.stop() if marker in bytes(f)] for name, cap in caps.items()}
        logger.info(f"marked frames received: { {k: len(v) for k, v in self.ctx.received.items()} }")

    @keyword("${host:[\\w-]+} receives the frame")
    def receives_frame(self, host: str) -> None:
        if not self.ctx.received.get(host):
            raise AssertionError(f"{host} did not receive the marked frame")

    @keyword("${host:[\\w-]+} does not receive the frame")
    def does_not_receive(self, host: str) -> None:
        if self.ctx.received.get(host):
            raise AssertionError(f"{host} received the marked frame: it leaked out of its instance")

    @keyword("a TCP transfer of ${size:\\d+} bytes from ${src:[\\w-]+} to ${dst:[\\w-]+} arrives intact")
    def tcp_intact(self, size: str, src: str, dst: str) -> None:
        res = traffic.tcp_transfer(
            self.ctx.lab.host(src), self.ctx.lab.host(dst), self.ctx.resolve(dst), nbytes=int(size)
        )
        logger.info(str(res))
        if res["server"]["bytes"] != int(size) or res["server"]["sha256"] != res["client"]["sha256"]:
            raise AssertionError(f"transfer corrupted: {res}")

    def _last(self) -> traffic.PingResult:
        if self.ctx.last_ping is None:
            raise AssertionError("no ping was sent yet")
        return self.ctx.last_ping


class GatewayKeywords:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    @keyword("drop counters of ${gw:[\\w-]+} are noted")
    def note_drops(self, gw: str) -> None:
        """Both the normalized categories (any DUT) and, where shown, the reference's drop names."""
        handle = self.ctx.lab.gateway(gw)
        noted = dict(handle.counters()["dropped"])
        if "internals.show" in handle.capabilities:
            noted.update(handle.show("drops"))
        self.ctx.drops_before[gw] = noted

    @keyword("${gw:[\\w-]+} counted ${n:\\d+} drops as ${reason:\\S+}")
    def counted_drops(self, gw: str, n: str, reason: str) -> None:
        """``reason``: a normalized category (no-instance, firewall ...), or a reference drop
        name (``stage/reason``, tests tagged reference-internals only)."""
        handle = self.ctx.lab.gateway(gw)
        before = self.ctx.drops_before.get(gw, {}).get(reason, 0)

        def count() -> int:
            if "/" in reason:
                return drop_count(handle, reason)
            return int(handle.counters()["dropped"][reason])

        poll(lambda: count() - before >= int(n), timeout=5, what=f"{n} drops counted as {reason}")

    @keyword("${gw:[\\w-]+} is alive")
    def is_alive(self, gw: str) -> None:
        if not self.ctx.lab.gateway(gw).alive():
            raise AssertionError(f"gateway {gw} is not answering")

    @keyword("${sender:[\\w-]+} sends ${n:\\d+} frames with a bad IPv4 checksum to ${gw:[\\w-]+}")
    def send_bad_checksum(self, sender: str, n: str, gw: str) -> None:
        from scapy.layers.inet import ICMP, IP

        plan = self.ctx.plan
        router_mac = plan["gateways"][gw]["routers"][0]["dr"]["ports"][0]["mac"]
        raw = bytearray(bytes(IP(src="172.16.10.99", dst="203.0.113.10") / ICMP()))
        raw[10] ^= 0xFF
        src_mac = (plan.get("probes", {}).get(sender) or plan["hosts"][sender])["mac"]
        frame = Ether(dst=router_mac, src=src_mac) / Dot1Q(vlan=10, type=0x0800) / Raw(bytes(raw))
        traffic.send(self.ctx.lab.host(sender), [frame] * int(n))
