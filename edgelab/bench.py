"""``edgelab bench pipeline`` and ``bench failover``: where the time goes in the
Python path alone, and the loss window of an SR failover.  (``bench forwarding``
is ``bench_forwarding.py``.)"""

from __future__ import annotations

import copy
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from gateway import native


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# -- where the time goes: the Python path alone ------------------------------------------
class _NullWire:
    """A transport (``gateway.io.Transport``) that drops what it is given: isolates the pipeline's own cost."""

    poll_interval = None

    def __init__(self) -> None:
        self.sent = 0

    def fileno(self) -> int:
        return -1

    def filenos(self) -> tuple[int, ...]:
        return (self.fileno(),)

    def take_error(self) -> int:
        return 0

    def counters(self) -> dict[str, int]:
        return {"rx_dropped": 0, "tx_dropped": 0, "rx_resyncs": 0}

    def recv_batch(self, limit: int, readable: bool = True) -> list[tuple[bytearray, int | None]]:
        return []

    def send(self, frame: bytes | bytearray) -> None:
        self.sent += 1

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def pipeline_main(packets: int = 20000, runs: int = 1, out_dir: str = "results") -> int:
    """Per-packet cost of the slow path and of a cache hit, in this process, no system calls.

    Uses the edge-basic gateway configuration; each flow's neighbours are
    resolved first.  Prints microseconds per packet, the ratio, and the
    slow path's time per stage (cProfile).
    """
    import cProfile
    import pstats

    from scapy.layers.inet import IP, UDP
    from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6NDOptDstLLAddr, ICMPv6NDOptSrcLLAddr, IPv6
    from scapy.layers.l2 import ARP, Ether

    import topologies
    from gateway import config
    from gateway.datapath import Datapath

    plan = topologies.plan("edge-basic")
    from suites.duts.reference import render

    cfg = config.build(render(plan, "edge1"), "edge-basic")
    h = plan["hosts"]

    def fresh(cache: bool) -> Datapath:
        dp = Datapath(cfg)
        for name in dp.model.ports:
            dp.attach(name, _NullWire())
        dp.cache.enabled = cache
        trunk, uplink = dp.model.ports["trunk"], dp.model.ports["uplink"]
        for host, vlan, gw in (("t1", 10, "172.16.10.1"), ("t3", 20, "172.16.20.1")):
            arp = Ether(src=h[host]["mac"], dst="ff:ff:ff:ff:ff:ff") / ARP(
                op=1, hwsrc=h[host]["mac"], psrc=h[host]["ip"].split("/")[0], pdst=gw
            )
            dp.receive(trunk, bytearray(bytes(arp)), vlan)
        arp = Ether(src=h["ext1"]["mac"], dst="02:00:00:cb:00:01") / ARP(
            op=2, hwsrc=h["ext1"]["mac"], psrc="203.0.113.10", pdst="203.0.113.1"
        )
        dp.receive(uplink, bytearray(bytes(arp)), None)
        return dp

    web_gw = "02:00:00:10:00:01"
    flows = {
        "east-west (dr, l3 match)": IP(src="172.16.10.11", dst="172.16.20.13")
        / UDP(sport=1000, dport=2000)
        / (b"\0" * 18),
        "north-south (dr+sr+snat, l4 match)": IP(src="172.16.10.11", dst="203.0.113.10")
        / UDP(sport=1000, dport=2000)
        / (b"\0" * 18),
    }

    def fresh6(cache: bool) -> Datapath:
        """As ``fresh``, with t3 and ext1 known as IPv6 neighbours (an NS from t3, an NA from ext1)."""
        dp = fresh(cache)
        t3 = h["t3"]["ip6"].split("/")[0]
        ns = (
            Ether(src=h["t3"]["mac"], dst="33:33:ff:00:00:01")
            / IPv6(src=t3, dst="ff02::1:ff00:1", hlim=255)
            / ICMPv6ND_NS(tgt="2001:db8:0:20::1")
            / ICMPv6NDOptSrcLLAddr(lladdr=h["t3"]["mac"])
        )
        dp.receive(dp.model.ports["trunk"], bytearray(bytes(ns)), 20)
        ext1 = h["ext1"]["ip6"].split("/")[0]
        na = (
            Ether(src=h["ext1"]["mac"], dst="02:00:00:cb:00:01")
            / IPv6(src=ext1, dst="2001:db8:cb::1", hlim=255)
            / ICMPv6ND_NA(tgt=ext1, R=1, S=1, O=1)
            / ICMPv6NDOptDstLLAddr(lladdr=h["ext1"]["mac"])
        )
        dp.receive(dp.model.ports["uplink"], bytearray(bytes(na)), None)
        return dp

    t1_6 = h["t1"]["ip6"].split("/")[0]
    flows6 = {
        "east-west ipv6 (dr, l3v6 match)": IPv6(src=t1_6, dst=h["t3"]["ip6"].split("/")[0])
        / UDP(sport=1000, dport=2000)
        / (b"\0" * 18),
        "north-south ipv6 (dr+sr+conntrack, l4v6)": IPv6(src=t1_6, dst=h["ext2"]["ip6"].split("/")[0])
        / UDP(sport=1000, dport=2000)
        / (b"\0" * 18),
    }
    # Every flow: (name, a datapath maker by cache on/off, receiving port, VLAN, frame, whether
    # every frame must leave the gateway).
    cases: list[tuple[str, Any, str, int | None, bytes, bool]] = [
        (name, fresh, "trunk", 10, bytes(Ether(src=h["t1"]["mac"], dst=web_gw) / l3), False)
        for name, l3 in flows.items()
    ]
    cases += [
        (name, fresh6, "trunk", 10, bytes(Ether(src=h["t1"]["mac"], dst=web_gw) / l3), True)
        for name, l3 in flows6.items()
    ]
    cases += [(name, setup, port, vlan, raw, True) for name, (port, vlan, raw, setup) in _evi_flows().items()]
    profile_dp = None
    measured: dict[str, list[list[float]]] = {name: [] for name, *_ in cases}
    for run in range(runs):
        if runs > 1:
            log(f"run {run + 1} of {runs}")
        for name, make, port, vlan, raw, all_out in cases:
            costs = []
            for cache in (False, True):
                dp = make(cache)
                rx = dp.model.ports[port]
                dp.receive(rx, bytearray(raw), vlan)  # the flow's first packet
                frames = [bytearray(raw) for _ in range(packets)]
                t0 = time.perf_counter()
                for f in frames:
                    dp.receive(rx, f, vlan)
                costs.append((time.perf_counter() - t0) / packets * 1e6)
                if all_out and sum(p.tx for p in dp.model.ports.values()) < packets:
                    raise RuntimeError(f"{name}: not every frame left the gateway")
                if not cache and name.startswith("north-south"):
                    profile_dp = (dp, raw)
            measured[name].append(costs)
    print(f"the reference gateway's per-packet modules: {native.describe()}")
    print(f"{'flow':42} {'slow path us/pkt':>17} {'cache hit us/pkt':>17} {'ratio':>7}")
    for name, runs_of in measured.items():
        slow = statistics.median(c[0] for c in runs_of)
        hit = statistics.median(c[1] for c in runs_of)
        print(f"{name:42} {slow:17.2f} {hit:17.2f} {slow / hit:6.1f}x")
    from edgelab.bench_connections import in_process

    conn_runs = [in_process() for _ in range(runs)]
    conn_us, expiry_us = [c for c, _ in conn_runs], [e for _, e in conn_runs]
    conn, expiry = statistics.median(conn_us), statistics.median(expiry_us)
    print(
        f"new TCP connection (dr+sr+snat, SYN + RST, a new conntrack entry and NAT session each): {conn:.1f} us "
        f"per connection, {1e3 / conn:.1f} k connections/s on one core without I/O; its expiry once closed "
        f"(conntrack entry, NAT session, cache entry): {expiry:.1f} us"
    )
    if runs > 1:
        print(f"(medians of {runs} runs; every run's figures in {out_dir}/bench-pipeline.json)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench-pipeline.json").write_text(
        json.dumps(
            {
                "packets": packets,
                "runs": {n: [{"slow_us": c[0], "hit_us": c[1]} for c in r] for n, r in measured.items()},
                "new_connection_us": conn_us,
                "connection_expiry_us": expiry_us,
                "reference_modules": native.describe(),
            },
            indent=2,
        )  # fmt: skip
    )
    dp, raw = profile_dp  # type: ignore[misc]
    trunk = dp.model.ports["trunk"]
    frames = [bytearray(raw) for _ in range(packets)]
    prof = cProfile.Profile()
    prof.enable()
    for f in frames:
        dp.receive(trunk, f, 10)
    prof.disable()
    stats = pstats.Stats(prof)
    print("\nslow path, north-south: time inside each stage's process() (cProfile; the profiler inflates it):")
    rows = []
    for (filename, _line, func), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if func == "process" and "/gateway/stages/" in filename:
            stage = Path(filename).stem
            rows.append(("dr + sr" if stage == "routing" else stage, ct))
    for stage, ct in sorted(rows, key=lambda r: -r[1]):
        print(f"  {stage:10} {ct / packets * 1e6:8.2f} us/pkt")
    if not rows:
        print("  (none seen: the stages ran compiled, where cProfile cannot look; EDGELAB_INTERPRETED=1 shows them)")
    return 0


def _evi_flows() -> dict[str, Any]:
    """The EVI paths of ``bench pipeline``: edge1 of evi-dci with its link to site 2 and the
    neighbours known; a 64-byte frame from h1a to h2a (encapsulated) and one from h2a to
    h1a arriving in GRE (decapsulated)."""
    from scapy.layers.inet import GRE, IP, UDP
    from scapy.layers.l2 import ARP, Ether

    import topologies
    from gateway import config
    from gateway.datapath import Datapath
    from gateway.headers import ip_int, mac_str
    from suites.duts.reference import render

    plan = topologies.plan("evi-dci")
    h = plan["hosts"]
    cfg = config.build(render(plan, "edge1"), "evi-dci")
    core_mac = h["core"]["mac"]

    def setup(cache: bool) -> Datapath:
        dp = Datapath(cfg)
        for name in dp.model.ports:
            dp.attach(name, _NullWire())
        dp.cache.enabled = cache
        evi = dp.model.evi
        assert evi is not None and dp.evi_control is not None
        evi.add_link(2, ip_int("10.255.2.1"), 1600, None, "static")
        dp.evi_control.appointed({"netids": [5100]}, b"")  # as its control process would: a site of one edge
        reply = Ether(src=core_mac, dst=mac_str(evi.rport.mac)) / ARP(
            op=2, hwsrc=core_mac, psrc="10.255.1.254", hwdst=mac_str(evi.rport.mac), pdst="10.255.1.1"
        )
        dp.receive(dp.model.ports["core"], bytearray(bytes(reply)), None)
        dp.evi_control.install({"address": "10.255.2.1", "add": [[5100, h["h2a"]["mac"]]]}, b"")
        hello = Ether(src=h["h1a"]["mac"], dst="ff:ff:ff:ff:ff:ff") / ARP(psrc="10.100.0.11", pdst="10.100.0.11")
        dp.receive(dp.model.ports["trunk"], bytearray(bytes(hello)), 100)
        return dp

    inner = Ether(src=h["h2a"]["mac"], dst=h["h1a"]["mac"]) / IP(src="10.100.0.12", dst="10.100.0.11") / UDP()
    tenant = Ether(src=h["h1a"]["mac"], dst=h["h2a"]["mac"]) / IP(src="10.100.0.11", dst="10.100.0.12") / UDP()
    gre = (
        Ether(src=core_mac, dst=mac_str(setup(False).model.evi.rport.mac))  # type: ignore[union-attr]
        / IP(src="10.255.2.1", dst="10.255.1.1", flags="DF")
        / GRE(key_present=1, key=5100 << 8, proto=0x6558)
        / (inner / (b"\0" * 18))
    )
    return {
        "evi encap (l2 match, gre pushed)": ("trunk", 100, bytes(tenant / (b"\0" * 18)), setup),
        "evi decap (tunnel match)": ("core", None, bytes(gre), setup),
    }


# -- SR failover ----------------------------------------------------------------------------
def _load_round(lab: Any, pps: int, settled: Any, edge1_active: Any, uplink: str, standby_mac: str) -> dict[str, Any]:
    """10 s of UDP at ``pps`` through the active SR, the provider's segment watched for ARP."""
    from scapy.layers.l2 import ARP

    from suites.lib import traffic
    from suites.lib.expect import poll

    poll(settled, timeout=30, what="the gateways settled")
    poll(edge1_active, timeout=20, what="edge1 active")
    pr = lab.host("pr")
    cap = traffic.Capture(pr, lab.intf_towards("pr", "sp"), seconds=60, max_frames=20000, arp_only=True)
    try:
        res = traffic.UdpLoad(lab.host("t1"), lab.host("ext1"), "198.51.100.10", 5702, pps, 10).result()
    finally:
        arps = cap.stop()
    claims = [f for f in arps if ARP in f and f[ARP].psrc == uplink and f[ARP].hwsrc.lower() == standby_mac]
    row = {
        "pps": pps,
        "sent": res.get("sent", 0),
        "received": res.get("received", 0),
        "delivered": round(res.get("received", 0) / max(1, res.get("sent", 0)), 4),
        "false_takeovers": len(claims),
    }
    log(f"load {pps} pps: {row['delivered'] * 100:.1f} % delivered, {len(claims)} ARP claims by the standby")
    return row


def failover_main(
    rounds: int = 5,
    interval: float = 0.01,
    out_dir: str = "results",
    dut: str = "reference",
    bfd_ms: int | None = None,
    loads: list[int] | None = None,
) -> int:
    """``edgelab bench failover``: detection time, loss window and the survival of connections
    over repeated failovers of edge-ha's active SR, for any DUT that does HA, judged on the wire.

    edge-ha's SRs run SNAT and the stateful firewall's default policy, so a connection lives
    only where its state is.  Per round: a ping probe from t1 to ext1 every ``interval`` s, an
    idle TCP connection and a UDP flow t1 -> ext1 held open; edge1 crashes (the handle's
    ``crash``: the reference's datapath SIGKILLed, the Linux box's keepalived and ports gone);
    detection = the first gratuitous ARP from edge2 for edge1's uplink address, as the
    provider router's capture sees it, minus the crash time; loss window = the longest run of
    unanswered probes; survived = after the failover ext1 speaks first on each held
    connection and t1 hears it (only an SR that knows the connection lets that packet in; the
    UDP flow's answer must come from the same public endpoint).  Then edge1 comes back and
    the round waits until the provider reaches the uplink address at edge1's MAC again.
    ``bfd_ms``: the BFD interval (VRRP's advert interval for Linux) instead of the plan's.
    ``loads``: first, for each rate (packets a second), 10 s of UDP t1 -> ext1 through the
    active SR with the provider's segment watched for ARP: what arrived, and how often edge2
    claimed edge1's uplink address meanwhile (a false failover: edge1 was alive).
    """
    import re
    import subprocess

    import topologies
    from suites.lib import traffic
    from suites.lib.expect import poll

    ext = "198.51.100.10"
    count = int(4.0 / interval)
    rows: list[dict[str, Any]] = []
    plan = copy.deepcopy(topologies.plan("edge-ha"))
    for gw in plan["gateways"].values():
        for router in gw.get("routers", []):
            if router.get("ha") and bfd_ms is not None:
                router["ha"]["bfd"].update(tx_ms=bfd_ms, rx_ms=bfd_ms)
    with topologies.start("edge-ha", dut=dut, plan=plan) as lab:
        uplink = plan["uplinks"]["edge1"]
        mac = {e: plan["gateways"][e]["routers"][0]["sr"]["ports"][0]["mac"] for e in ("edge1", "edge2")}
        pr = lab.host("pr")
        pr_if = lab.intf_towards("pr", "sp")

        def settled() -> bool:
            return all(lab.gateway(g).settled() for g in plan["gateways"])

        def active_is(edge: str) -> bool:
            traffic.ping(pr, uplink, count=1, wait=0.5)
            return traffic.neighbour_mac(pr, uplink) == mac[edge]

        def survived(held: traffic.HeldConnection) -> bool:
            got, echo = held.speak(timeout=10)
            same = held.answered_from in (None, held.peer)  # (UDP: the answer's endpoint; TCP: one socket)
            return got == traffic.HELD_MARKER and echo == traffic.HELD_MARKER and same

        cfg = plan["gateways"]["edge2"]["routers"][0]["ha"]["bfd"]
        load_rows = [
            _load_round(lab, pps, settled, lambda: active_is("edge1"), uplink, mac["edge2"]) for pps in loads or []
        ]
        for i in range(rounds):
            poll(settled, timeout=30, what="the gateways settled")
            poll(lambda: active_is("edge1"), timeout=20, what="edge1 active")
            time.sleep(0.5)
            held = {
                kind: traffic.HeldConnection(lab.host("t1"), lab.host("ext1"), ext, port=5601 + n, udp=kind == "udp")
                for n, kind in enumerate(("tcp", "udp"))
            }
            cap = pr.popen(
                ["tcpdump", "-tt", "-e", "-n", "-l", "-i", pr_if, "arp"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            stream = lab.host("t1").popen(
                ["ping", "-n", "-D", "-i", str(interval), "-c", str(count), "-W", "1", ext],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            time.sleep(1.0)
            t_crash = time.time()  # tcpdump's -tt clock
            lab.gateway("edge1").crash()
            out, _ = stream.communicate(timeout=60)
            window, seqs = traffic.probe_gap(out, interval)
            kept = {kind: survived(h) for kind, h in held.items()}
            cap.terminate()
            arp_text, _ = cap.communicate(timeout=10)
            # "<ts> <src mac> > <dst>, ethertype ARP ...: Request who-has A tell A" or "Reply A is-at M"
            claims = [
                float(m.group(1))
                for m in re.finditer(
                    rf"^([\d.]+) {mac['edge2']} > .*(?:tell {re.escape(uplink)},|{re.escape(uplink)} is-at)",
                    arp_text.decode(),
                    re.M,
                )  # fmt: skip
                if float(m.group(1)) >= t_crash
            ]
            detect = (min(claims) - t_crash) if claims else float("nan")
            rows.append(
                {
                    "round": i + 1,
                    "detection_ms": round(detect * 1000, 1),
                    "loss_window_ms": round(window * 1000, 1),
                    "answered": len(seqs),
                    "sent": count,
                    "tcp_survived": kept["tcp"],
                    "udp_survived": kept["udp"],
                    "connection_survived": all(kept.values()),
                }
            )
            log(
                f"round {i + 1}: detection {detect * 1000:.0f} ms, loss window {window * 1000:.0f} ms "
                f"({len(seqs)}/{count} answered), idle TCP connection {'survived' if kept['tcp'] else 'lost'}, "
                f"UDP flow {'kept its mapping' if kept['udp'] else 'lost'}"
            )
            lab.stop_gateway("edge1")
            lab.start_gateway("edge1")
    windows = [r["loss_window_ms"] for r in rows]
    detects = [r["detection_ms"] for r in rows if r["detection_ms"] == r["detection_ms"]]  # without NaN
    summary = {
        "dut": dut,
        "bfd": f"{cfg['tx_ms']} ms x {cfg['mult']}",
        "detection_ms": {
            "min": min(detects, default=float("nan")),
            "median": statistics.median(detects) if detects else float("nan"),
            "max": max(detects, default=float("nan")),
        },
        "loss_window_ms": {"min": min(windows), "median": statistics.median(windows), "max": max(windows)},
        "connections_survived": sum(r["tcp_survived"] + r["udp_survived"] for r in rows),
        "connections": 2 * rounds,
        "survived": {"tcp": sum(r["tcp_survived"] for r in rows), "udp": sum(r["udp_survived"] for r in rows)},
        "rounds": rounds,
        "probe_interval_ms": interval * 1000,
        "target_loss_window_ms": 500 if bfd_ms is None or bfd_ms >= 100 else 150,
        "load": load_rows,
    }
    outp = Path(out_dir)
    outp.mkdir(parents=True, exist_ok=True)
    name = "bench-failover.json" if dut == "reference" else f"bench-failover-{dut}.json"
    (outp / name).write_text(json.dumps({"rounds": rows, "summary": summary}, indent=2))
    print()
    print(f"{'round':>5} {'detection ms':>13} {'loss window ms':>15} {'answered':>9}  idle TCP   UDP flow")
    for r in rows:
        print(
            f"{r['round']:5} {r['detection_ms']:13.1f} {r['loss_window_ms']:15.1f} {r['answered']:5}/{r['sent']}"
            f"  {'survived' if r['tcp_survived'] else 'lost':9}  {'kept' if r['udp_survived'] else 'lost'}"
        )
    print()
    print(
        f"DUT {dut}: the plan's BFD/advert interval {summary['bfd']}, probe every {interval * 1000:.0f} ms, "
        f"{rounds} crashes of edge1's SR; detection = the first gratuitous ARP from edge2 on the provider's wire"
    )
    print(
        f"detection   min/median/max: {summary['detection_ms']['min']:.0f} / {summary['detection_ms']['median']:.0f} / {summary['detection_ms']['max']:.0f} ms"
    )
    print(
        f"loss window min/median/max: {summary['loss_window_ms']['min']:.0f} / {summary['loss_window_ms']['median']:.0f} / {summary['loss_window_ms']['max']:.0f} ms (target < {summary['target_loss_window_ms']} ms)"
    )
    for r in load_rows:
        print(
            f"under load: {r['pps']} pps offered for 10 s, {r['delivered'] * 100:.1f} % delivered, "
            f"false takeovers {r['false_takeovers']}"
        )
    print(
        f"connections surviving: {summary['connections_survived']} of {summary['connections']} "
        f"(TCP {summary['survived']['tcp']} of {rounds}, UDP {summary['survived']['udp']} of {rounds})"
    )
    print(f"written: {outp / name}")
    return 0
