"""``edgelab bench topology``: how long the ``scale`` topology takes to come up and go down
at a size, whether its tenants reach the provider through their own routers once up, and
whether anything is left behind after.

Method: ``topologies.start("scale", plan=plan_for(tenants, hosts, edges), dut=DUT)``, timed
from the call to the lab's return (Mininet hosts, switches and links, VLAN ports, the
gateway software answering); then the first host of the first, middle and last tenant pings
ext1 (2 routed hops: its DR and SR) and, with two hosts or more, its neighbour (switched);
then the teardown, timed; then a look for residue: interfaces named after the topology's
nodes in the root namespace, its OVS bridges, gateway processes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def residue(plan: dict[str, Any]) -> list[str]:
    """What of ``plan``'s topology is still on the machine."""
    left: list[str] = []
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    prefixes = tuple(f"{n}-" for n in [*plan["hosts"], *plan["gateways"], *plan["switches"]])
    for line in links.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name.startswith(prefixes):
            left.append(f"interface {name}")
    bridges = subprocess.run(["ovs-vsctl", "list-br"], capture_output=True, text=True).stdout.split()
    left += [f"bridge {b}" for b in bridges if b in plan["switches"] or b.startswith(tuple(plan["gateways"]))]
    # the gateway daemons any DUT driver starts (reference, its agents, the ovs app, Linux's daemons)
    pattern = r"-m gateway|suites\.duts\.ovsken|keepalived|conntrackd|dhcrelay"
    procs = subprocess.run(["pgrep", "-af", pattern], capture_output=True, text=True).stdout
    left += [f"process {p}" for p in procs.splitlines() if p.strip()]
    return left


def main(tenants: int = 64, hosts: int = 4, edges: int = 1, dut: str = "reference", out_dir: str = "results") -> int:
    import topologies
    from suites.lib import traffic
    from topologies.scale import plan_for
    from topologies.scale.plan import EXT1, host_name

    plan = plan_for(tenants, hosts, edges)
    log(f"scale: {tenants} tenants x {hosts} hosts on {edges} edge(s), DUT {dut}: starting")
    checks: list[dict[str, Any]] = []
    t0 = time.monotonic()
    lab_cm = topologies.start("scale", dut=dut, plan=plan)
    lab = lab_cm.__enter__()
    up_s = time.monotonic() - t0
    log(f"up in {up_s:.1f} s; checking reachability")
    try:
        for i in sorted({0, tenants // 2, tenants - 1}):
            src = lab.host(host_name(i, 0))
            r = traffic.ping(src, EXT1, count=2, wait=1.0)
            checks.append(
                {"from": host_name(i, 0), "to": "ext1", "ok": r.ok and all(t == 62 for t in r.ttls), "ttls": r.ttls}
            )
            if hosts >= 2:
                peer = plan["hosts"][host_name(i, 1)]["ip"].split("/")[0]
                r = traffic.ping(src, peer, count=2, wait=1.0)
                checks.append(
                    {
                        "from": host_name(i, 0),
                        "to": host_name(i, 1),
                        "ok": r.ok and all(t == 64 for t in r.ttls),
                        "ttls": r.ttls,
                    }
                )
    finally:
        t1 = time.monotonic()
        lab_cm.__exit__(None, None, None)
        down_s = time.monotonic() - t1
    left = residue(plan)
    ok = all(c["ok"] for c in checks)
    report = {
        "params": plan["params"],
        "dut": dut,
        "hosts_total": len(plan["hosts"]),
        "up_s": round(up_s, 1),
        "down_s": round(down_s, 1),
        "checks": checks,
        "reachable": ok,
        "residue": left,
        "target_up_s": 60,
    }
    outp = Path(out_dir)
    outp.mkdir(parents=True, exist_ok=True)
    (outp / "bench-topology.json").write_text(json.dumps(report, indent=2))
    print()
    print(f"scale: {tenants} tenants x {hosts} hosts on {edges} edge(s) ({len(plan['hosts'])} hosts), DUT {dut}")
    print(f"up   {up_s:6.1f} s (target < 60 s for 64 x 4)")
    print(f"down {down_s:6.1f} s")
    for c in checks:
        print(f"  {c['from']:>8} -> {c['to']:<8} {'ok' if c['ok'] else 'FAILED'} (ttls {c['ttls']})")
    print(f"residue: {', '.join(left) if left else 'none'}")
    print(f"written: {outp / 'bench-topology.json'}")
    return 0 if ok and not left else 1
