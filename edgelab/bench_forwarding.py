"""``edgelab bench forwarding``: the kernel, the reference gateway without and
with its cache, and Open vSwitch (the ovs DUT), the same traffic, one run.

Method (on the ``bench`` topology: gen -> dut -> sink):

- what the dut does (``--path``): ``nat`` (default) — the edge gateway's
  own job: the DR routes gen's traffic over the transit link to the SR, which
  routes it to the sink and SNATs the source (conntrack, NAT session, l4
  cache match); ``routed`` — the DR alone routes it (l3 cache match);
  ``routed6`` — the same over IPv6 (62-byte frames, l3v6 match; the ovs DUT
  has no IPv6: n/a);
- configurations, in this order on the same veths: (a) ``kernel`` — the dut
  node as a plain Linux router, same addresses and MACs (for ``nat`` with an
  nftables SNAT rule and the kernel's conntrack); (b) ``uncached`` — the
  reference gateway with its cache disabled; (c) ``cached`` — the same daemon
  with the cache enabled; (d) ``ovs`` — the ovs DUT: the node's ports on an
  Open vSwitch userspace bridge programmed by the os-ken app from the same
  intent (for ``nat``: DR and SR, ct(nat)); ``--dut`` picks among them
  (linux = kernel, reference = uncached + cached, ovs);
- ``--trials`` rounds (default 5), each measuring every configuration in
  turn, so that drift hits them alike; the table gives medians, the JSON
  every trial, the plot one box per configuration;
- fair to every DUT: the generator is pinned to CPU 0, and the DUT's
  receive processing is steered to CPU 1 (RPS on its ingress veth; a veth's
  receive work otherwise runs on the sender's CPU, so the kernel would
  forward on the generator's core), its daemon (the reference gateway,
  ovs-vswitchd) pinned there too.  A configuration that delivered what the
  generator sent at full speed is marked *generator-bound*: its own limit
  is higher than the figure;
- traffic: 64-byte UDP frames from trafgen (one CPU), ``many`` flows (1000:
  250 destinations x 8 source ports) and ``few`` flows (4 destinations),
  counted on the sink's interface and dropped there at ingress (nftables);
- for each configuration and traffic: the highest delivered rate (trafgen
  unthrottled for ``--seconds``, frames counted on the sink's interface while
  trafgen runs), the highest rate with no loss (binary search on the offered
  rate, an even pace set by ``pacing.py`` in front of trafgen: at most
  ``--loss`` of the frames lost, and at most 1% still queued in the dut when
  trafgen stops, so that a deep receive ring cannot pass a rate off as
  sustained by buffering it), and the p50/p99 round-trip time of a
  ping probe flow through the dut, idle and under ``many``-flow load at 1 %,
  50 % and 90 % of that configuration's no-loss rate in the same trial (as
  CSIT reports latency); between trials the bench waits until the dut has
  drained;
- output: a table, ``results/bench-forwarding.json``, a PNG plot, and the
  ratios cached/uncached and cached/kernel last.

Both cores are shared by trafgen, the kernel's forwarding and the daemon:
only ratios within one run mean anything; absolute numbers move between runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import statistics
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgelab import corestat
from edgelab.offered import DUT_CPU, GEN_CPU, QUEUED, Offered, log
from gateway import native

CONFIGS = ("kernel", "uncached", "cached", "ovs")
DUT_CONFIGS = {"linux": ("kernel",), "reference": ("uncached", "cached"), "ovs": ("ovs",)}
SYSCTL = Path("/proc/sys")
BENCH_SYSCTLS = {
    "net/core/netdev_max_backlog": 100_000,
    "net/core/wmem_default": 256 * 1024 * 1024,
    "net/core/rmem_default": 64 * 1024 * 1024,
}  # see main
GENERATOR_BOUND = 0.97  # delivered / sent at full speed above which the generator, not the DUT, set the figure
LOADS = {"idle": 0.0, "1%": 0.01, "50%": 0.5, "90%": 0.9}  # latency probed alone and beside this share of no-loss
FLOWS = {
    # 250 destinations x 8 source ports, both stepped each frame: 1000 distinct flows.
    "many": "ipv4(sa=192.0.2.2, da=203.0.113.1, da[3]=dinc(1, 250), ttl=64), udp(sp=dinc(1024, 1031), dp=9)",
    "few": "ipv4(sa=192.0.2.2, da=203.0.113.1, da[3]=dinc(1, 4), ttl=64), udp(sp=5000, dp=9)",
}
# The same flows over IPv6 (path routed6): the smallest such frame is 62 bytes (66 with FCS).
FLOWS6 = {
    "many": "ip6(sa=2001:db8:a::2, da=2001:db8:f::1, da[15]=dinc(1, 250), hl=64), udp(sp=dinc(1024, 1031), dp=9)",
    "few": "ip6(sa=2001:db8:a::2, da=2001:db8:f::1, da[15]=dinc(1, 4), hl=64), udp(sp=5000, dp=9)",
}


class Bench(Offered):
    """The forwarding bench's trials (``offered.py``) on the ``bench`` topology, and what runs
    on its dut node: the kernel, the reference gateway, the ovs DUT."""

    def __init__(self, lab: Any, seconds: float, loss: float, search_steps: int) -> None:
        super().__init__(
            lab, seconds, loss, search_steps, lab.intf_towards("gen", "dut"), lab.intf_towards("sink", "dut")
        )
        self.dut = lab.host("dut")
        plan = lab.plan
        self.dut_mac = plan["gateways"]["dut"]["kernel"]["interfaces"]["dut-eth0"]["mac"]
        self.v6 = plan.get("family") == 6
        # The ping probe (latency, warm-up) crosses the same path as the bench frames.
        self.probe = plan["hosts"]["sink"]["ip6" if self.v6 else "ip"].split("/")[0]
        self.gateway: Any = lab.gateway("dut")  # the running reference gateway, in configurations (b) and (c)
        self.mode = "reference"  # what runs on the dut node: kernel | reference | ovs (the lab starts the reference)
        self.ovs: Any = None  # the ovs DUT's driver, in configuration (d)
        self.steering = "none"
        self.kernel_macs: dict[str, str] = {}  # the dut's interfaces' own MACs while the kernel is the DUT

    def _trafgen_cfg(self, flows: str) -> Path:
        path = self.cfg_dir / f"trafgen-{flows}.cfg"
        gen_mac = self.lab.plan["hosts"]["gen"]["mac"]
        # 64-byte frames on the wire: 14 + 20 + 8 + 18 bytes of payload (+ 4 FCS the veth does not carry);
        # over IPv6 the smallest: 14 + 40 + 8.
        body = f"{FLOWS6[flows]}" if self.v6 else f"{FLOWS[flows]}, fill(0x00, 18)"
        path.write_text(f"{{ eth(da={self.dut_mac}, sa={gen_mac}), {body} }}\n")
        return path

    def _dut_counters(self) -> dict[str, int]:
        """The gateway's own view: frames read, sent, lost at its receive ring and
        dropped at its transmit ring, summed over its ports, its switches between frames
        and blocks, and its loop's rounds that took over 10, 50 and 100 ms (a trial's
        difference: what stalled the daemon in that trial)."""
        if self.gateway is None or self.mode != "reference":
            return {}
        counters = self.gateway.show("counters")
        ports = counters["ports"].values()
        keys = ("rx", "tx", "rx_dropped", "tx_dropped", "tx_errors", "rx_resyncs", "rx_switches")
        out = {k: sum(int(p.get(k, 0)) for p in ports) for k in keys}
        loop = counters.get("loop", {})
        out.update({k: int(v) for k, v in loop.items() if k.startswith("rounds_over_")})
        return out

    def latency(self, load_pps: float = 0.0) -> dict[str, float]:
        """200 pings 5 ms apart through the dut, alone or beside ``many``-flow traffic at
        ``load_pps`` (started 0.3 s before the first ping, running past the last)."""
        self.drain()
        load = None
        # The load paced; the pings go by in a class of their own (pacing.py), so they wait in
        # the DUT's queues at that load, not behind the load in the generator's.
        with self.paced("many", load_pps if load_pps > 0 else None):
            if load_pps > 0:
                argv = self._trafgen("many", 2.0)
                load = self.gen.popen(
                    argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
                time.sleep(0.3)
            try:
                res = self.run(
                    self.gen, ["ping", "-n", "-i", "0.005", "-c", "200", "-W", "1", self.probe], check=False, timeout=60
                )
            finally:
                if load is not None:
                    try:
                        load.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        load.kill()
                        load.wait()
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
        self.run(self.gen, ["ping", "-n", "-c", "2", "-i", "0.2", self.probe], check=False)
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
        out["latency"] = {}
        for load, share in LOADS.items():
            out["latency"][load] = lat = self.latency(share * out["many"]["no_loss"]["pps"])
            log(
                f"{config}: ping {load}: p50 {lat['p50_ms']:.3f} ms, p99 {lat['p99_ms']:.3f} ms ({lat['replies']} replies)"
            )
        return out

    # -- switching the dut between configurations --------------------------------------
    def configure(self, config: str) -> None:
        """Make the dut node run ``config``: tear down what runs there, set up the rest."""
        mode = {"kernel": "kernel", "uncached": "reference", "cached": "reference", "ovs": "ovs"}[config]
        if mode != self.mode:
            {"kernel": self._kernel_down, "reference": self._reference_down, "ovs": self._ovs_down}[self.mode]()
            {"kernel": self._kernel_up, "reference": self._reference_up, "ovs": self._ovs_up}[mode]()
            self.mode = mode
            self._flush_neighbours()
        if config in ("uncached", "cached"):
            self.gateway.request({"cmd": "cache", "action": "disable" if config == "uncached" else "enable"})
        self.steer()

    def _kernel_up(self) -> None:
        spec = self.lab.plan["gateways"]["dut"]["kernel"]
        for ifname, conf in spec["interfaces"].items():
            # The kernel answers to the gateway's MAC; given back in _kernel_down.
            self.kernel_macs[ifname] = self.run(self.dut, ["cat", f"/sys/class/net/{ifname}/address"]).stdout.strip()
            self.run(self.dut, ["ip", "link", "set", ifname, "address", conf["mac"]])
            self.run(self.dut, ["ip", "addr", "add", conf["ip"], "dev", ifname])
            if conf.get("ip6"):
                self.run(self.dut, ["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=0",
                                    f"net.ipv6.conf.{ifname}.disable_ipv6=0", f"net.ipv6.conf.{ifname}.accept_dad=0",
                                    "net.ipv6.conf.all.forwarding=1"])  # fmt: skip
                self.run(self.dut, ["ip", "-6", "addr", "add", conf["ip6"], "dev", ifname, "nodad"])
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

    def _kernel_down(self) -> None:
        spec = self.lab.plan["gateways"]["dut"]["kernel"]
        self.run(self.dut, ["sysctl", "-qw", "net.ipv4.ip_forward=0"])
        if spec.get("snat") is not None:
            self.run(self.dut, ["nft", "delete", "table", "ip", "edgelab_bench"], check=False)
        for ifname, conf in spec["interfaces"].items():
            self.run(self.dut, ["ip", "addr", "flush", "dev", ifname])
            # Left with the gateway's MAC, the node's kernel took every frame of the next
            # DUT's turn as its own (PACKET_HOST: IP input, a route lookup, a drop) on the
            # DUT's core: the reference measured after the kernel got 31-60 kpps, alone 108-115.
            self.run(self.dut, ["ip", "link", "set", ifname, "address", self.kernel_macs.pop(ifname)])
            if conf.get("ip6"):  # back to a node whose kernel leaves the ports to the gateway
                self.run(self.dut, ["sysctl", "-qw", "net.ipv6.conf.all.forwarding=0",
                                    f"net.ipv6.conf.{ifname}.disable_ipv6=1"])  # fmt: skip

    def _reference_up(self) -> None:
        self.gateway = self.lab.start_gateway("dut")

    def _reference_down(self) -> None:
        self.lab.stop_gateway("dut")
        self.gateway = None

    def _ovs_up(self) -> None:
        import topologies

        self.ovs = topologies.dut_driver("ovs")(self.lab)
        self.ovs.start("dut")

    def _ovs_down(self) -> None:
        self._pin(_pidof("ovs-vswitchd"), None)
        self.ovs.stop("dut")
        self.ovs = None

    def leave(self) -> None:
        """Hand the node back as the lab left it (the lab stops the reference gateway itself)."""
        if self.mode == "ovs":
            self._ovs_down()
        elif self.mode == "kernel":
            self._kernel_down()

    # -- a core for the generator, a core for the DUT -----------------------------------------
    def steer(self) -> None:
        """RPS on the dut's ingress veth to ``DUT_CPU``, its daemon pinned there; the generator
        runs on ``GEN_CPU`` (``trial``).  On a machine with one CPU there is nothing to steer."""
        if (os.cpu_count() or 1) < 2:
            self.steering = "none (one CPU)"
            return
        mask = f"{1 << DUT_CPU:x}"
        ingress = "dut-eth0"
        # the node's own sysfs (its namespace's devices), mounted in a mount namespace of its own
        script = (
            f"d=$(mktemp -d) && mount -t sysfs sysfs $d && echo {mask} > $d/class/net/{ingress}/queues/rx-0/rps_cpus;"
            " rc=$?; umount $d; rmdir $d; exit $rc"
        )
        argv = ["unshare", "-m", "sh", "-c", script]
        if self.mode == "ovs":  # the ports are in the root namespace, on the bridge
            from topologies.nodes import run_root

            run_root(["sh", "-c", f"echo {mask} > /sys/class/net/{ingress}/queues/rx-0/rps_cpus"])
            self._pin(_pidof("ovs-vswitchd"), DUT_CPU)
        else:
            self.run(self.dut, argv)
            if self.mode == "reference":
                self._pin(self.gateway.proc.pid, DUT_CPU)
        self.steering = (
            f"generator on CPU {GEN_CPU}; the DUT's receive processing (RPS on {ingress}) and daemon on CPU {DUT_CPU}"
        )

    def _pin(self, pid: int | None, cpu: int | None) -> None:
        """Pin every thread of ``pid`` to ``cpu`` (None: every CPU again)."""
        if pid is None:
            return
        cpus = str(cpu) if cpu is not None else f"0-{(os.cpu_count() or 1) - 1}"
        subprocess.run(["taskset", "-a", "-p", "-c", cpus, str(pid)], capture_output=True, check=False)

    def _flush_neighbours(self) -> None:
        for node in (self.gen, self.sink):
            self.run(node, ["ip", "neigh", "flush", "all"], check=False)


@contextlib.contextmanager
def raised(bench: Bench) -> Iterator[None]:
    """While a bench runs: the machine-wide settings it needs raised (``BENCH_SYSCTLS``, each one
    value for every namespace), restored after, and the dut node handed back as the lab left it."""
    saved = {key: (SYSCTL / key).read_text().strip() for key in BENCH_SYSCTLS}
    try:
        for key, value in BENCH_SYSCTLS.items():
            (SYSCTL / key).write_text(str(value))
        yield
    finally:
        for key, text in saved.items():
            (SYSCTL / key).write_text(text)
        bench.leave()


def _pidof(name: str) -> int | None:
    res = subprocess.run(["pidof", name], capture_output=True, text=True, check=False)
    return int(res.stdout.split()[0]) if res.returncode == 0 and res.stdout.split() else None


def summarize(trials: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the trials of one configuration, in a trial's own shape (the table's and
    the report's), with every trial kept and the generator-bound flag per traffic."""
    med = statistics.median
    out: dict[str, Any] = {"trials": trials}
    for flows in FLOWS:
        got = [t[flows] for t in trials]
        top = {k: med(g["max"][k] for g in got) for k in ("delivered_pps", "sent_pps")}
        out[flows] = {
            "max": top,
            "no_loss": {
                "pps": med(g["no_loss"]["pps"] for g in got),
                "core": corestat.median([g["no_loss"].get("core", {}) for g in got]),
            },
            "generator_bound": all(g["max"]["delivered_pps"] >= GENERATOR_BOUND * g["max"]["sent_pps"] for g in got),
        }
    out["latency"] = {}
    for load in LOADS:
        lat = [t["latency"][load] for t in trials if t["latency"][load]["replies"] >= 10]
        out["latency"][load] = {
            "p50_ms": med(x["p50_ms"] for x in lat) if lat else float("nan"),
            "p99_ms": med(x["p99_ms"] for x in lat) if lat else float("nan"),
            "replies": sum(x["replies"] for x in lat),
        }
    return out


def plot(results: dict[str, Any], path: Path, title: str = "") -> bool:
    """One box per configuration over its trials: no-loss rate and highest delivered rate."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib is not installed: no plot (pip install matplotlib)")
        return False
    configs = [c for c in CONFIGS if c in results]
    fig, axes = plt.subplots(2, len(FLOWS), figsize=(5 * len(FLOWS), 7), squeeze=False)
    for col, flows in enumerate(FLOWS):
        for row, (label, get) in enumerate(
            (("no loss", lambda t: t["no_loss"]["pps"]), ("highest delivered", lambda t: t["max"]["delivered_pps"]))
        ):
            ax = axes[row][col]
            data = [[get(t[flows]) / 1000 for t in results[c]["trials"]] for c in configs]
            ax.boxplot(data, showfliers=True)
            ax.set_xticks(range(1, len(configs) + 1), configs)
            ax.set_title(f"{flows} flows: {label} ({len(data[0])} trials)")
            ax.set_ylabel("kpps")
            ax.set_ylim(bottom=0)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return True


def _aligned(rows: list[tuple[str, ...]], right: range) -> str:
    """Rows as text columns, the columns in ``right`` aligned right (figures), the rest left."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(v.rjust(w) if i in right else v.ljust(w) for i, (v, w) in enumerate(zip(r, widths, strict=True)))
        for r in rows
    ).rstrip()


def table(results: dict[str, Any]) -> str:
    rows = [("config", "flows", "max kpps", "sent kpps", "no-loss kpps", "min-max", "p50 ms", "p99 ms", "")]
    for c in (c for c in CONFIGS if c in results):
        for flows in FLOWS:
            r = results[c][flows]
            lat = results[c]["latency"]["idle"]
            nls = [t[flows]["no_loss"]["pps"] / 1000 for t in results[c]["trials"]]
            rows.append(
                (
                    c,
                    flows,
                    f"{r['max']['delivered_pps'] / 1000:.1f}",
                    f"{r['max']['sent_pps'] / 1000:.1f}",
                    f"{r['no_loss']['pps'] / 1000:.1f}",
                    f"{min(nls):.0f}-{max(nls):.0f}",
                    f"{lat['p50_ms']:.3f}",
                    f"{lat['p99_ms']:.3f}",
                    "generator-bound" if r["generator_bound"] else "",
                )
            )
    return _aligned(rows, range(2, 8))


def latency_table(results: dict[str, Any]) -> str:
    """p50 / p99 round-trip time (ms) per configuration, idle and at each share of its no-loss rate."""
    rows = [("config", *(f"{load} p50 / p99" for load in LOADS))]
    for c in (c for c in CONFIGS if c in results):
        lat = results[c]["latency"]
        rows.append((c, *(f"{lat[load]['p50_ms']:.3f} / {lat[load]['p99_ms']:.3f}" for load in LOADS)))
    return _aligned(rows, range(1, len(rows[0])))


def core_table(results: dict[str, Any]) -> str:
    """What a frame cost each configuration's core at its no-loss rate (busy microseconds per
    frame), and how busy the core was (corestat.py)."""
    rows = [("config", "flows", "us/frame", "busy")]
    for c in (c for c in CONFIGS if c in results):
        for flows in FLOWS:
            rows.append((c, flows, *corestat.cells(results[c][flows]["no_loss"].get("core", {}))))
    return _aligned(rows, range(2, len(rows[0])))


def ratios(results: dict[str, Any]) -> list[str]:
    """Medians' ratios against the kernel and between the reference's two configurations; and
    cached/uncached in the worst trial (trials paired by round)."""
    out = []
    have = [c for c in CONFIGS if c in results]
    for flows in FLOWS:
        for metric, get in (("max", lambda r: r["max"]["delivered_pps"]), ("no-loss", lambda r: r["no_loss"]["pps"])):
            parts = []
            if "uncached" in have and "cached" in have:
                u, c = get(results["uncached"][flows]), get(results["cached"][flows])
                paired = [
                    get(tc[flows]) / get(tu[flows]) if get(tu[flows]) else float("inf")
                    for tu, tc in zip(results["uncached"]["trials"], results["cached"]["trials"], strict=True)
                ]
                parts.append(f"cached/uncached = {c / u if u else float('inf'):5.2f}x (worst trial {min(paired):.2f}x)")
            if "kernel" in have:
                k = get(results["kernel"][flows])
                parts += [
                    f"{x}/kernel = {get(results[x][flows]) / k if k else float('inf'):5.2f}x"
                    for x in have
                    if x != "kernel"
                ]
            if "cached" in have and "ovs" in have:
                o = get(results["ovs"][flows])
                parts.append(f"cached/ovs = {get(results['cached'][flows]) / o if o else float('inf'):5.2f}x")
            if parts:
                out.append(f"{flows:4} flows {metric:7}: " + "   ".join(parts))
    return out


def main(
    seconds: float = 2.0,
    loss: float = 0.001,
    steps: int = 6,
    out_dir: str = "results",
    io: str = "block",
    path: str = "nat",
    duts: list[str] | None = None,
    trials: int = 5,
) -> int:
    import topologies
    from topologies import bench as bench_topology

    # What the dut does (routing alone, or routing + SNAT through an SR) and, for (b)
    # and (c), the gateway's port I/O: plain sockets or PACKET_MMAP rings.
    plan = bench_topology.plan_for(path, io)
    configs = [c for c in CONFIGS if any(c in DUT_CONFIGS[d] for d in (duts or DUT_CONFIGS))]
    if plan.get("family") == 6 and "ovs" in configs:
        configs.remove("ovs")
        log("ovs: n/a on an IPv6 path (the ovs DUT's driver carries IPv4 only)")
    log(f"path {path}: {bench_topology.PATHS[path]}; gateway io: {io}; {trials} trial(s) of {', '.join(configs)}")

    outp = Path(out_dir)
    outp.mkdir(parents=True, exist_ok=True)
    per_config: dict[str, list[dict[str, Any]]] = {c: [] for c in configs}
    results: dict[str, Any] = {}
    t0 = time.monotonic()
    # With the DUT's receive work on its own CPU (RPS), the generator's frames wait in that
    # CPU's backlog.  trafgen sends a rate-limited trial in bursts of thousands of frames:
    # the default backlog (5,000) drops them even where the DUT keeps up, and the frames
    # queued there hold the sender's socket memory until trafgen's send fails (EAGAIN).
    # Both settings are one value for every namespace: raised while the bench runs, restored after.
    with topologies.start("bench", dut="reference", plan=plan) as lab:
        bench = Bench(lab, seconds, loss, steps)
        with raised(bench):
            for n in range(trials):
                for config in configs:
                    log(f"trial {n + 1}/{trials}: {config}")
                    bench.configure(config)
                    per_config[config].append(bench.measure(config))
                    if config == "cached":
                        results["cache_counters"] = bench.gateway.show("cache")["counters"]
    for config in configs:
        results[config] = summarize(per_config[config])
    meta = {
        "seconds_per_trial": seconds,
        "loss_tolerance": loss,
        "search_steps": steps,
        "trials": trials,
        "frame": "64-byte UDP (60 on the veth, no FCS)",
        "generator": f"trafgen --cpus 1, pinned to CPU {GEN_CPU}",
        "steering": bench.steering,
        "sysctls_while_running": {k.replace("/", "."): v for k, v in BENCH_SYSCTLS.items()},
        "duration_s": round(time.monotonic() - t0, 1),
        "gateway_io": io,
        "path": path,
        "path_description": bench_topology.PATHS[path],
        "flows": {"many": 1000, "few": 4},
        "configs": configs,
        "reference_modules": native.describe(),
    }
    report = {"meta": meta, "results": results}
    (outp / "bench-forwarding.json").write_text(json.dumps(report, indent=2))
    plotted = plot(results, outp / "bench-forwarding.png", f"path {path}, gateway io {io}, {trials} trials")
    print()
    print(f"path {path}: {bench_topology.PATHS[path]}; gateway io: {io}; reference: {native.describe()}")
    print(f"steering: {bench.steering}")
    print(table(results))
    print()
    print(
        f"medians of {trials} trial(s); no loss = at most {loss:.1%} of sent frames lost and {QUEUED:.0%} still "
        f"queued at the end of the trial; {seconds:.0f} s per trial; p50/p99 = ping through the dut, idle; "
        f"generator-bound = delivered at least {GENERATOR_BOUND:.0%} of what the generator sent at full speed "
        "(the DUT's own limit is higher)"
    )
    print()
    print("round-trip time through the dut (ms), idle and beside many-flow traffic at a share of its no-loss rate:")
    print(latency_table(results))
    print()
    print(f"the DUT's core (CPU {DUT_CPU}) at its no-loss rate: busy microseconds per frame (corestat.py):")
    print(core_table(results))
    print()
    print(f"written: {outp / 'bench-forwarding.json'}" + (f", {outp / 'bench-forwarding.png'}" if plotted else ""))
    print()
    for line in ratios(results):
        print(line)
    return 0
