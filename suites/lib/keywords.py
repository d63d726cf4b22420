"""Robot Framework keyword library for edgelab (robotframework-pythonlibcore).

Where this sits: ``suites/robot/*.robot`` import :class:`EdgelabLibrary`.
The keywords are thin: they reuse the pytest helpers in ``suites/lib``
(traffic, expect, plans, gateway) so both suites test the same way.
Components by domain: topology, traffic, gateway state.

Names in keywords are plan names: ``t1``, ``ext1``, ``edge1``; a destination
may also be an address.
"""

from __future__ import annotations

from typing import Any

from robot.api import logger
from robotlibcore import DynamicCore, keyword
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Raw

from suites.lib import traffic
from suites.lib.expect import poll
from suites.lib.gateway import drop_count
from suites.lib.plans import addr

MARK_TYPE = 0x88B5


class _Context:
    """State shared by the components of one library instance (one suite)."""

    def __init__(self, dut: str) -> None:
        self.dut = dut
        self.lab: Any = None
        self._cm: Any = None
        self.last_ping: traffic.PingResult | None = None
        self.received: dict[str, list[Ether]] = {}
        self.drops_before: dict[str, dict[str, int]] = {}

    @property
    def plan(self) -> dict[str, Any]:
        if self.lab is None:
            raise AssertionError("no topology is running; call 'Start Topology' first")
        return self.lab.plan

    def resolve(self, name: str) -> str:
        """A host name from the plan, or an address as given."""
        if name in self.plan["hosts"]:
            return addr(self.plan, name)
        return name


class TopologyKeywords:
    def __init__(self, ctx: _Context) -> None:
        self.ctx = ctx

    @keyword
    def start_topology(self, name: str = "edge-basic") -> None:
        """Start topology ``name`` with the library's DUT; ``Stop Topology`` tears it down."""
        import topologies

        self.ctx._cm = topologies.start(name, dut=self.ctx.dut, log=logger.info)
        self.ctx.lab = self.ctx._cm.__enter__()

    @keyword
    def stop_topology(self) -> None:
        if self.ctx._cm is not None:
            cm, self.ctx._cm, self.ctx.lab = self.ctx._cm, None, None
            cm.__exit__(None, None, None)

    @keyword("Topology ${name} is running")
    def topology_is_running(self, name: str) -> None:
        if self.ctx.lab is None or self.ctx.lab.name != name:
            raise AssertionError(f"topology {name} is not running")


class TrafficKeywords:
    def __init__(self, ctx: _Context) -> None:
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
        want = self.ctx.resolve(router) if router in self.ctx.plan["hosts"] else self._router_ip(router)
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

    def _router_ip(self, label: str) -> str:
        """'t1-dr:web' style router port label -> its address."""
        name, _, rest = label.partition("-")
        half, _, segment = rest.partition(":")
        try:
            return str(self.ctx.plan["routers"][name][half][segment])
        except KeyError:
            raise AssertionError(
                f"no router port {label!r} in the plan (use ROUTER-dr:SEGMENT, e.g. t1-dr:web)"
            ) from None


class GatewayKeywords:
    def __init__(self, ctx: _Context) -> None:
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


class NatKeywords:
    """NAT and firewall, seen from the hosts (and, for runtime rules, the gateway's control socket)."""

    def __init__(self, ctx: _Context) -> None:
        self.ctx = ctx
        self.udp_answers: list[dict[str, Any]] = []
        self.udp_peers: list[tuple[str, int]] = []
        self.transfer: dict[str, Any] = {}
        self.added: list[tuple[str, str, str]] = []

    @keyword("${ext:[\\w-]+} sees ${tenant:[\\w-]+} as an address of the SNAT pool")
    def sees_pool_address(self, ext: str, tenant: str) -> None:
        lab, plan = self.ctx.lab, self.ctx.plan
        with traffic.capture(lab.host(ext), seconds=5) as cap:
            result = traffic.ping(lab.host(tenant), self.ctx.resolve(ext), count=2)
        if not result.ok:
            raise AssertionError(f"ping failed:\n{result.text}")
        from scapy.layers.inet import ICMP, IP

        sources = {f[IP].src for f in cap.frames if ICMP in f and f[ICMP].type == 8}
        logger.info(f"{ext} saw echo requests from {sorted(sources)}")
        if not sources or not sources <= set(plan["nat"]["pool"]):
            raise AssertionError(
                f"{ext} saw sources {sorted(sources)}, expected addresses of the pool {plan['nat']['pool']}"
            )

    @keyword("${hosts} send UDP from source port ${sport:\\d+} to ${ext:[\\w-]+} port ${port:\\d+}")
    def udp_from_hosts(self, hosts: str, sport: str, ext: str, port: str) -> None:
        names = [h.strip() for h in hosts.replace(" and ", ",").split(",") if h.strip()]
        echo = traffic.UdpEcho(self.ctx.lab.host(ext), int(port))
        try:
            self.udp_answers = [
                traffic.udp_probe(self.ctx.lab.host(h), self.ctx.resolve(ext), int(port), sport=int(sport), timeout=1)
                for h in names
            ]
        finally:
            self.udp_peers = echo.stop()
        logger.info(f"answers {self.udp_answers}; {ext} saw {self.udp_peers}")

    @keyword("${n:\\d+} of them get their answer")
    def n_answered(self, n: str) -> None:
        got = sum(1 for a in self.udp_answers if a["ok"])
        if got != int(n):
            raise AssertionError(f"{got} answered, expected {n}: {self.udp_answers}")

    @keyword("the provider saw ${n:\\d+} distinct public endpoints")
    def distinct_endpoints(self, n: str) -> None:
        if len(set(self.udp_peers)) != int(n) or len(self.udp_peers) != int(n):
            raise AssertionError(f"the provider saw {self.udp_peers}, expected {n} distinct endpoints")

    @keyword("the provider saw only ${public:[\\d.]+} as the source")
    def only_source(self, public: str) -> None:
        if not self.udp_peers or {p[0] for p in self.udp_peers} != {public}:
            raise AssertionError(f"the provider saw {self.udp_peers}, expected only {public}")

    @keyword("a TCP transfer of ${size:\\d+} bytes from ${src:[\\w-]+} to port forward ${rule:[\\w-]+} arrives intact")
    def transfer_to_forward(self, size: str, src: str, rule: str) -> None:
        fwd = self.ctx.plan["nat"]["dnat"][rule]
        self.transfer = traffic.tcp_transfer(
            self.ctx.lab.host(src),
            self.ctx.lab.host(fwd["host"]),
            fwd["public"],
            nbytes=int(size),
            port=fwd["port"],
            listen_port=fwd["to_port"],
        )
        logger.info(str(self.transfer))
        if self.transfer["server"]["sha256"] != self.transfer["client"]["sha256"]:
            raise AssertionError(f"transfer corrupted: {self.transfer}")

    @keyword("the server saw ${who:[\\w-]+} as the client")
    def server_saw(self, who: str) -> None:
        peer = self.transfer["server"]["peer"]
        if peer != self.ctx.resolve(who):
            raise AssertionError(f"the server saw {peer}, expected {who} ({self.ctx.resolve(who)})")

    @keyword("the server saw an address of the SNAT pool as the client")
    def server_saw_pool(self) -> None:
        peer = self.transfer["server"]["peer"]
        if peer not in self.ctx.plan["nat"]["pool"]:
            raise AssertionError(f"the server saw {peer}, expected an address of {self.ctx.plan['nat']['pool']}")

    @keyword("${src:[\\w-]+} pings the public address of ${host:[\\w-]+}")
    def ping_public(self, src: str, host: str) -> None:
        self.ctx.last_ping = traffic.ping(self.ctx.lab.host(src), self.ctx.plan["nat"]["one_to_one"][host], count=3)
        logger.info(self.ctx.last_ping.text)

    @keyword("the ping fails")
    def ping_fails(self) -> None:
        if self.ctx.last_ping is None or self.ctx.last_ping.received:
            raise AssertionError(
                f"expected no reply:\n{self.ctx.last_ping.text if self.ctx.last_ping else 'no ping sent'}"
            )

    @keyword("${ext:[\\w-]+} pings ${tenant:[\\w-]+} directly, routing tenant prefixes to the SR")
    def ping_directly(self, ext: str, tenant: str) -> None:
        from topologies.nodes import run

        host = self.ctx.lab.host(ext)
        run(host, ["ip", "route", "replace", "172.16.0.0/16", "via", self.ctx.plan["routers"]["t1"]["sr"]["uplink"]])
        try:
            self.ctx.last_ping = traffic.ping(host, self.ctx.resolve(tenant), count=2)
        finally:
            run(host, ["ip", "route", "del", "172.16.0.0/16"])
        logger.info(self.ctx.last_ping.text)

    @keyword("${src:[\\w-]+} cannot open TCP port ${port:\\d+} on ${dst:[\\w-]+}")
    def cannot_open(self, src: str, port: str, dst: str) -> None:
        res = traffic.tcp_connect(self.ctx.lab.host(src), self.ctx.resolve(dst), int(port))
        logger.info(str(res))
        if not res.get("error"):
            raise AssertionError(f"the connection to {dst}:{port} was opened")

    @keyword("${src:[\\w-]+} is refused TCP port ${port:\\d+} on ${dst:[\\w-]+} by the gateway")
    def refused_by_gateway(self, src: str, port: str, dst: str) -> None:
        """The connection fails with host unreachable (ICMP administratively prohibited from the
        gateway), not merely for want of a listener (that would be a reset from the host)."""
        res = traffic.tcp_connect(self.ctx.lab.host(src), self.ctx.resolve(dst), int(port))
        logger.info(str(res))
        if not res.get("error"):
            raise AssertionError(f"the connection to {dst}:{port} was opened")
        if res.get("errno") != 113 and "No route to host" not in str(res["error"]):
            raise AssertionError(f"refused, but not by the gateway's reject (host unreachable): {res}")

    @keyword("${gw:[\\w-]+} gets a firewall rule dropping ${proto:\\w+} to ${host:[\\w-]+}")
    def add_drop_rule(self, gw: str, proto: str, host: str) -> None:
        name = f"robot-drop-{proto}-{host}"
        self.ctx.lab.gateway(gw).add_firewall_rule(
            {"name": name, "action": "drop", "proto": proto, "dst": f"{self.ctx.resolve(host)}/32"}, position=0
        )
        self.added.append((gw, "firewall", name))

    @keyword("${gw:[\\w-]+} gets an SNAT pool of ${n:\\d+} ports on ${public:[\\d.]+} for ${host:[\\w-]+}")
    def add_tiny_pool(self, gw: str, n: str, public: str, host: str) -> None:
        name = f"robot-pool-{host}"
        self.ctx.lab.gateway(gw).add_nat_rule(
            "snat",
            {
                "name": name,
                "source": f"{self.ctx.resolve(host)}/32",
                "pool": [public],
                "ports": f"30000-{30000 + int(n) - 1}",
            },
        )
        self.added.append((gw, "nat", name))

    @keyword("${host:[\\w-]+} opens ${n:\\d+} UDP flows to ${ext:[\\w-]+} port ${port:\\d+}")
    def open_flows(self, host: str, n: str, ext: str, port: str) -> None:
        echo = traffic.UdpEcho(self.ctx.lab.host(ext), int(port))
        try:
            self.udp_answers = [
                traffic.udp_probe(self.ctx.lab.host(host), self.ctx.resolve(ext), int(port), sport=40000 + i, timeout=1)
                for i in range(int(n))
            ]
        finally:
            self.udp_peers = echo.stop()
        logger.info(f"answers {self.udp_answers}; {ext} saw {self.udp_peers}")

    @keyword("${gw:[\\w-]+} reports ${used:\\d+} of ${total:\\d+} ports used in that pool")
    def pool_used(self, gw: str, used: str, total: str) -> None:
        name = next(n for g, kind, n in reversed(self.added) if kind == "nat")
        pool = next(p for p in self.ctx.lab.gateway(gw).show("nat")["t1"]["pools"] if p["rule"] == name)
        logger.info(str(pool))
        if pool["used"]["udp"] != int(used) or pool["capacity_per_protocol"] != int(total):
            raise AssertionError(f"pool {name}: {pool}")

    @keyword("the rules added by this test are removed")
    def remove_added(self) -> None:
        while self.added:
            gw, kind, name = self.added.pop()
            handle = self.ctx.lab.gateway(gw)
            if kind == "nat":
                handle.del_nat_rule(name)
            else:
                handle.del_firewall_rule(name)


class CacheKeywords:
    """The reference gateway's datapath cache (needs a DUT with cache counters)."""

    def __init__(self, ctx: _Context) -> None:
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

    def __init__(self, ctx: _Context) -> None:
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
    def probe_while_crash(self, src: str, dst: str, edge: str) -> None:
        import subprocess
        import time

        from suites.lib.traffic import probe_gap

        interval, count = 0.01, 300
        stream = self.ctx.lab.host(src).popen(
            ["ping", "-n", "-D", "-i", str(interval), "-c", str(count), "-W", "1", self.ctx.resolve(dst)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        time.sleep(1.0)
        self.ctx.lab.gateway(edge).crash()
        out, _ = stream.communicate(timeout=60)
        self.window, seqs = probe_gap(out, interval)
        self.answered = len(set(seqs))
        logger.info(f"loss window {self.window * 1000:.0f} ms, {self.answered}/{count} probes answered")

    @keyword("the probe lost at most ${ms:\\d+} ms of traffic")
    def lost_at_most(self, ms: str) -> None:
        if self.window * 1000 > int(ms) or self.answered < 200:
            raise AssertionError(f"loss window {self.window * 1000:.0f} ms, {self.answered} probes answered")

    @keyword("${edge:[\\w-]+} holds the addresses of ${peer:[\\w-]+}")
    def holds(self, edge: str, peer: str) -> None:
        plan = self.ctx.plan
        want = {plan["transit"]["sr"][peer], plan["uplinks"][peer]}
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

    @keyword("${edge:[\\w-]+} comes back")
    def comes_back(self, edge: str) -> None:
        self.ctx.lab.stop_gateway(edge)
        self.ctx.lab.start_gateway(edge)

    @keyword("the gateways have settled")
    def settled(self) -> None:
        """Every gateway's control plane has converged (a precondition, not a check)."""
        lab = self.ctx.lab
        poll(lambda: all(lab.gateway(g).settled() for g in lab.plan["gateways"]), timeout=30, what="gateways settled")

    @keyword("${host:[\\w-]+} reaches ${ip:[\\d.]+} at the uplink MAC of ${edge:[\\w-]+}")
    def host_neighbour(self, host: str, ip: str, edge: str) -> None:
        """Seen from a host that is not part of any gateway: its neighbour entry for ``ip``."""
        mac = self.ctx.plan["gateways"][edge]["routers"][0]["sr"]["ports"][0]["mac"]
        node = self.ctx.lab.host(host)
        poll(
            lambda: traffic.neighbour_mac(node, ip) == mac,
            timeout=5,
            what=f"{host}'s neighbour {ip} at {edge}'s uplink MAC {mac}",
        )


class EdgelabLibrary(DynamicCore):
    """Keywords for edgelab acceptance suites.  Import with ``dut=NAME`` (default reference)."""

    ROBOT_LIBRARY_SCOPE = "SUITE"

    def __init__(self, dut: str = "reference") -> None:
        ctx = _Context(dut)
        super().__init__(
            [
                TopologyKeywords(ctx),
                TrafficKeywords(ctx),
                GatewayKeywords(ctx),
                NatKeywords(ctx),
                CacheKeywords(ctx),
                HaKeywords(ctx),
            ]
        )
