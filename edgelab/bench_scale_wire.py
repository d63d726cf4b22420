"""``edgelab bench scale --wire``: the reference gateway's tables grown in the running daemon,
and what a packet costs on the wire as they grow (as root).

The ``bench`` topology's ``nat`` path (DR -> SR with SNAT) and the forwarding bench's
steering (generator on CPU 0, the gateway on CPU 1) and no-loss search (``bench_forwarding``).
For each dimension and size the gateway starts afresh with that table, then:

- **sessions** (1k to 1M held): trafgen sends that many distinct UDP flows from a second
  source address (each through the slow path: a connection and an SNAT session on a pool of
  20 public addresses); then, with the table full, the forwarding bench's many-flow traffic
  on the cached path (every hit touches its connection): its no-loss rate, and the daemon's
  resident memory (``VmRSS``) read from the process while the table is full;
- **firewall rules** (10 to 10k in the config, of three shapes, none matching the traffic):
  new connections per second (``bench connections``' SYN + RST pairs: each SYN is judged by
  the tuple-space classifier);
- **routes** (1k to 100k on the SR, more specific ones around the traffic's prefix): new
  connections per second (each SYN through both routers' FIB lookups).

Each size's figure against the smallest size's in the same run (a ratio, as the in-process
curves of ``bench_scale``).  It writes ``results/bench-scale-wire.json`` and
``results/bench-scale-wire.png`` (rate and memory against size, log scale).
"""

from __future__ import annotations

import ipaddress
import json
import time
from pathlib import Path
from typing import Any

from edgelab import bench_forwarding as bf
from edgelab.bench_connections import ConnBench
from gateway import native

FILL = "ipv4(sa=192.0.2.3, da=203.0.113.1, da[3]=dinc(1, 250), ttl=64), udp(sp=dinc(1024, 65535), dp=9), fill(0x00, 18)"  # 250 x 64,512 stepped together: 8,064,000 distinct tuples before one repeats
FILL_PPS = 20_000
SIZES = {
    "sessions": [1_000, 10_000, 100_000, 1_000_000],
    "firewall rules": [10, 1_000, 10_000],
    "routes": [1_000, 10_000, 100_000],
}


class ScaleBench(ConnBench):
    SINK_MATCH = "meta l4proto { tcp, udp } th dport { 9, 80 }"  # the fill, the flows and the connections

    def _trafgen_cfg(self, flows: str) -> Path:
        if flows == "connect":
            return super()._trafgen_cfg(flows)
        if flows == "fill":
            path = self.cfg_dir / "trafgen-fill.cfg"
            gen_mac = self.lab.plan["hosts"]["gen"]["mac"]
            path.write_text(f"{{ eth(da={self.dut_mac}, sa={gen_mac}), {FILL} }}\n")
            return path
        return bf.Bench._trafgen_cfg(self, flows)

    def fill(self, n: int) -> int:
        """``n`` new UDP flows through the gateway (paced); the connections its table holds then."""
        argv = self._trafgen("fill", n / FILL_PPS + 60)
        cut = argv.index("trafgen")
        argv[cut + 1 : cut + 1] = ["-n", str(n)]
        with self.paced("fill", FILL_PPS):
            self.run(self.gen, argv, check=False, timeout=n / FILL_PPS + 90)
        self.drain()
        return self.sessions()

    def sessions(self) -> int:
        return int(self.gateway.request({"cmd": "show", "what": "conntrack", "limit": 0})["r1"]["count"])

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.gateway.proc.pid}/status").read_text()
        kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
        return round(kb / 1024, 1)

    def forwarding(self) -> dict[str, Any]:
        """The many-flow traffic's no-loss rate on the cached path (kpps), and the search's trials."""
        self.run(self.gen, ["ping", "-n", "-c", "2", "-i", "0.2", self.probe], check=False)
        self.trial("many", 20000)  # the flows' entries installed
        top = self.trial("many", None)
        nl = self.no_loss_rate("many", max(top["sent_pps"], 1.0))
        return {"kpps": round(nl["pps"] / 1000, 1), "trials": nl["trials"]}

    def connections(self) -> dict[str, Any]:
        """New connections per second without loss (k/s), and the search's trials."""
        got = self.measure_connections()
        return {"kcps": round(got["no_loss_cps"] / 1000, 1), "trials": got["trials"]}


def _rules(n: int) -> list[dict[str, Any]]:
    """``n`` firewall rules of three shapes, none matching the bench's traffic (to 203.0.113.0/24)."""
    out = []
    for i in range(n):
        net = str(ipaddress.IPv4Network((0x0A000000 + (i << 8), 24)))
        shape = i % 3
        if shape == 0:
            out.append({"name": f"r{i}", "action": "drop", "direction": "out", "proto": "tcp", "dst": net,
                        "dport": 1000 + i % 500})  # fmt: skip
        elif shape == 1:
            out.append({"name": f"r{i}", "action": "allow", "direction": "in", "proto": "udp", "src": net,
                        "dport": "5000-5100"})  # fmt: skip
        else:
            out.append({"name": f"r{i}", "action": "reject", "direction": "any", "proto": "tcp", "src": net,
                        "dst": "198.51.99.0/24"})  # fmt: skip
    return out


def _routes(n: int) -> list[dict[str, Any]]:
    """``n`` routes on the SR: the traffic's /24 stays, the rest are /24s and /28s elsewhere."""
    out = [{"prefix": "203.0.113.0/24", "via": "198.51.100.2"}]
    for i in range(n - 1):
        plen = 24 if i % 4 else 28
        base = 0x0A000000 + (i << 8)
        out.append({"prefix": str(ipaddress.IPv4Network((base, plen))), "via": "198.51.100.2"})
    return out


def _plan(dimension: str, n: int) -> dict[str, Any]:
    from topologies import bench as bench_topology

    plan = bench_topology.with_room_for_sessions(bench_topology.plan_for("nat", "block"))
    router = plan["gateways"]["dut"]["routers"][0]
    router["nat"]["timeouts"] = {"udp": 1800}  # the filled sessions outlive the measurement
    if dimension == "firewall rules":
        router["firewall"] = _rules(n)
    elif dimension == "routes":
        router["sr"]["routes"] = _routes(n)
    return plan


def measure(bench: ScaleBench, lab: Any, dimension: str, n: int) -> dict[str, Any]:
    lab.plan = _plan(dimension, n)
    t0 = time.monotonic()
    bench.gateway = lab.start_gateway("dut")
    started = time.monotonic() - t0
    bench.steer()
    # Forwarding before anything is measured (the sink's neighbour resolved): a ping through it.
    bench.run(bench.gen, ["ping", "-n", "-c", "1", "-w", "5", bench.probe], check=False)
    row: dict[str, Any] = {"size": n, "start_s": round(started, 1)}
    if dimension == "sessions":
        row["held"] = bench.fill(n)
        row["rss_mb"] = bench.rss_mb()
        row.update(bench.forwarding())
        row["held_after"] = bench.sessions()
    else:
        row["rss_mb"] = bench.rss_mb()
        row.update(bench.connections())
    return row


def plot(results: dict[str, list[dict[str, Any]]], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(1, len(results), figsize=(4.5 * len(results), 3.6), squeeze=False)
    for ax, (name, rows) in zip(axes[0], results.items(), strict=True):
        key, unit = ("kpps", "cached forwarding, kpps") if name == "sessions" else ("kcps", "new connections, k/s")
        sizes = [r["held"] if name == "sessions" else r["size"] for r in rows]
        ax.plot(sizes, [r[key] for r in rows], "o-", label=unit)
        ax.set_xscale("log")
        ax.set_ylim(bottom=0)
        ax.set_title(name)
        ax.set_xlabel("entries")
        ax.set_ylabel(unit)
        mem = ax.twinx()
        mem.plot(sizes, [r["rss_mb"] for r in rows], "s--", color="grey", label="daemon RSS, MB")
        mem.set_ylabel("daemon RSS, MB")
        mem.set_ylim(bottom=0)
    fig.suptitle("reference gateway on the wire as its tables grow (edgelab bench scale --wire)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main(out_dir: str = "results", seconds: float = 1.0, steps: int = 6, quick: bool = False) -> int:
    import topologies

    sizes = {k: v[:2] for k, v in SIZES.items()} if quick else SIZES
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in sizes}
    t0 = time.monotonic()
    bf.log("scale on the wire: " + "; ".join(f"{k} {', '.join(f'{n:,}' for n in v)}" for k, v in sizes.items()))
    with topologies.start("bench", dut="reference", plan=_plan("sessions", 0)) as lab:
        bench = ScaleBench(lab, seconds, 0.001, steps)
        with bf.raised(bench):
            for name, ns in sizes.items():
                for n in ns:
                    bf.log(f"{name}: {n:,} ...")
                    row = measure(bench, lab, name, n)
                    bf.log(f"{name}: {n:,}: {json.dumps({k: v for k, v in row.items() if k != 'trials'})}")
                    results[name].append(row)
    outp = Path(out_dir)
    outp.mkdir(parents=True, exist_ok=True)
    meta = {"seconds_per_trial": seconds, "search_steps": steps, "steering": bench.steering,
            "fill_pps": FILL_PPS, "duration_s": round(time.monotonic() - t0, 1),
            "reference_modules": native.describe()}  # fmt: skip
    (outp / "bench-scale-wire.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    print(
        f"\n{'table':<15} {'size':>10} {'held':>10} {'rate':>18} {'vs smallest':>12} {'daemon MB':>10} {'start s':>8}"
    )
    for name, rows in results.items():
        key, unit = ("kpps", "kpps") if name == "sessions" else ("kcps", "k conn/s")
        base = rows[0][key] or float("nan")
        for r in rows:
            held = f"{r['held']:,}" if "held" in r else "-"
            print(f"{name:<15} {r['size']:>10,} {held:>10} {r[key]:>9.1f} {unit:<8} {r[key] / base:>11.2f}x "
                  f"{r['rss_mb']:>10.1f} {r['start_s']:>8.1f}")  # fmt: skip
    drawn = plot(results, outp / "bench-scale-wire.png")
    print(
        f"\n{bench.steering}; written: {outp / 'bench-scale-wire.json'}"
        + (f", {outp / 'bench-scale-wire.png'}" if drawn else "")
    )
    return 0
