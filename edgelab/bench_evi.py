"""``edgelab bench evi``: EVI on the wire (topology evi-dci), as root.

Two figures, measured in one run:

- **Forwarding across two sites** (topology bench-evi), cached against
  uncached: trafgen on gen sends 64-byte UDP frames to the sink's MAC (edgeA
  encapsulates, the core router forwards, edgeB decapsulates); the sink
  counts them and drops them at ingress (an nftables netdev hook).  The
  highest delivered rate and the highest rate with at most 0.1 % lost, with
  both edges' caches disabled, then enabled (the same daemons, switched at
  run time).  This kernel has no GRE, so there is no kernel baseline: the
  ratio is cached/uncached.  (In evi-dci the site switches, Open vSwitch
  userspace bridges, pass far fewer frames than the edges: seen, 1.6 of 10
  kpps offered; hence a topology without them.)
- **Appointed-forwarder takeover** (evi-dci): a ping probe h1a -> h2a every
  10 ms; site 2's forwarder is crashed (SIGKILL); the loss window is the
  longest silence of the probe (as ``bench failover`` measures it); the edge
  is restarted, and the next round waits until it is the forwarder again.

Writes ``results/bench-evi.json``.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from edgelab.offered import Offered

FLOWS = "ipv4(sa=10.100.0.1, da=10.100.0.2, ttl=64), udp(sp=dinc(1024, 2023), dp=9)"
LOSS = 0.001


def log(msg: str) -> None:
    print(f"[bench evi] {msg}", file=sys.stderr, flush=True)


class EviBench(Offered):
    """The forwarding bench's trials and search (``offered.py``) across two sites.  Nothing is
    steered here (four nodes on two CPUs): trafgen runs where the kernel puts it, and the
    DUT's core is not read."""

    def __init__(self, lab: Any, seconds: float, steps: int) -> None:
        gen, sink = lab.host("gen"), lab.host("sink")
        super().__init__(
            lab, seconds, LOSS, steps, gen.defaultIntf().name, sink.defaultIntf().name, gen_cpu=None, core_cpu=None
        )

    def _trafgen_cfg(self, flows: str) -> Path:
        plan = self.lab.plan["hosts"]
        cfg = self.cfg_dir / "trafgen-evi.cfg"
        cfg.write_text(f"{{ eth(da={plan['sink']['mac']}, sa={plan['gen']['mac']}), {FLOWS}, fill(0x00, 18) }}\n")
        return cfg

    def caches(self, enabled: bool) -> None:
        for name in self.lab.plan["gateways"]:
            self.lab.gateway(name).request({"cmd": "cache", "action": "enable" if enabled else "disable"})

    def forwarding(self, config: str) -> dict[str, Any]:
        self.caches(config == "cached")
        self.run(self.gen, ["ping", "-n", "-c", "2", "-i", "0.2", "10.100.0.2"], check=False)
        self.trial("evi", 20000)  # warm-up
        top = self.trial("evi", None)
        log(f"{config}: delivered {top['delivered_pps'] / 1000:.1f} kpps of {top['sent_pps'] / 1000:.1f} sent")
        nl = self.no_loss_rate("evi", max(top["sent_pps"], 1.0))
        log(f"{config}: no-loss {nl['pps'] / 1000:.1f} kpps")
        return {"max": top, "no_loss_pps": nl["pps"], "trials": nl["trials"]}  # every trial, to recompute from


def takeover(lab: Any) -> dict[str, Any]:
    """One appointed-forwarder takeover on evi-dci: crash site 2's forwarder under a probe."""
    from suites.lib.evi import forwarder, mesh_up
    from suites.lib.expect import poll
    from suites.lib.traffic import probe_gap

    active = forwarder(lab)
    probe = lab.host("h1a").popen(
        ["ping", "-n", "-D", "-i", "0.01", "-c", "1500", "-W", "1", "10.100.0.12"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    time.sleep(2.0)
    lab.gateway(active).crash()
    out, _ = probe.communicate(timeout=60)
    gap, _seqs = probe_gap(out, 0.01)
    lab.start_gateway(active)
    poll(lambda: mesh_up(lab), timeout=30, what="the mesh back")
    poll(lambda: forwarder(lab) == active, timeout=15, what=f"{active} the forwarder again")
    return {"crashed": active, "loss_window_s": gap}


def main(seconds: float = 2.0, steps: int = 5, rounds: int = 3, out_dir: str = "results") -> int:
    import topologies
    from suites.lib.expect import poll

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"forwarding": {}, "takeover": []}
    with topologies.start("bench-evi", dut="reference", log=log) as lab:
        bench = EviBench(lab, seconds, steps)
        for config in ("uncached", "cached"):
            results["forwarding"][config] = bench.forwarding(config)
    with topologies.start("evi-dci", dut="reference", log=log) as lab:
        poll(lambda: all(lab.gateway(g).settled() for g in lab.plan["gateways"]), timeout=30, what="edges settled")
        for i in range(rounds):
            r = takeover(lab)
            log(f"takeover {i + 1}/{rounds}: {r['crashed']} crashed, loss window {r['loss_window_s'] * 1000:.0f} ms")
            results["takeover"].append(r)
    (out / "bench-evi.json").write_text(json.dumps(results, indent=2))
    f = results["forwarding"]
    print(f"{'config':10} {'max kpps':>9} {'sent kpps':>10} {'no-loss kpps':>13}")
    for config in ("uncached", "cached"):
        top = f[config]["max"]
        print(
            f"{config:10} {top['delivered_pps'] / 1000:9.1f} {top['sent_pps'] / 1000:10.1f} "
            f"{f[config]['no_loss_pps'] / 1000:13.1f}"
        )
    u, c = f["uncached"], f["cached"]
    if u["max"]["delivered_pps"] and u["no_loss_pps"]:
        print(
            f"\nsite 1 -> site 2: cached/uncached = {c['max']['delivered_pps'] / u['max']['delivered_pps']:.2f}x max, "
            f"{c['no_loss_pps'] / u['no_loss_pps']:.2f}x no-loss"
        )
    windows = [r["loss_window_s"] * 1000 for r in results["takeover"]]
    print(
        f"appointed-forwarder takeover, {len(windows)} rounds: loss window median {statistics.median(windows):.0f} ms, "
        f"max {max(windows):.0f} ms ({', '.join(f'{w:.0f}' for w in windows)})"
    )
    print(f"written: {out / 'bench-evi.json'}")
    return 0
