"""``edgelab bench connections``: new TCP connections per second through SNAT and the
firewall, for the kernel, the reference gateway and the ovs DUT on the same veths.

Method: the ``bench`` topology's ``nat`` path (DR -> SR with SNAT), the forwarding bench's
steering (generator on CPU 0, the DUT on CPU 1) and search (the highest rate with at most
0.1 % lost and 1 % still queued).  The traffic is connections: trafgen alternates a SYN
and a RST of the same 5-tuple, each pair a tuple of its own (250 destinations x 64,512
source ports), so every SYN is a connection's first packet -- through the slow path,
conntrack entry and NAT session created -- and its RST closes it.  The sink drops both at
ingress.  The rate reported is connections per second (pairs); ``--trials`` rounds measure
every DUT in turn.

Every trial of connections starts from an empty connection table, on every DUT (the reference's
``conntrack flush``, the kernel's conntrack flushed over netlink, Open vSwitch's
``dpctl/flush-conntrack``).  A closed connection stays 10 s in each DUT's table: without
the flush, the connections of a search's first, fastest steps (a hundred thousand and
more) expired during its last steps, the ones that decide the rate, and a step's result
depended on the steps before it and on their length (the reference: 35 k/s with 2 s steps,
46 with 1 s).  The expiry itself is then in no trial, for any DUT: ``bench pipeline``
gives the reference's in process.
"""

from __future__ import annotations

import gc
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from edgelab import bench_forwarding as bf
from edgelab import corestat
from gateway import native

CONNECT = (
    "ipv4(sa=192.0.2.2, da=203.0.113.1, da[3]=dinc(1, 250), ttl=64), tcp(sp=dinc(1024, 65535), dp=80, seq=1000, {flag})"
)
CONFIGS = ("kernel", "cached", "ovs")  # a new connection meets the reference's stages, cache or not


class ConnBench(bf.Bench):
    SINK_MATCH = "tcp dport 80"

    def _trafgen_cfg(self, flows: str) -> Path:
        path = self.cfg_dir / "trafgen-connect.cfg"
        gen_mac = self.lab.plan["hosts"]["gen"]["mac"]
        head = f"eth(da={self.dut_mac}, sa={gen_mac})"
        # Two packet definitions, sent in turn, each with counters of its own: the nth SYN and
        # the nth RST carry the same tuple.
        path.write_text(
            f"{{ {head}, {CONNECT.format(flag='syn')}, fill(0x00, 6) }}\n"
            f"{{ {head}, {CONNECT.format(flag='rst').replace('seq=1000', 'seq=1001')}, fill(0x00, 6) }}\n"
        )
        return path

    def trial(self, flows: str, rate_pps: float | None) -> dict[str, Any]:
        if flows == "connect":  # (another traffic's trial, bench_scale_wire's: the table it filled kept)
            self.empty_connections()
        return super().trial(flows, rate_pps)

    def empty_connections(self) -> None:
        """The DUT's connection table emptied (and the reference's cache, whose entries name
        connections), before a trial: each starts from the same state (the module's docstring)."""
        if self.mode == "reference":
            self.gateway.request({"cmd": "conntrack", "action": "flush"})
            self.gateway.request({"cmd": "cache", "action": "flush"})
        elif self.mode == "kernel":
            self.run(self.dut, [sys.executable, "-c", "from pyroute2 import Conntrack; Conntrack().flush()"])
        elif self.mode == "ovs":
            self.run(self.dut, ["ovs-appctl", "dpctl/flush-conntrack"])

    def measure_connections(self) -> dict[str, Any]:
        self.run(self.gen, ["ping", "-n", "-c", "2", "-i", "0.2", "198.51.100.2"], check=False)
        top = self.trial("connect", None)
        nl = self.no_loss_rate("connect", max(top["sent_pps"], 1.0))
        return {"max_cps": top["delivered_pps"] / 2, "sent_cps": top["sent_pps"] / 2, "no_loss_cps": nl["pps"] / 2,
                "core": nl["core"], "trials": nl["trials"]}  # fmt: skip


def in_process(pairs: int = 5000) -> tuple[float, float]:
    """Microseconds per new connection through the reference's stages, in this process, no I/O:
    the same SYN + RST pairs as on the wire (each pair a tuple of its own) through the ``bench``
    topology's ``nat`` path (DR, SR, conntrack entry, SNAT session), garbage collected as in
    the daemon; and per connection, its expiry once closed (the loop's sweep: the conntrack
    entry, the NAT session and the cache entry removed).  ``bench pipeline`` prints both."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import ARP, Ether

    from edgelab.bench import _NullWire
    from gateway import config, gcpolicy
    from gateway.datapath import Datapath
    from suites.duts.reference import render
    from topologies import bench as bench_topology

    plan = bench_topology.with_room_for_sessions(bench_topology.plan_for("nat", "block"))
    dp = Datapath(config.build(render(plan, "dut"), "bench"))
    for name in dp.model.ports:
        dp.attach(name, _NullWire())
    left, right = dp.model.ports["left"], dp.model.ports["right"]
    gen, sink = plan["hosts"]["gen"]["mac"], plan["hosts"]["sink"]["mac"]
    dut = plan["gateways"]["dut"]["kernel"]["interfaces"]["dut-eth0"]["mac"]
    for port, mac, ip, gw in ((left, gen, "192.0.2.2", "192.0.2.1"), (right, sink, "198.51.100.2", "198.51.100.1")):
        arp = Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=mac, psrc=ip, pdst=gw)
        dp.receive(port, bytearray(bytes(arp)), None)

    def frames(first_port: int, n: int) -> list[bytearray]:
        out = []
        for i in range(n):
            ip = IP(src="192.0.2.2", dst=f"203.0.113.{1 + i % 250}", ttl=64)
            sport = first_port + i // 250
            for seq, flags in ((1000, "S"), (1001, "R")):
                tcp = TCP(sport=sport, dport=80, seq=seq, flags=flags)
                out.append(bytearray(bytes(Ether(src=gen, dst=dut) / ip / tcp / (b"\0" * 6))))
        return out

    for f in frames(1024, 250):  # warm up: the first connections of each destination
        dp.receive(left, f, None)
    todo = frames(2048, pairs)
    sent = sum(p.tx for p in dp.model.ports.values())
    # Garbage collected as the daemon does it (gateway/gcpolicy.py), restored after.
    enabled = gc.isenabled()
    gcpolicy.reference_counting_only()
    try:
        t0 = time.perf_counter()
        for f in todo:
            dp.receive(left, f, None)
        cost = (time.perf_counter() - t0) / pairs * 1e6
        (sr,) = (r.services for r in dp.model.routers if r.services is not None)
        live = len(sr.ct)
        later = time.monotonic() + 3600.0  # (past every timeout)
        t0 = time.perf_counter()
        dp.sweep(later, None)  # (every table at once)
        expiry = time.perf_counter() - t0
    finally:
        gc.unfreeze()
        if enabled:
            gc.enable()
    if sum(p.tx for p in dp.model.ports.values()) - sent != 2 * pairs:
        raise RuntimeError("bench pipeline: not every SYN and RST of the new connections left the gateway")
    if live < pairs or len(sr.ct):
        raise RuntimeError(f"bench pipeline: {live} connections made of {pairs}, {len(sr.ct)} left after the expiry")
    return cost, expiry / live * 1e6  # (the warm-up's connections expired as well)


def main(seconds: float = 1.0, loss: float = 0.001, steps: int = 6, trials: int = 3, out_dir: str = "results") -> int:
    import topologies
    from topologies import bench as bench_topology

    # Room for every connection of the search's trials in the reference's table and pool (closed
    # ones keep their port for 10 s; one pool address held 64,512 of them, and the first,
    # fastest trials of a search refused connections as nat-pool-exhausted): the measure is
    # the rate, not the table's or the pool's size.
    plan = bench_topology.with_room_for_sessions(bench_topology.plan_for("nat", "block"))
    bf.log(f"connections: {trials} trial(s) of {', '.join(CONFIGS)}; {seconds:.0f} s per trial")
    per: dict[str, list[dict[str, Any]]] = {c: [] for c in CONFIGS}
    t0 = time.monotonic()
    with topologies.start("bench", dut="reference", plan=plan) as lab:
        bench = ConnBench(lab, seconds, loss, steps)
        with bf.raised(bench):
            for n in range(trials):
                for config in CONFIGS:
                    bench.configure(config)
                    r = bench.measure_connections()
                    bf.log(f"trial {n + 1}: {config}: {r['no_loss_cps'] / 1000:.1f} k connections/s without loss")
                    per[config].append(r)
    results = {
        c: {
            "no_loss_cps": statistics.median(r["no_loss_cps"] for r in per[c]),
            "max_cps": statistics.median(r["max_cps"] for r in per[c]),
            "range": [min(r["no_loss_cps"] for r in per[c]), max(r["no_loss_cps"] for r in per[c])],
            "core": corestat.median([r["core"] for r in per[c]]),  # per frame: a connection is two
            "trials": per[c],
        }
        for c in CONFIGS
    }
    outp = Path(out_dir)
    outp.mkdir(parents=True, exist_ok=True)
    meta = {"seconds_per_trial": seconds, "trials": trials, "steering": bench.steering,
            "duration_s": round(time.monotonic() - t0, 1), "reference_modules": native.describe()}  # fmt: skip
    (outp / "bench-connections.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    print()
    print(f"{'config':8} {'no-loss k conn/s':>17} {'min-max':>10} {'at full speed':>14}")
    for c in CONFIGS:
        r = results[c]
        lo, hi = r["range"]
        print(f"{c:8} {r['no_loss_cps'] / 1000:17.1f} {lo / 1000:4.0f}-{hi / 1000:<5.0f} {r['max_cps'] / 1000:14.1f}")
    print(f"\nthe DUT's core (CPU {bf.DUT_CPU}) at its no-loss rate: busy microseconds per connection (two frames)")
    for c in CONFIGS:
        per_conn, busy = corestat.cells(results[c]["core"], 2.0)
        print(f"{c:8} {per_conn:>8} us  busy {busy}")
    k = results["kernel"]["no_loss_cps"]
    if k:
        print(f"\nreference/kernel = {results['cached']['no_loss_cps'] / k:.2f}x (target >= 0.25x)   "
              f"ovs/kernel = {results['ovs']['no_loss_cps'] / k:.2f}x")  # fmt: skip
    print(f"medians of {trials} trial(s); {bench.steering}; written: {outp / 'bench-connections.json'}")
    return 0
