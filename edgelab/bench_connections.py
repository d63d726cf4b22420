"""``edgelab bench connections``: new TCP connections per second through SNAT and the
firewall, for the kernel, the reference gateway and the ovs DUT on the same veths.

Method: the ``bench`` topology's ``nat`` path (DR -> SR with SNAT), the forwarding bench's
steering (generator on CPU 0, the DUT on CPU 1) and search (the highest rate with at most
0.1 % lost and 5 % still queued).  The traffic is connections: trafgen alternates a SYN
and a RST of the same 5-tuple, each pair a tuple of its own (250 destinations x 64,512
source ports), so every SYN is a connection's first packet -- through the slow path,
conntrack entry and NAT session created -- and its RST closes it.  The sink drops both at
ingress.  The rate reported is connections per second (pairs); ``--trials`` rounds measure
every DUT in turn.
"""

from __future__ import annotations

import copy
import json
import statistics
import time
from pathlib import Path
from typing import Any

from edgelab import bench_forwarding as bf

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

    def measure_connections(self) -> dict[str, Any]:
        self.run(self.gen, ["ping", "-n", "-c", "2", "-i", "0.2", "198.51.100.2"], check=False)
        top = self.trial("connect", None)
        nl = self.no_loss_rate("connect", max(top["sent_pps"], 1.0))
        return {"max_cps": top["delivered_pps"] / 2, "sent_cps": top["sent_pps"] / 2, "no_loss_cps": nl["pps"] / 2,
                "trials": nl["trials"]}  # fmt: skip


def main(seconds: float = 1.0, loss: float = 0.001, steps: int = 6, trials: int = 3, out_dir: str = "results") -> int:
    import topologies
    from topologies import bench as bench_topology

    plan = bench_topology.plan_for("nat", "block")
    # Room for every connection of a trial in the reference's table and pool (closed ones
    # linger for their timeout): the measure is the rate, not the table size.
    plan = copy.deepcopy(plan)
    plan["gateways"]["dut"]["routers"][0]["nat"]["max_sessions"] = 2_000_000
    bf.log(f"connections: {trials} trial(s) of {', '.join(CONFIGS)}; {seconds:.0f} s per trial")
    per: dict[str, list[dict[str, Any]]] = {c: [] for c in CONFIGS}
    saved = {key: (bf.SYSCTL / key).read_text().strip() for key in bf.BENCH_SYSCTLS}
    t0 = time.monotonic()
    with topologies.start("bench", dut="reference", plan=plan) as lab:
        bench = ConnBench(lab, seconds, loss, steps)
        try:
            for key, value in bf.BENCH_SYSCTLS.items():
                (bf.SYSCTL / key).write_text(str(value))
            for n in range(trials):
                for config in CONFIGS:
                    bench.configure(config)
                    r = bench.measure_connections()
                    bf.log(f"trial {n + 1}: {config}: {r['no_loss_cps'] / 1000:.1f} k connections/s without loss")
                    per[config].append(r)
        finally:
            for key, value in saved.items():
                (bf.SYSCTL / key).write_text(value)
            bench.leave()
    results = {
        c: {
            "no_loss_cps": statistics.median(r["no_loss_cps"] for r in per[c]),
            "max_cps": statistics.median(r["max_cps"] for r in per[c]),
            "range": [min(r["no_loss_cps"] for r in per[c]), max(r["no_loss_cps"] for r in per[c])],
            "trials": per[c],
        }
        for c in CONFIGS
    }
    outp = Path(out_dir)
    outp.mkdir(parents=True, exist_ok=True)
    meta = {"seconds_per_trial": seconds, "trials": trials, "steering": bench.steering,
            "duration_s": round(time.monotonic() - t0, 1)}  # fmt: skip
    (outp / "bench-connections.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    print()
    print(f"{'config':8} {'no-loss k conn/s':>17} {'min-max':>10} {'at full speed':>14}")
    for c in CONFIGS:
        r = results[c]
        lo, hi = r["range"]
        print(f"{c:8} {r['no_loss_cps'] / 1000:17.1f} {lo / 1000:4.0f}-{hi / 1000:<5.0f} {r['max_cps'] / 1000:14.1f}")
    k = results["kernel"]["no_loss_cps"]
    if k:
        print(f"\nreference/kernel = {results['cached']['no_loss_cps'] / k:.2f}x (target >= 0.25x)   "
              f"ovs/kernel = {results['ovs']['no_loss_cps'] / k:.2f}x")  # fmt: skip
    print(f"medians of {trials} trial(s); {bench.steering}; written: {outp / 'bench-connections.json'}")
    return 0
