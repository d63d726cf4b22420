"""``edgelab bench forwarding``: the kernel, the reference gateway without and
with its cache, the same traffic, one run.

Method (on the ``bench`` topology: gen -> dut -> sink):

- what the dut does (``--path``): ``nat`` (default) — the edge gateway's
  own job: the DR routes gen's traffic over the transit link to the SR, which
  routes it to the sink and SNATs the source (conntrack, NAT session, l4
  cache match); ``routed`` — the DR alone routes it (l3 cache match);
- configurations, in this order on the same veths: (a) ``kernel`` — the dut
  node as a plain Linux router, same addresses and MACs (for ``nat`` with an
  nftables SNAT rule and the kernel's conntrack); (b) ``uncached`` — the
  reference gateway with its cache disabled; (c) ``cached`` — the same daemon
  with the cache enabled;
- traffic: 64-byte UDP frames from trafgen (one CPU), ``many`` flows (1000:
  250 destinations x 8 source ports) and ``few`` flows (4 destinations),
  counted on the sink's interface and dropped there at ingress (nftables);
- for each configuration and traffic: the highest delivered rate (trafgen
  unthrottled for ``--seconds``, frames counted on the sink's interface while
  trafgen runs), the highest rate with no loss (binary search on trafgen's
  rate: at most ``--loss`` of the frames lost, and at most 5% still queued in
  the dut when trafgen stops, so that a deep receive ring cannot pass a rate
  off as sustained by buffering it), and the p50/p99 round-trip time of a
  ping probe flow through the dut (idle); between trials the bench waits
  until the dut has drained;
- output: a table, ``results/bench-forwarding.json``, a PNG plot, and the
  ratios cached/uncached and cached/kernel last.

Both cores are shared by trafgen, the kernel's forwarding and the daemon:
only ratios within one run mean anything; absolute numbers move between runs.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

CONFIGS = ("kernel", "uncached", "cached")
QUEUED = 0.05  # share of a trial's frames that may still be in the dut when the generator stops
FLOWS = {
    # 250 destinations x 8 source ports, both stepped each frame: 1000 distinct flows.
    "many": "ipv4(sa=192.0.2.2, da=203.0.113.1, da[3]=dinc(1, 250), ttl=64), udp(sp=dinc(1024, 1031), dp=9)",
    "few": "ipv4(sa=192.0.2.2, da=203.0.113.1, da[3]=dinc(1, 4), ttl=64), udp(sp=5000, dp=9)",
}


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


class Bench:
    def __init__(self, lab: Any, seconds: float, loss: float, search_steps: int) -> None:
        from topologies.nodes import run

        self.lab = lab
        self.run = run
        self.seconds = seconds
        self.loss = loss
        self.search_steps = search_steps
        self.gen = lab.host("gen")
        self.sink = lab.host("sink")
        self.dut = lab.host("dut")
        self.gen_if = lab.intf_towards("gen", "dut")
        self.sink_if = lab.intf_towards("sink", "dut")
        plan = lab.plan
        self.dut_mac = plan["gateways"]["dut"]["kernel"]["interfaces"]["dut-eth0"]["mac"]
        self.cfg_dir = Path(lab.rundir)
        self._sink_drops_bench_flows()
        self.gateway: Any = None  # the running reference gateway, in configurations (b) and (c)

    def _sink_drops_bench_flows(self) -> None:
        """The sink counts the bench frames on its interface and drops them at ingress
        (an nftables netdev hook, before its IP stack): taking each one through UDP
        to an ICMP port-unreachable would cost a CPU that the kernel baseline takes
        from the generator and the gateway from itself.  Ping still gets answered."""
        rules = (
            "table netdev edgelab_sink {\n"
            f" chain ingress {{ type filter hook ingress device {self.sink_if} priority 0; policy accept;\n"
            "  udp dport 9 counter drop\n"
            " }\n}\n"
        )
        path = self.cfg_dir / "sink.nft"
        path.write_text(rules)
        self.run(self.sink, ["nft", "-f", str(path)])

    # -- counters and traffic ----------------------------------------------------------
    def _count(self, node: Any, ifname: str, key: str) -> int:
        out = self.run(node, ["ip", "-s", "-j", "link", "show", ifname]).stdout
        stats = json.loads(out)[0]["stats64"]
        return int(stats[key]["packets"])

    def _trafgen_cfg(self, flows: str) -> Path:
        path = self.cfg_dir / f"trafgen-{flows}.cfg"
        gen_mac = self.lab.plan["hosts"]["gen"]["mac"]
        # 64-byte frames on the wire: 14 + 20 + 8 + 18 bytes of payload (+ 4 FCS the veth does not carry).
        path.write_text(f"{{ eth(da={self.dut_mac}, sa={gen_mac}), {FLOWS[flows]}, fill(0x00, 18) }}\n")
        return path

    def trial(self, flows: str, rate_pps: float | None) -> dict[str, float]:
        """Offer traffic for ``seconds``; return sent/received packets and rates."""
        cfg = self._trafgen_cfg(flows)
        argv = [
            "timeout",
            "-s",
            "INT",
            f"{self.seconds}",
            "trafgen",
            "-o",
            self.gen_if,
            "-i",
            str(cfg),
            "--cpus",
            "1",
            "-q",
        ]
        if rate_pps is not None:
            argv += ["-b", f"{int(max(rate_pps, 1))}pps"]
        self.drain()
        dut0 = self._dut_counters()
        sent0 = self._count(self.gen, self.gen_if, "tx")
        recv0 = self._count(self.sink, self.sink_if, "rx")
        res = self.run(self.gen, argv, check=False, timeout=self.seconds + 30)
        if res.returncode not in (0, 124, 130) and "trafgen" not in res.stdout + res.stderr:
            raise RuntimeError(f"trafgen failed (exit {res.returncode}): {res.stderr.strip()}")
        # Delivered rate: what reached the sink while trafgen ran.  Loss: what never
        # reached it, counted once the dut has emptied its queues.
        in_window = self._count(self.sink, self.sink_if, "rx") - recv0
        sent = self._count(self.gen, self.gen_if, "tx") - sent0
        recv = self.drain() - recv0
        dut = self._dut_counters()
        return {
            # Where the frames went inside the gateway (reference gateway only).
            "dut": {k: dut[k] - dut0[k] for k in dut} if dut else {},
            "offered_pps": rate_pps or 0.0,
            "sent": sent,
            "received": recv,
            "sent_pps": sent / self.seconds,
            "delivered_pps": in_window / self.seconds,
            "loss": 0.0 if sent == 0 else max(0.0, (sent - recv) / sent),
            # Still queued in the dut when the generator stopped (delivered afterwards).
            "queued": 0.0 if sent == 0 else max(0, recv - in_window) / sent,
        }

    def _dut_counters(self) -> dict[str, int]:
        """The gateway's own view: frames read, sent, lost at its receive ring and
        dropped at its transmit ring, summed over its ports."""
        if self.gateway is None:
            return {}
        ports = self.gateway.show("counters")["ports"].values()
        keys = ("rx", "tx", "rx_dropped", "tx_dropped", "tx_errors", "rx_resyncs")
        return {k: sum(int(p.get(k, 0)) for p in ports) for k in keys}

    def drain(self, quiet: float = 0.3, limit: float = 15.0) -> int:
        """Wait until nothing more arrives at the sink (the dut's queues are empty);
        return the sink's receive counter.  A userspace datapath behind a deep receive
        ring may still be forwarding seconds after the generator stopped."""
        deadline = time.monotonic() + limit
        last = self._count(self.sink, self.sink_if, "rx")
        while time.monotonic() < deadline:
            time.sleep(quiet)
            now = self._count(self.sink, self.sink_if, "rx")
            if now == last:
                return now
            last = now
        log(f"the dut was still forwarding {limit:.0f} s after the generator stopped")
        return last

    def no_loss_rate(self, flows: str, ceiling: float) -> dict[str, Any]:
        """Binary search for the highest rate the dut sustains: at most ``loss`` of the
        frames lost, and at most ``QUEUED`` of them still queued in the dut when the
        generator stopped (a deep receive ring can swallow a whole trial of a rate the
        dut cannot keep up with and deliver it late: buffered, not sustained)."""
        lo, hi = 0.0, ceiling
        best: dict[str, float] | None = None
        trials = []
        for _ in range(self.search_steps):
            mid = (lo + hi) / 2
            t = self.trial(flows, mid)
            trials.append(t)
            if t["loss"] <= self.loss and t["queued"] <= QUEUED:
                lo, best = mid, t
            else:
                hi = mid
        return {"pps": best["sent_pps"] if best else 0.0, "trials": trials}

    def latency(self) -> dict[str, float]:
        self.drain()
        res = self.run(
            self.gen, ["ping", "-n", "-i", "0.005", "-c", "200", "-W", "1", "198.51.100.2"], check=False, timeout=60
        )
        rtts = [float(x) for x in re.findall(r"time=([\d.]+) ms", res.stdout)]
        if len(rtts) < 10:
            return {"p50_ms": float("nan"), "p99_ms": float("nan"), "replies": len(rtts)}
        rtts.sort()
        return {
            "p50_ms": statistics.median(rtts),
            "p99_ms": rtts[min(len(rtts) - 1, int(len(rtts) * 0.99))],
            "replies": len(rtts),
        }

    def measure(self, config: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        # Warm-up: ARP resolved, flows installed where a cache exists.
        self.run(self.gen, ["ping", "-n", "-c", "2", "-i", "0.2", "198.51.100.2"], check=False)
        for flows in FLOWS:
            log(f"{config}: {flows} flows: highest delivered rate ...")
            self.trial(flows, 20000)  # warm the flows at a modest rate
            top = self.trial(flows, None)
            log(
                f"{config}: {flows} flows: delivered {top['delivered_pps'] / 1000:.1f} kpps of {top['sent_pps'] / 1000:.1f} kpps sent; searching the no-loss rate ..."
            )
            nl = self.no_loss_rate(flows, max(top["sent_pps"], 1.0))
            log(f"{config}: {flows} flows: no-loss {nl['pps'] / 1000:.1f} kpps")
            out[flows] = {"max": top, "no_loss": nl}
        out["latency"] = self.latency()
        log(f"{config}: ping p50 {out['latency']['p50_ms']:.3f} ms, p99 {out['latency']['p99_ms']:.3f} ms")
        return out

    # -- switching the dut between configurations --------------------------------------
    def as_kernel(self) -> None:
        self.lab.stop_gateway("dut")
        self.gateway = None
        spec = self.lab.plan["gateways"]["dut"]["kernel"]
        for ifname, conf in spec["interfaces"].items():
            self.run(self.dut, ["ip", "link", "set", ifname, "address", conf["mac"]])
            self.run(self.dut, ["ip", "addr", "add", conf["ip"], "dev", ifname])
            self.run(self.dut, ["ip", "link", "set", ifname, "up"])
        for prefix, via in spec["routes"].items():
            self.run(self.dut, ["ip", "route", "replace", prefix, "via", via])
        snat = spec.get("snat")
        if snat is not None:
            # The same SNAT as the gateway's SR: nftables and the kernel's conntrack.
            self.run(self.dut, ["ip", "addr", "add", f"{snat['to']}/32", "dev", snat["out"]])
            rules = (
                "table ip edgelab_bench {\n"
                " chain post { type nat hook postrouting priority srcnat; policy accept;\n"
                f"  ip saddr {snat['source']} oifname {snat['out']} snat to {snat['to']}\n"
                " }\n}\n"
            )
            path = self.cfg_dir / "kernel-snat.nft"
            path.write_text(rules)
            self.run(self.dut, ["nft", "-f", str(path)])
        self.run(self.dut, ["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        self._flush_neighbours()

    def as_gateway(self) -> Any:
        spec = self.lab.plan["gateways"]["dut"]["kernel"]
        self.run(self.dut, ["sysctl", "-qw", "net.ipv4.ip_forward=0"])
        if spec.get("snat") is not None:
            self.run(self.dut, ["nft", "delete", "table", "ip", "edgelab_bench"], check=False)
        for ifname in spec["interfaces"]:
            self.run(self.dut, ["ip", "addr", "flush", "dev", ifname])
        self._flush_neighbours()
        self.gateway = self.lab.start_gateway("dut")
        return self.gateway

    def _flush_neighbours(self) -> None:
        for node in (self.gen, self.sink):
            self.run(node, ["ip", "neigh", "flush", "all"], check=False)


def plot(results: dict[str, Any], path: Path, title: str = "") -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib is not installed: no plot (pip install matplotlib)")
        return False
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, flows in zip(axes, FLOWS, strict=True):
        xs = range(len(CONFIGS))
        top = [results[c][flows]["max"]["delivered_pps"] / 1000 for c in CONFIGS]
        nl = [results[c][flows]["no_loss"]["pps"] / 1000 for c in CONFIGS]
        ax.bar([x - 0.2 for x in xs], top, width=0.4, label="highest delivered")
        ax.bar([x + 0.2 for x in xs], nl, width=0.4, label="no loss")
        ax.set_xticks(list(xs), CONFIGS)
        ax.set_title(f"{flows} flows, 64-byte UDP")
        ax.set_ylabel("kpps")
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return True


def table(results: dict[str, Any]) -> str:
    rows = [("config", "flows", "max kpps", "sent kpps", "no-loss kpps", "p50 ms", "p99 ms")]
    for c in CONFIGS:
        for flows in FLOWS:
            r = results[c][flows]
            lat = results[c]["latency"]
            rows.append(
                (
                    c,
                    flows,
                    f"{r['max']['delivered_pps'] / 1000:.1f}",
                    f"{r['max']['sent_pps'] / 1000:.1f}",
                    f"{r['no_loss']['pps'] / 1000:.1f}",
                    f"{lat['p50_ms']:.3f}",
                    f"{lat['p99_ms']:.3f}",
                )
            )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(v.rjust(w) if i > 1 else v.ljust(w) for i, (v, w) in enumerate(zip(r, widths, strict=True)))
        for r in rows
    )


def ratios(results: dict[str, Any]) -> list[str]:
    out = []
    for flows in FLOWS:
        for metric, get in (("max", lambda r: r["max"]["delivered_pps"]), ("no-loss", lambda r: r["no_loss"]["pps"])):
            k, u, c = (get(results[x][flows]) for x in CONFIGS)
            cu = c / u if u else float("inf")
            ck = c / k if k else float("inf")
            out.append(f"{flows:4} flows {metric:7}: cached/uncached = {cu:5.2f}x   cached/kernel = {ck:5.2f}x")
    return out


def main(
    seconds: float = 2.0,
    loss: float = 0.001,
    steps: int = 6,
    out_dir: str = "results",
    io: str = "block",
    path: str = "nat",
) -> int:
    import topologies
    from topologies import bench as bench_topology

    # What the dut does (routing alone, or routing + SNAT through an SR) and, for (b)
    # and (c), the gateway's port I/O: plain sockets or PACKET_MMAP rings.
    plan = bench_topology.plan_for(path, io)
    log(f"path {path}: {bench_topology.PATHS[path]}; gateway io: {io}")

    outp = Path(out_dir)
    outp.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    t0 = time.monotonic()
    with topologies.start("bench", dut="reference", plan=plan) as lab:
        bench = Bench(lab, seconds, loss, steps)
        bench.as_kernel()
        results["kernel"] = bench.measure("kernel")
        gw = bench.as_gateway()
        gw.request({"cmd": "cache", "action": "disable"})
        results["uncached"] = bench.measure("uncached")
        gw.request({"cmd": "cache", "action": "enable"})
        results["cached"] = bench.measure("cached")
        results["cache_counters"] = gw.show("cache")["counters"]
    meta = {
        "seconds_per_trial": seconds,
        "loss_tolerance": loss,
        "search_steps": steps,
        "frame": "64-byte UDP (60 on the veth, no FCS)",
        "generator": "trafgen --cpus 1",
        "duration_s": round(time.monotonic() - t0, 1),
        "gateway_io": io,
        "path": path,
        "path_description": bench_topology.PATHS[path],
        "flows": {"many": 1000, "few": 4},
    }
    report = {"meta": meta, "results": results}
    (outp / "bench-forwarding.json").write_text(json.dumps(report, indent=2))
    plotted = plot(results, outp / "bench-forwarding.png", f"path {path}, gateway io {io}")
    print()
    print(f"path {path}: {bench_topology.PATHS[path]}; gateway io: {io}")
    print(table(results))
    print()
    print(
        f"no loss = at most {loss:.1%} of sent frames lost and {QUEUED:.0%} still queued at the end of the trial; "
        f"{seconds:.0f} s per trial; latency = ping through the dut, idle"
    )
    print(f"written: {outp / 'bench-forwarding.json'}" + (f", {outp / 'bench-forwarding.png'}" if plotted else ""))
    print()
    for line in ratios(results):
        print(line)
    return 0


# -- where the time goes: the Python path alone ------------------------------------------
class _NullWire:
    """A transport (``gateway.io.Transport``) that drops what it is given: isolates the pipeline's own cost."""

    poll_interval = None

    def __init__(self) -> None:
        self.sent = 0

    def fileno(self) -> int:
        return -1

    def take_error(self) -> int:
        return 0

    def counters(self) -> dict[str, int]:
        return {"rx_dropped": 0, "tx_dropped": 0, "rx_resyncs": 0}

    def recv_batch(self, limit: int) -> list[tuple[bytearray, int | None]]:
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
    # Every flow: (name, a datapath maker by cache on/off, receiving port, VLAN, frame, whether
    # every frame must leave the gateway).
    cases: list[tuple[str, Any, str, int | None, bytes, bool]] = [
        (name, fresh, "trunk", 10, bytes(Ether(src=h["t1"]["mac"], dst=web_gw) / l3), False)
        for name, l3 in flows.items()
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
    print(f"{'flow':38} {'slow path us/pkt':>17} {'cache hit us/pkt':>17} {'ratio':>7}")
    for name, runs_of in measured.items():
        slow = statistics.median(c[0] for c in runs_of)
        hit = statistics.median(c[1] for c in runs_of)
        print(f"{name:38} {slow:17.2f} {hit:17.2f} {slow / hit:6.1f}x")
    if runs > 1:
        print(f"(medians of {runs} runs; every run's figures in {out_dir}/bench-pipeline.json)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench-pipeline.json").write_text(
        json.dumps(
            {
                "packets": packets,
                "runs": {n: [{"slow_us": c[0], "hit_us": c[1]} for c in r] for n, r in measured.items()},
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
def failover_main(rounds: int = 5, interval: float = 0.01, out_dir: str = "results") -> int:
    """``edgelab bench failover``: detection time and loss window over repeated failovers.

    On edge-ha: a ping probe from t1 to ext1 every ``interval`` s; kill edge1's
    datapath (SIGKILL, as a crash); detection = edge2's agent declaring the
    peer down (from its log) minus the kill time; loss window = the longest run
    of unanswered probes.  Then edge1 is restarted and the test waits for
    failback before the next round.
    """
    import subprocess

    import topologies
    from suites.lib.expect import poll
    from suites.lib.traffic import probe_gap  # the loss window, as the suites measure it

    ext = "198.51.100.10"
    count = int(4.0 / interval)
    rows: list[dict[str, Any]] = []
    with topologies.start("edge-ha", dut="reference") as lab:

        def both_up() -> bool:
            a = lab.gateway("edge1").show("ha")["agent"].get("169.254.0.3", {}).get("state")
            b = lab.gateway("edge2").show("ha")["agent"].get("169.254.0.2", {}).get("state")
            return a == "up" and b == "up"

        cfg = lab.plan["gateways"]["edge2"]["routers"][0]["ha"]["bfd"]
        for i in range(rounds):
            poll(both_up, timeout=20, what="BFD up between edge1 and edge2")
            time.sleep(0.5)
            stream = lab.host("t1").popen(
                ["ping", "-n", "-D", "-i", str(interval), "-c", str(count), "-W", "1", ext],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            time.sleep(1.0)
            t_kill = time.monotonic()
            lab.driver.kill("edge1")
            out, _ = stream.communicate(timeout=60)
            window, seqs = probe_gap(out, interval)
            takeovers = [
                json.loads(line) for line in lab.gateway("edge2").agent_text().splitlines() if '"takeover"' in line
            ]
            detect = (takeovers[-1]["t"] - t_kill) if takeovers and takeovers[-1]["t"] >= t_kill - 1 else float("nan")
            rows.append(
                {
                    "round": i + 1,
                    "detection_ms": round(detect * 1000, 1),
                    "loss_window_ms": round(window * 1000, 1),
                    "answered": len(seqs),
                    "sent": count,
                }
            )
            log(
                f"round {i + 1}: detection {detect * 1000:.0f} ms, loss window {window * 1000:.0f} ms ({len(seqs)}/{count} answered)"
            )
            lab.stop_gateway("edge1")
            lab.start_gateway("edge1")
            poll(
                lambda: lab.gateway("edge2").show("ha")["owned"]["t1-sr"] == [],
                timeout=20,
                what="failback: edge2 released edge1's addresses",
            )
    windows = [r["loss_window_ms"] for r in rows]
    detects = [r["detection_ms"] for r in rows]
    summary = {
        "bfd": f"{cfg['tx_ms']} ms x {cfg['mult']}",
        "detection_ms": {"min": min(detects), "median": statistics.median(detects), "max": max(detects)},
        "loss_window_ms": {"min": min(windows), "median": statistics.median(windows), "max": max(windows)},
        "probe_interval_ms": interval * 1000,
        "target_loss_window_ms": 500,
    }
    outp = Path(out_dir)
    outp.mkdir(parents=True, exist_ok=True)
    (outp / "bench-failover.json").write_text(json.dumps({"rounds": rows, "summary": summary}, indent=2))
    print()
    print(f"{'round':>5} {'detection ms':>13} {'loss window ms':>15} {'answered':>9}")
    for r in rows:
        print(f"{r['round']:5} {r['detection_ms']:13.1f} {r['loss_window_ms']:15.1f} {r['answered']:5}/{r['sent']}")
    print()
    print(
        f"BFD {summary['bfd']}, probe every {interval * 1000:.0f} ms, {rounds} failovers (SIGKILL of edge1's datapath)"
    )
    print(
        f"detection   min/median/max: {summary['detection_ms']['min']:.0f} / {summary['detection_ms']['median']:.0f} / {summary['detection_ms']['max']:.0f} ms"
    )
    print(
        f"loss window min/median/max: {summary['loss_window_ms']['min']:.0f} / {summary['loss_window_ms']['median']:.0f} / {summary['loss_window_ms']['max']:.0f} ms (target < 500 ms)"
    )
    print(f"written: {outp / 'bench-failover.json'}")
    return 0
