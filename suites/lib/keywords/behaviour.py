"""Keywords: behaviours judged on what hosts see, beyond one rule and one flow at a time.

A host that moves, ICMP errors as the sending socket sees them, a flow that was
already running when something changed, overlapping rules, ARP per segment.
Every keyword works on any DUT that declares the capabilities its test names.
"""

from __future__ import annotations

import time
from typing import Any

from robot.api import logger
from robotlibcore import keyword
from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.packet import Raw

from suites.lib import traffic
from suites.lib.keywords.context import MARK_TYPE, Context
from suites.lib.plans import router_port
from topologies.nodes import run

ICMP_KINDS = {"port unreachable": (3, 3), "time exceeded": (11, 0), "net unreachable": (3, 0)}


class BehaviourKeywords:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.udp_errors: list[dict[str, Any]] = []
        self.udp_flow: tuple[str, str, int] | None = None
        self.arp_answers: list[str] = []
        self.added_rules: list[tuple[str, str]] = []
        self.load: dict[str, Any] = {}
        self.load_arps: list[Ether] = []

    # -- frames counted -------------------------------------------------------------------
    @keyword("${host:[\\w-]+} receives the frame ${n:\\d+} times")
    def receives_frame_times(self, host: str, n: str) -> None:
        got = len(self.ctx.received.get(host, []))
        if got != int(n):
            raise AssertionError(f"{host} received the marked frame {got} times, expected {n} (a flood came back?)")

    # -- ICMP errors as the sending socket sees them --------------------------------------
    @keyword(
        "${src:[\\w-]+} sends UDP on one socket from port ${sport:\\d+} to ${dst:[\\w.-]+} port ${port:\\d+} at TTL ${ttls}"
    )
    def udp_one_socket(self, src: str, sport: str, dst: str, port: str, ttls: str) -> None:
        """One connected socket, one datagram per TTL (comma-separated): the errors it is told of."""
        self.udp_flow = (src, dst, int(port))
        self.udp_errors = traffic.udp_errors(
            self.ctx.lab.host(src), self.ctx.resolve(dst), int(port), int(sport), [int(t) for t in ttls.split(",")]
        )
        logger.info(f"errors the socket was told of: {self.udp_errors}")

    @keyword("the socket heard ${kind} from ${who:[\\w.:-]+} at TTL ${ttl:\\d+}")
    def socket_heard(self, kind: str, who: str, ttl: str) -> None:
        want_type = ICMP_KINDS[kind.lower()]
        want_from = self.ctx.address(who)
        for err in self.udp_errors:
            if err["ttl"] == int(ttl):
                if (err.get("type"), err.get("code")) == want_type and err.get("from") == want_from:
                    return
        raise AssertionError(
            f"the socket was not told of {kind} from {want_from} at TTL {ttl}; it heard {self.udp_errors} "
            "(an error whose quoted packet is not the socket's own, addresses and ports, never reaches it)"
        )

    @keyword("at TTL ${ttls} the socket heard what new flows hear")
    def same_as_new_flows(self, ttls: str) -> None:
        """The same TTLs on fresh sockets (new flows, each through the slow path of any cache):
        the running flow must expire where they do, told by the same routers."""
        if self.udp_flow is None:
            raise AssertionError("no UDP flow was sent yet")
        src, dst, port = self.udp_flow
        host = self.ctx.lab.host(src)
        for ttl in (int(t) for t in ttls.split(",")):
            fresh = traffic.udp_errors(host, self.ctx.resolve(dst), port, 0, [ttl])[0]
            running = next((e for e in self.udp_errors if e["ttl"] == ttl), None)
            logger.info(f"TTL {ttl}: running flow {running}, new flow {fresh}")
            if fresh.get("type") is None:
                raise AssertionError(f"a new flow at TTL {ttl} was told of no error: {fresh}")
            if running is None or (running.get("type"), running.get("from")) != (fresh["type"], fresh["from"]):
                raise AssertionError(f"at TTL {ttl} the running flow heard {running}, a new flow {fresh}")

    # -- a host that moves ----------------------------------------------------------------
    @keyword(
        "traffic to ${mover:[\\w-]+} follows it to the port of ${where:[\\w-]+}: switched from ${sw:[\\w-]+}, routed from ${rt:[\\w-]+}"
    )
    def host_moves(self, mover: str, where: str, sw: str, rt: str) -> None:
        """``sw`` (same segment) and ``rt`` (another segment) ping ``mover``; once their flows run,
        ``mover`` is unplugged (its link down) and its MAC speaks from ``where``'s port (a
        broadcast sent in ``where``'s namespace).
        From then on the gateway must send both flows there.  ``mover`` speaks from its own port
        again at the end, so it moves back."""
        lab, plan = self.ctx.lab, self.ctx.plan
        mac = plan["hosts"][mover]["mac"]
        target = self.ctx.resolve(mover)
        streams = [traffic.PingStream(lab.host(h), target, count=100) for h in (sw, rt)]
        hello = Ether(dst="ff:ff:ff:ff:ff:ff", src=mac, type=MARK_TYPE) / Raw(b"edgelab-robot-host-moved")
        home = lab.host(mover)
        link = home.defaultIntf().name
        try:
            time.sleep(1.0)  # both flows run (and may be cached) before the move
            run(home, ["ip", "link", "set", link, "down"])  # unplugged here ...
            node = lab.host(where)
            cap = traffic.Capture(node, node.defaultIntf().name, seconds=2.5, max_frames=400)
            traffic.send(node, [hello] * 3, gap_ms=50)  # ... and heard from there
            frames = cap.stop()
        finally:
            for stream in streams:
                stream.stop()
            run(home, ["ip", "link", "set", link, "up"])
            if plan["hosts"][mover].get("gw"):  # (a link going down takes its routes with it)
                run(home, ["ip", "route", "replace", "default", "via", plan["hosts"][mover]["gw"]])
            time.sleep(0.2)
            traffic.send(home, [hello] * 3, gap_ms=20)  # back home
        seen = {sw: 0, rt: 0}
        for f in frames:
            if f.dst.lower() == mac.lower() and IP in f and ICMP in f and f[ICMP].type == 8 and f[IP].dst == target:
                for h in seen:
                    if f[IP].src == self.ctx.resolve(h):
                        seen[h] += 1
        logger.info(f"echo requests for {mover} seen at {where}'s port after the move: {seen}")
        missing = [f"{h} ({'switched' if h == sw else 'routed'})" for h, n in seen.items() if n < 3]
        if missing:
            raise AssertionError(
                f"after {mover} moved to {where}'s port, the flows from {', '.join(missing)} did not follow it: {seen}"
            )

    # -- ARP per segment -------------------------------------------------------------------
    @keyword("${asker:[\\w-]+} asks on VLAN ${vlan:\\d+} for ${ip:[\\w.:-]+} from ${src_ip:[\\d.]+}")
    def ask_arp(self, asker: str, vlan: str, ip: str, src_ip: str) -> None:
        plan = self.ctx.plan
        mac = (plan.get("probes", {}).get(asker) or plan["hosts"][asker])["mac"]
        want = self.ctx.address(ip)
        req = (
            Ether(dst="ff:ff:ff:ff:ff:ff", src=mac)
            / Dot1Q(vlan=int(vlan))
            / ARP(op=1, hwsrc=mac, psrc=src_ip, pdst=want)
        )
        node = self.ctx.lab.host(asker)
        cap = traffic.Capture(node, node.defaultIntf().name, seconds=2, max_frames=50)
        traffic.send(node, [req] * 2, gap_ms=100)
        self.arp_answers = [f[ARP].hwsrc for f in cap.stop() if ARP in f and f[ARP].op == 2 and f[ARP].psrc == want]
        logger.info(f"ARP replies for {want}: {self.arp_answers}")

    @keyword("${asker:[\\w-]+} asks on its segment for ${ip:[\\d.]+}")
    def ask_arp_untagged(self, asker: str, ip: str) -> None:
        node = self.ctx.lab.host(asker)
        own = node.defaultIntf()
        req = Ether(dst="ff:ff:ff:ff:ff:ff", src=own.MAC()) / ARP(op=1, hwsrc=own.MAC(), psrc=own.IP(), pdst=ip)
        cap = traffic.Capture(node, own.name, seconds=2, max_frames=50)
        traffic.send(node, [req] * 2, gap_ms=100)
        self.arp_answers = [f[ARP].hwsrc for f in cap.stop() if ARP in f and f[ARP].op == 2 and f[ARP].psrc == ip]
        logger.info(f"ARP replies for {ip}: {self.arp_answers}")

    @keyword("the ARP is not answered")
    def arp_not_answered(self) -> None:
        if self.arp_answers:
            raise AssertionError(f"answered from {sorted(set(self.arp_answers))}: not on the address's segment")

    @keyword("the ARP is answered")
    def arp_answered(self) -> None:
        if not self.arp_answers:
            raise AssertionError("nobody answered the ARP request")

    @keyword("only the uplink MAC of ${edge:[\\w-]+} answers")
    def only_mac_answers(self, edge: str) -> None:
        mac = self.ctx.uplink_mac(edge)
        macs = sorted({m.lower() for m in self.arp_answers})
        if macs != [mac]:
            raise AssertionError(f"the address was answered by {macs}, expected {edge}'s {mac} alone")

    # -- a failover that should not happen -----------------------------------------------
    @keyword(
        "${src:[\\w-]+} sends ${pps:\\d+} UDP packets a second to ${dst:[\\w-]+} for ${seconds:\\d+} s"
        " while ${watcher:[\\w-]+} listens for ARP"
    )
    def load_with_arp_watch(self, src: str, pps: str, dst: str, seconds: str, watcher: str) -> None:
        """A paced load through the gateway, and every ARP frame the watcher's segment carries
        meanwhile: an SR that takes over an address announces it there."""
        lab = self.ctx.lab
        node = lab.host(watcher)
        cap = traffic.Capture(node, node.defaultIntf().name, seconds=int(seconds) + 30, max_frames=5000, arp_only=True)
        try:
            load = traffic.UdpLoad(lab.host(src), lab.host(dst), self.ctx.address(dst), 5702, int(pps), int(seconds))
            self.load = load.result()
        finally:
            self.load_arps = cap.stop()
        logger.info(f"load {self.load}; {len(self.load_arps)} ARP frames on {watcher}'s segment")

    @keyword("${dst:[\\w-]+} received at least ${pct:\\d+} % of the load")
    def load_received(self, dst: str, pct: str) -> None:
        sent, got = int(self.load.get("sent", 0)), int(self.load.get("received", 0))
        if sent == 0 or got < sent * int(pct) / 100:
            raise AssertionError(f"{dst} received {got} of {sent} datagrams sent (wanted {pct} %)")

    @keyword("no MAC but the uplink MAC of ${edge:[\\w-]+} spoke for ${ip:[\\d.]+} meanwhile")
    def only_owner_spoke(self, edge: str, ip: str) -> None:
        """Any ARP frame (request, reply, gratuitous) sent from ``ip`` by another MAC is a takeover."""
        mac = self.ctx.uplink_mac(edge)
        others = sorted({f[ARP].hwsrc.lower() for f in self.load_arps if f[ARP].psrc == ip} - {mac})
        if others:
            raise AssertionError(f"{ip} was claimed by {others} during the load: a failover with {edge} alive")

    # -- a route that goes away -----------------------------------------------------------
    @keyword("${src:[\\w-]+} pings ${dst:[\\d.]+} through ${gw:[\\w-]+}, which has no route for it")
    def ping_without_route(self, src: str, dst: str, gw: str) -> None:
        """The gateway's default route removed at run time; ``src`` routes ``dst``'s /16 to the
        gateway's uplink address; both restored afterwards."""
        plan = self.ctx.plan
        handle = self.ctx.lab.gateway(gw)
        uplink = plan["routers"]["t1"]["sr"]["uplink"]
        default_via = next(
            r["via"] for r in plan["gateways"][gw]["routers"][0]["sr"]["routes"] if r["prefix"] == "0.0.0.0/0"
        )
        net = ".".join(dst.split(".")[:2]) + ".0.0/16"
        node = self.ctx.lab.host(src)
        handle.del_route("0.0.0.0/0")
        run(node, ["ip", "route", "replace", net, "via", uplink])
        try:
            self.ctx.last_ping = traffic.ping(node, dst, count=1)
        finally:
            run(node, ["ip", "route", "del", net])
            handle.add_route("0.0.0.0/0", default_via)
        logger.info(self.ctx.last_ping.text)

    # -- a rule that lands on a running flow ----------------------------------------------
    @keyword(
        "a ping stream from ${src:[\\w-]+} to ${dst:[\\w-]+} stops while ${gw:[\\w-]+} has a rule dropping icmp to it"
    )
    def stream_stopped(self, src: str, dst: str, gw: str) -> None:
        """The stream runs a second, the rule lands for a second, then goes: the stream must
        have lost packets while it was in, and got replies before it."""
        handle = self.ctx.lab.gateway(gw)
        name = f"robot-running-{src}-{dst}"
        stream = traffic.PingStream(self.ctx.lab.host(src), self.ctx.resolve(dst))
        try:
            time.sleep(1.0)
            handle.add_firewall_rule(
                {"name": name, "action": "drop", "proto": "icmp", "dst": f"{self.ctx.resolve(dst)}/32"}, position=0
            )
            try:
                time.sleep(1.0)
            finally:
                handle.del_firewall_rule(name)
            stats = stream.result()
        finally:
            stream.stop()
        logger.info(f"stream: {stats.received} of {stats.sent} answered")
        if not stats.received or stats.sent - stats.received < 10:
            raise AssertionError(
                f"the running stream got {stats.received} of {stats.sent} replies: a rule in force for a second "
                "must stop it (about 20 lost), and it must have run before"
            )

    @keyword("${gw:[\\w-]+} gets a firewall rule allowing tcp port ${port:\\d+} to ${host:[\\w-]+} after the others")
    def add_allow_after(self, gw: str, port: str, host: str) -> None:
        name = f"robot-allow-{port}-{host}"
        self.ctx.lab.gateway(gw).add_firewall_rule(
            {"name": name, "action": "allow", "proto": "tcp", "dst": f"{self.ctx.resolve(host)}/32", "dport": int(port)}
        )
        self.added_rules.append((gw, name))

    @keyword("the firewall rules added by this test are removed")
    def remove_rules(self) -> None:
        while self.added_rules:
            gw, name = self.added_rules.pop()
            self.ctx.lab.gateway(gw).del_firewall_rule(name)

    # -- a port forward's protocol ---------------------------------------------------------
    @keyword("UDP from ${src:[\\w-]+} to the port of port forward ${rule:[\\w-]+} does not reach ${host:[\\w-]+}")
    def forward_other_protocol(self, src: str, rule: str, host: str) -> None:
        fwd = next(
            d
            for r in self.ctx.plan["gateways"]["edge1"]["routers"]
            for d in r.get("nat", {}).get("dnat", [])
            if d["name"] == rule
        )
        echo = traffic.UdpEcho(self.ctx.lab.host(host), int(fwd["to_port"]))
        try:
            answer = traffic.udp_probe(
                self.ctx.lab.host(src), fwd["public"], int(fwd["port"]), sport=41000, timeout=1.5
            )
        finally:
            peers = echo.stop()
        logger.info(f"answer {answer}; {host} saw {peers}")
        if peers or answer.get("ok"):
            raise AssertionError(
                f"UDP to {fwd['public']}:{fwd['port']} reached {host} through the {fwd['proto']} port forward {rule}: {peers}"
            )

    # -- what a tenant cannot do (suites/lib/security.py) ---------------------------------
    @keyword("it holds that ${what}")
    def security_check(self, what: str) -> None:
        """``what``: one of the checks of ``suites/lib/security.py``, in words
        (``a spoofed source does not leave the tenant segment``)."""
        from suites.lib import security

        check = getattr(security, what.replace(" ", "_").replace("'", ""), None)
        if check is None or what.startswith("_"):
            raise AssertionError(f"no security check {what!r} in suites/lib/security.py")
        lab = self.ctx.lab
        check(lab, lab.plan, lab.gateway(next(iter(lab.plan["gateways"]))))

    # -- TCP that opens nothing ------------------------------------------------------------
    @keyword(
        "a TCP ${flags:[A-Z]+} from ${src:[\\w-]+} to ${dst:[\\w-]+} port ${port:\\d+}, of no connection, does not arrive"
    )
    def stray_tcp(self, flags: str, src: str, dst: str, port: str) -> None:
        """``flags`` as scapy writes them (``A``: a bare ACK, ``FA``, ``PA`` ...): a segment that
        opens no connection and belongs to none must not cross a stateful firewall (an ACK scan)."""
        from scapy.layers.inet import TCP

        plan = self.ctx.plan
        host = plan["hosts"][src]
        gw_mac = router_port(plan, host["instance"])["mac"]
        marker = b"edgelab-robot-stray-tcp"
        frames = [
            Ether(src=host["mac"], dst=gw_mac)
            / IP(src=self.ctx.resolve(src), dst=self.ctx.resolve(dst))
            / TCP(sport=47000 + i, dport=int(port), flags=flags, seq=1000, ack=1000)
            / Raw(marker)
            for i in range(3)
        ]
        node = self.ctx.lab.host(dst)
        cap = traffic.Capture(node, node.defaultIntf().name, seconds=2, max_frames=200)
        traffic.send(self.ctx.lab.host(src), frames, gap_ms=50)
        arrived = [f for f in cap.stop() if Raw in f and marker in bytes(f[Raw])]
        if arrived:
            raise AssertionError(f"{len(arrived)} TCP {flags} segments of no connection crossed the gateway to {dst}")

    # -- a route that changes under a running flow ----------------------------------------
    @keyword("${gw:[\\w-]+} gets a route to ${prefix:[\\d./]+} via ${host:[\\w-]+} at run time")
    def route_at_run_time(self, gw: str, prefix: str, host: str) -> None:
        self.ctx.lab.gateway(gw).add_route(prefix, self.ctx.resolve(host))

    @keyword("${gw:[\\w-]+} loses its route to ${prefix:[\\d./]+} at run time")
    def route_gone(self, gw: str, prefix: str) -> None:
        self.ctx.lab.gateway(gw).del_route(prefix)
