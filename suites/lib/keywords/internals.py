"""Keywords: the reference gateway's cache and HA agent (reference-internals), and SR failover probes."""

from __future__ import annotations

from typing import Any

from robot.api import logger
from robotlibcore import keyword
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from suites.lib import traffic
from suites.lib.expect import poll
from suites.lib.ipv6 import ra_route
from suites.lib.keywords.context import Context
from suites.lib.plans import addr6


class CacheKeywords:
    """The reference gateway's datapath cache (needs a DUT with cache counters)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.before: dict[str, Any] = {}
        self.received: list[Any] = []

    def _counters(self, gw: str) -> dict[str, Any]:
        return dict(self.ctx.lab.gateway(gw).show("cache")["counters"])

    @keyword("the cache of ${gw:[\\w-]+} is flushed and its counters noted")
    def flush_and_note(self, gw: str) -> None:
        self.ctx.lab.gateway(gw).request({"cmd": "cache", "action": "flush"})
        self.before[gw] = self._counters(gw)

    @keyword("${gw:[\\w-]+} served at least ${n:\\d+} packets from its cache")
    def served(self, gw: str, n: str) -> None:
        c = self._counters(gw)
        hits = c["hits"] - self.before[gw]["hits"]
        logger.info(f"cache counters {c}")
        if hits < int(n):
            raise AssertionError(f"{hits} cache hits, expected at least {n}")

    @keyword("${gw:[\\w-]+} sent at least ${n:\\d+} packets through the stages")
    def slow_path(self, gw: str, n: str) -> None:
        c = self._counters(gw)
        slow = (c["misses"] - self.before[gw]["misses"]) + (c["bypass"] - self.before[gw]["bypass"])
        if slow < int(n):
            raise AssertionError(f"{slow} packets took the slow path, expected at least {n}: {c}")

    @keyword("${gw:[\\w-]+} caches at most ${n:\\d+} flows")
    def capacity(self, gw: str, n: str) -> None:
        self.ctx.lab.gateway(gw).request({"cmd": "cache", "action": "set", "capacity": int(n), "idle_timeout": 30})

    @keyword("${gw:[\\w-]+} holds at most ${n:\\d+} cache entries and evicted the rest")
    def holds(self, gw: str, n: str) -> None:
        c = self._counters(gw)
        logger.info(f"cache counters {c}")
        if c["entries"] > int(n) or c["evictions"] - self.before[gw]["evictions"] <= 0:
            raise AssertionError(f"cache counters {c}")

    @keyword("${gw:[\\w-]+} gets a route to ${prefix:[\\d./]+} via ${host:[\\w-]+}")
    def add_route(self, gw: str, prefix: str, host: str) -> None:
        self.ctx.lab.gateway(gw).request(
            {
                "cmd": "route",
                "action": "add",
                "router": "t1",
                "half": "dr",
                "prefix": prefix,
                "via": self.ctx.resolve(host),
            }
        )

    @keyword("${gw:[\\w-]+} loses its route to ${prefix:[\\d./]+}")
    def del_route(self, gw: str, prefix: str) -> None:
        self.ctx.lab.gateway(gw).request(
            {"cmd": "route", "action": "del", "router": "t1", "half": "dr", "prefix": prefix}
        )

    @keyword("${src:[\\w-]+} sends ${n:\\d+} marked datagrams to ${dst:[\\d.]+} while ${watcher:[\\w-]+} captures")
    def send_marked(self, src: str, n: str, dst: str, watcher: str) -> None:
        from scapy.layers.inet import IP, UDP

        plan = self.ctx.plan
        host = plan["hosts"][src]
        gw_mac = next(
            p["mac"]
            for r in plan["gateways"]["edge1"]["routers"]
            for p in r["dr"]["ports"]
            if p["instance"] == host["instance"]
        )
        marker = b"edgelab-robot-marked"
        frame = (
            Ether(src=host["mac"], dst=gw_mac)
            / IP(src=self.ctx.resolve(src), dst=dst)
            / UDP(sport=3333, dport=4444)
            / Raw(marker)
        )
        with traffic.capture(self.ctx.lab.host(watcher), seconds=5) as cap:
            traffic.send(self.ctx.lab.host(src), [frame] * int(n), gap_ms=20)
        self.received = [f for f in cap.frames if marker in bytes(f)]

    @keyword("${n:\\d+} of them arrived")
    def arrived(self, n: str) -> None:
        if len(self.received) != int(n):
            raise AssertionError(f"{len(self.received)} arrived, expected {n}")


class HaKeywords:
    """SR failover on edge-ha (the reference gateway's HA agents)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.window = float("inf")
        self.answered = 0

    def _state(self, edge: str, peer_transit: str) -> str:
        return str(self.ctx.lab.gateway(edge).show("ha")["agent"].get(peer_transit, {}).get("state"))

    @keyword("BFD is up between ${a:[\\w-]+} and ${b:[\\w-]+}")
    def bfd_up(self, a: str, b: str) -> None:
        sr = self.ctx.plan["transit"]["sr"]
        poll(
            lambda: self._state(a, sr[b]) == "up" and self._state(b, sr[a]) == "up",
            timeout=20,
            what=f"BFD up between {a} and {b}",
        )

    @keyword("a probe flow from ${src:[\\w-]+} to ${dst:[\\w-]+} runs while ${edge:[\\w-]+} crashes")
    def probe_while_crash(self, src: str, dst: str, edge: str, family: int = 4) -> None:
        self._probe_while(src, dst, lambda: self.ctx.lab.gateway(edge).crash(), family, 300)

    @keyword("an IPv6 probe flow from ${src:[\\w-]+} to ${dst:[\\w-]+} runs while ${edge:[\\w-]+} comes back")
    def probe6_while_back(self, src: str, dst: str, edge: str) -> None:
        """Ten seconds of probes: the SR starts, learns its peer's state and takes its addresses
        back within them (the next step says it did)."""
        import time

        lab = self.ctx.lab
        ra_route(lab.host(src))
        took = []

        def back() -> None:
            t0 = time.monotonic()
            lab.stop_gateway(edge)
            lab.start_gateway(edge)
            took.append(time.monotonic() - t0)

        self._probe_while(src, dst, back, 6, 1000)
        logger.info(f"{edge} was back in {took[0]:.1f} s of the probe's 10")
        if took[0] > 6.0:
            raise AssertionError(
                f"{edge} took {took[0]:.1f} s to come back: the probe may have ended before the failback"
            )

    def _probe_while(self, src: str, dst: str, event: Any, family: int, count: int) -> None:
        import subprocess
        import time

        from suites.lib.traffic import probe_gap

        interval = 0.01
        target = addr6(self.ctx.plan, dst) if family == 6 else self.ctx.resolve(dst)
        stream = self.ctx.lab.host(src).popen(
            ["ping", "-n", "-D", "-i", str(interval), "-c", str(count), "-W", "1", target],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        time.sleep(1.0)
        event()
        out, _ = stream.communicate(timeout=60)
        self.window, seqs = probe_gap(out, interval)
        self.answered = len(set(seqs))
        logger.info(f"loss window {self.window * 1000:.0f} ms, {self.answered}/{count} probes answered")

    @keyword("an IPv6 probe flow from ${src:[\\w-]+} to ${dst:[\\w-]+} runs while ${edge:[\\w-]+} crashes")
    def probe6_while_crash(self, src: str, dst: str, edge: str) -> None:
        ra_route(self.ctx.lab.host(src))
        self.probe_while_crash(src, dst, edge, family=6)

    @keyword("the probe lost at most ${ms:\\d+} ms of traffic")
    def lost_at_most(self, ms: str) -> None:
        if self.window * 1000 > int(ms) or self.answered < 200:
            raise AssertionError(f"loss window {self.window * 1000:.0f} ms, {self.answered} probes answered")

    @keyword("${edge:[\\w-]+} holds the addresses of ${peer:[\\w-]+}")
    def holds(self, edge: str, peer: str) -> None:
        plan = self.ctx.plan
        # Its transit and uplink addresses, and the public NAT addresses it answered for.
        publics = {a for r in plan["gateways"][edge]["routers"] for p in r["ha"]["peers"] for a in p.get("publics", [])}
        want = {plan["transit"]["sr"][peer], plan["uplinks"][peer], *publics}
        if "uplinks6" in plan:  # dual stack: its IPv6 addresses too
            want |= {plan["uplinks6"][peer], plan["transit"]["sr6"][peer]}
        got = set(self.ctx.lab.gateway(edge).show("ha")["owned"]["t1-sr"])
        if got != want:
            raise AssertionError(f"{edge} holds {sorted(got)}, expected {sorted(want)}")

    @keyword("${edge:[\\w-]+} holds no address of another SR")
    def holds_none(self, edge: str) -> None:
        poll(
            lambda: self.ctx.lab.gateway(edge).show("ha")["owned"]["t1-sr"] == [],
            timeout=10,
            what=f"{edge} released every address",
        )

    @keyword("the DR reaches ${ip:[\\d.]+} at the MAC of ${edge:[\\w-]+}")
    def dr_neighbour(self, ip: str, edge: str) -> None:
        mac = self.ctx.plan["transit"]["mac"][edge]
        poll(
            lambda: any(r["ip"] == ip and r["mac"] == mac for r in self.ctx.lab.gateway("hv1").show("arp")),
            timeout=5,
            what=f"DR neighbour {ip} at {edge}'s MAC",
        )

    @keyword("the gateways have settled")
    def settled(self) -> None:
        """Every gateway's control plane has converged (a precondition, not a check)."""
        lab = self.ctx.lab
        poll(lambda: all(lab.gateway(g).settled() for g in lab.plan["gateways"]), timeout=30, what="gateways settled")

    @keyword("${host:[\\w-]+} reaches ${ip:[\\da-f.:]+} at the uplink MAC of ${edge:[\\w-]+}")
    def host_neighbour(self, host: str, ip: str, edge: str) -> None:
        """Seen from a host that is not part of any gateway: its neighbour entry for ``ip``."""
        mac = self.ctx.uplink_mac(edge)
        node = self.ctx.lab.host(host)
        poll(
            lambda: traffic.neighbour_mac(node, ip) == mac,
            timeout=5,
            what=f"{host}'s neighbour {ip} at {edge}'s uplink MAC {mac}",
        )
