"""Keywords: NAT and the firewall, seen from the hosts."""

from __future__ import annotations

from typing import Any

from robot.api import logger
from robotlibcore import keyword

from suites.lib import traffic
from suites.lib.expect import poll
from suites.lib.keywords.context import Context


class NatKeywords:
    """NAT and firewall, seen from the hosts (and, for runtime rules, the gateway's control socket)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.udp_answers: list[dict[str, Any]] = []
        self.udp_peers: list[tuple[str, int]] = []
        self.transfer: dict[str, Any] = {}
        self.added: list[tuple[str, str, str]] = []
        self.syn_sources: set[str] = set()

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

    @keyword("${src:[\\w-]+} connects to ${dst:[\\w-]+} port ${port:\\d+} and is refused")
    def connect_refused(self, src: str, dst: str, port: str) -> None:
        """One connection to a closed port: the far host's reset ends it at once."""
        from scapy.layers.inet import IP, TCP

        lab = self.ctx.lab
        with traffic.capture(lab.host(dst), seconds=5) as cap:
            res = traffic.tcp_attempt(lab.host(src), self.ctx.resolve(dst), int(port), timeout=2.0)
        self.syn_sources = {
            f[IP].src for f in cap.frames if TCP in f and f[TCP].flags == "S" and f[TCP].dport == int(port)
        }
        logger.info(f"attempt: {res}; {dst} saw SYNs from {sorted(self.syn_sources)}")
        if res["outcome"] != "refused":
            raise AssertionError(f"the connection from {src} to {dst} port {port} was not refused by {dst}: {res}")

    @keyword("the SYN reached ${dst:[\\w-]+} from ${public:[\\d.]+}")
    def syn_from(self, dst: str, public: str) -> None:
        if self.syn_sources != {public}:
            raise AssertionError(f"{dst} saw SYNs from {sorted(self.syn_sources)}, expected {public} alone")

    @keyword(
        "within ${s:\\d+} s a new connection from ${src:[\\w-]+} to ${dst:[\\w-]+} port ${port:\\d+} is refused again"
    )
    def refused_again(self, s: str, src: str, dst: str, port: str) -> None:
        """Another source port, the same pool: it crosses once the reset connection's public
        port is back in the pool (until then a pool of one port has nothing to give)."""
        lab = self.ctx.lab
        tries: list[str] = []

        def crossed() -> bool:
            tries.append(traffic.tcp_attempt(lab.host(src), self.ctx.resolve(dst), int(port), timeout=1.0)["outcome"])
            return tries[-1] == "refused"

        poll(crossed, timeout=int(s), interval=1.0, what=f"a new connection from {src} crossing the pool")
        logger.info(f"refused again after {len(tries)} attempt(s): {tries}")

    @keyword("the rules added by this test are removed")
    def remove_added(self) -> None:
        while self.added:
            gw, kind, name = self.added.pop()
            handle = self.ctx.lab.gateway(gw)
            if kind == "nat":
                handle.del_nat_rule(name)
            else:
                handle.del_firewall_rule(name)
