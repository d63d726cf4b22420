"""``edgelab``: one command for the testbed.

    edgelab topologies                      list topologies
    edgelab plan TOPOLOGY                   print a topology's address plan (JSON)
    edgelab up TOPOLOGY [--dut NAME]        start it and open the Mininet CLI; tear down on exit
    edgelab clean                           remove what a crashed run left behind
    edgelab bench forwarding [--dut D --trials N]  kernel, reference without/with cache, ovs (table, JSON, box plots)
    edgelab bench connections [--trials N]  new TCP connections/s through SNAT + firewall: kernel, reference, ovs
    edgelab bench pipeline                  per-packet cost of slow path and cache hit, in process
    edgelab bench topology [--tenants T --hosts H --edges E]  the scale topology: up/down time, reachability, residue
    edgelab bench failover [--rounds N] [--dut reference|linux]  SR failover: detection, loss window, a connection (edge-ha)
    edgelab bench services                  the service transport: round trip and rate through the DHCP relay
    edgelab bench routes [--sizes N,N]      FPM -> FIB: install rate, memory, lookup cost as the table grows
    edgelab bench scale                     lookup cost and memory of sessions, rules, routes, MACs, tenant routers
    edgelab bench evi [--rounds N]          EVI across two sites: cached vs uncached, forwarder takeover (evi-dci)
    edgelab report [RUN_DIR ...] [--out D]  comparison page of conformance runs (results/*/ by default)
    edgelab mutants [--only F,F] [--list]    seeded faults through the black-box suites: which tests catch them
    edgelab fuzz [--budget N] [--seed S]    the reference gateway fed garbage in process (frames, control, ipc, config)
    edgelab gw NODE show WHAT [--json]      ask a running gateway (fib, mac, arp, counters, drops, ...)
    edgelab gw NODE trace start [N] | show | clear
    edgelab gw NODE route add|del ROUTER PREFIX [VIA] [--half dr|sr]
    edgelab gw NODE request '{"cmd": "firewall", "action": "add", ...}'   any control request

A gateway's control socket is found under /run/edgelab (a running topology
keeps it in its run directory); ``--socket PATH`` names one directly.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

RUN_ROOT = Path("/run/edgelab")


class CliError(Exception):
    pass


def find_socket(node: str, explicit: str | None = None) -> str:
    if explicit:
        return explicit
    candidates = sorted(RUN_ROOT.glob(f"*/{node}.sock")) + sorted(RUN_ROOT.glob(f"{node}.sock"))
    if not candidates:
        raise CliError(
            f"no control socket for gateway {node!r} under {RUN_ROOT}; is a topology running? (edgelab up edge-basic)"
        )
    if len(candidates) > 1:
        raise CliError(
            f"several gateways named {node!r} are running: {', '.join(map(str, candidates))}; pick one with --socket"
        )
    return str(candidates[0])


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(empty)"
    cols = list(dict.fromkeys(k for row in rows for k in row))
    cells = [[("-" if row.get(c) is None else str(row.get(c))) for c in cols] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def render(what: str, result: Any) -> str:
    if what == "traces" or (isinstance(result, list) and result and "steps" in result[0]):
        out = []
        for t in result:
            out.append(f"{t['port']} vlan {t['vlan']}: {t['packet']}")
            out += [f"    {s}" for s in t["steps"]]
            out.append(f"    => {t['verdict']}")
        return "\n".join(out) or "(no traces)"
    if isinstance(result, list) and all(isinstance(r, dict) for r in result):
        flat = [{k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in r.items()} for r in result]
        return _table(flat)
    if what == "drops" and isinstance(result, dict):
        return _table([{"drop": k, "count": v} for k, v in sorted(result.items())]) if result else "(no drops)"
    return json.dumps(result, indent=2)


def cmd_gw(args: argparse.Namespace) -> int:
    from gateway.control.client import ControlClient, ControlError

    client = ControlClient(find_socket(args.node, args.socket))
    words = args.words
    if not words:
        raise CliError("say what to do: show WHAT | trace start|show|clear | route add|del ...")
    verb, rest = words[0], words[1:]
    try:
        if verb == "show":
            what = rest[0] if rest else "summary"
            result = client.show(what)
        elif verb == "trace":
            action = rest[0] if rest else "show"
            req: dict[str, Any] = {"cmd": "trace", "action": action}
            if action == "start" and len(rest) > 1:
                req["count"] = _int(rest[1], "trace count")
            what = "traces" if action == "show" else action
            result = client.request(req)
        elif verb == "route":
            if len(rest) < 3:
                raise CliError("usage: route add|del ROUTER PREFIX [VIA] [--half dr|sr]")
            req = {"cmd": "route", "action": rest[0], "router": rest[1], "prefix": rest[2], "half": args.half}
            if len(rest) > 3:
                req["via"] = rest[3]
            what, result = "route", client.request(req)
        elif verb == "request":
            if len(rest) != 1:
                raise CliError("usage: request 'JSON'")
            try:
                req = json.loads(rest[0])
            except ValueError as exc:
                raise CliError(f"the request is not valid JSON: {exc}") from None
            what, result = "request", client.request(req)
        else:
            raise CliError(f"unknown gateway command {verb!r}; use show, trace, route or request")
    except ControlError as exc:
        raise CliError(str(exc)) from None
    print(json.dumps(result, indent=2) if args.json else render(what, result))
    return 0


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise CliError(f"{what} must be an integer, got {text!r}") from None


def cmd_topologies(args: argparse.Namespace) -> int:
    import topologies

    for name in topologies.names():
        print(f"{name:14} {topologies.plan(name).get('description', '')}")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    import topologies

    print(json.dumps(topologies.plan(args.topology), indent=2))
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from mininet.cli import CLI

    import topologies

    with topologies.start(args.topology, dut=args.dut, quiet=False) as lab:
        # Control planes (BFD, EVI discovery and election) converge before the prompt.
        import time

        deadline = time.monotonic() + 30
        names = list(lab.plan.get("gateways", {}))
        while not all(lab.gateway(g).settled() for g in names) and time.monotonic() < deadline:
            time.sleep(0.2)
        unsettled = [g for g in names if not lab.gateway(g).settled()]
        if unsettled:
            print(f"not settled after 30 s (its log is in {lab.rundir}): {', '.join(unsettled)}", file=sys.stderr)
        tries = "; ".join(lab.plan.get("try", []))
        print(f"\n{args.topology} is up with the {args.dut} gateway." + (f" Try: {tries}" if tries else ""))
        for gw in lab.plan.get("gateways", {}):
            print(f"  in another shell: edgelab gw {gw} show summary")
        print("  'exit' or Ctrl-D tears everything down.\n")
        CLI(lab.net)
    return 0


def stop_processes(pattern: str, what: str) -> list[str]:
    """Stop the processes whose command line matches ``pattern`` (not this one)."""
    pids = subprocess.run(["pgrep", "-f", "--", pattern], capture_output=True, text=True).stdout.split()
    stopped = []
    for pid in pids:
        if int(pid) != os.getpid() and subprocess.run(["kill", pid], capture_output=True).returncode == 0:
            stopped.append(f"process {pid} ({what})")
    return stopped


def stop_orphan_gateways(run_root: str | None = None) -> list[str]:
    """Reference gateways still running from a lab's run directory whose run died (a test run
    killed before its teardown): the lab is gone, so nothing else would stop them."""
    from topologies.lab import RUN_ROOT

    return stop_processes(f"-m gateway --config {run_root or f'{RUN_ROOT}/'}", "a reference gateway of a dead run")


def cmd_clean(args: argparse.Namespace) -> int:
    import topologies
    from gateway.io import kernel_side
    from topologies.lab import clean_leftovers

    removed = stop_orphan_gateways()
    # A private Open vSwitch the EVI interop tests ran in a node (suites/lib/ovs_peer.py).
    removed += stop_processes("edgelab-ovs-peer-", "an EVI interop peer")
    for name in topologies.names():
        removed += clean_leftovers(topologies.module(name))
        for node in topologies.plan(name).get("gateways", {}):
            removed += kernel_side.teardown(node)  # a reference gateway's kernel transport
    print("removed: " + ", ".join(removed) if removed else "nothing to clean")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from edgelab import bench

    if args.what == "pipeline":
        return bench.pipeline_main(runs=args.runs, out_dir=args.out)
    if args.what == "failover":
        duts = args.dut or ["reference"]
        for dut in duts:
            if dut == "ovs":
                raise CliError("bench failover: the ovs DUT has no HA; choose --dut reference or --dut linux")
        return max(
            bench.failover_main(rounds=args.rounds, out_dir=args.out, dut=dut, bfd_ms=args.bfd_ms, loads=args.load_pps)
            for dut in duts
        )
    if args.what == "services":
        from edgelab import bench_services

        return bench_services.main()
    if args.what == "connections":
        from edgelab import bench_connections

        return bench_connections.main(
            seconds=args.seconds, loss=args.loss, steps=args.steps, trials=args.trials, out_dir=args.out
        )
    if args.what == "topology":
        from edgelab import bench_topology

        dut = (args.dut or ["reference"])[0]
        return bench_topology.main(tenants=args.tenants, hosts=args.hosts, edges=args.edges, dut=dut, out_dir=args.out)
    if args.what == "scale":
        if args.wire:
            from edgelab import bench_scale_wire

            return bench_scale_wire.main(out_dir=args.out, seconds=args.seconds, steps=args.steps)
        from edgelab import bench_scale

        return bench_scale.main(out_dir=args.out)
    if args.what == "routes":
        from edgelab import bench_routes

        return bench_routes.main(sizes=args.sizes, out_dir=args.out)
    if args.what == "evi":
        from edgelab import bench_evi

        return bench_evi.main(seconds=args.seconds, steps=args.steps, rounds=args.rounds, out_dir=args.out)
    from edgelab import bench_forwarding

    return bench_forwarding.main(
        seconds=args.seconds,
        loss=args.loss,
        steps=args.steps,
        out_dir=args.out,
        io=args.io,
        path=args.path,
        duts=args.dut,
        trials=args.trials,
    )


def cmd_report(args: argparse.Namespace) -> int:
    from ci import report_html

    out = Path(args.out)
    found = sorted((p.parent for p in out.glob("*/output.xml")), key=lambda d: (d.name != "reference", d.name))
    dirs = [Path(d) for d in args.runs] or found
    outputs = [d / "output.xml" for d in dirs]
    missing = [str(p) for p in outputs if not p.exists()]
    if missing or not outputs:
        raise CliError(
            f"no conformance run in {', '.join(missing) or str(out) + '/*/'}: run 'make compare' "
            "(or ci/conformance.sh --dut NAME --out results/NAME) first"
        )
    page = report_html.write(outputs, out)
    print(f"report: {page} and {out / 'results.json'} ({len(outputs)} DUTs: {', '.join(d.name for d in dirs)})")
    return 0


def cmd_fuzz(args: argparse.Namespace) -> int:
    from suites.lib import fuzz

    return fuzz.main(budget=args.budget, seed=args.seed, targets=args.target or None)


def cmd_mutants(args: argparse.Namespace) -> int:
    from edgelab import mutants

    try:
        return mutants.main(
            only=args.only,
            out_dir=args.out,
            bound=args.bound,
            require_caught=args.require_caught,
            list_only=args.list,
            rev=args.rev,
        )
    except mutants.MutantsError as exc:
        raise CliError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="edgelab", description="edge gateway testbed")
    sub = ap.add_subparsers(dest="command", required=True)
    gw = sub.add_parser("gw", help="talk to a running gateway")
    gw.add_argument("node")
    gw.add_argument("words", nargs="*")
    gw.add_argument("--json", action="store_true", help="raw JSON output")
    gw.add_argument("--socket", help="control socket path (default: found under /run/edgelab)")
    gw.add_argument("--half", default="dr", choices=("dr", "sr"), help="router half for route changes")
    gw.set_defaults(fn=cmd_gw)
    sub.add_parser("topologies", help="list topologies").set_defaults(fn=cmd_topologies)
    pl = sub.add_parser("plan", help="print a topology's address plan")
    pl.add_argument("topology")
    pl.set_defaults(fn=cmd_plan)
    up = sub.add_parser("up", help="start a topology and open the Mininet CLI")
    up.add_argument("topology")
    up.add_argument("--dut", default="reference")
    up.set_defaults(fn=cmd_up)
    sub.add_parser("clean", help="remove leftovers of crashed runs").set_defaults(fn=cmd_clean)
    be = sub.add_parser("bench", help="run a benchmark (prints figures and ratios)")
    be.add_argument(
        "what",
        choices=("forwarding", "connections", "pipeline", "failover", "evi", "services", "routes", "scale", "topology"),
    )
    be.add_argument("--tenants", type=int, default=64, help="topology: tenants of the scale topology")
    be.add_argument("--hosts", type=int, default=4, help="topology: hosts per tenant")
    be.add_argument("--edges", type=int, default=1, help="topology: edges the tenants are spread over")
    be.add_argument(
        "--sizes",
        type=lambda text: [int(x) for x in text.split(",")],
        default=None,
        help="routes: table sizes to measure, comma-separated (default 10000,100000,1000000)",
    )
    be.add_argument("--rounds", type=int, default=5, help="failovers to measure (failover, evi)")
    be.add_argument(
        "--bfd-ms",
        type=int,
        default=None,
        help="failover: the BFD interval (Linux: VRRP's advert interval) instead of the plan's 100 ms",
    )
    be.add_argument(
        "--load-pps",
        type=lambda text: [int(x) for x in text.split(",")],
        default=None,
        help="failover: first 10 s of UDP through the active SR at each of these rates (comma-separated), "
        "counting false takeovers",
    )
    be.add_argument(
        "--dut",
        action="append",
        choices=("linux", "reference", "ovs"),
        help="forwarding: the gateways to measure (repeatable; default all): linux = the kernel, "
        "reference = the reference gateway without and with its cache, ovs = Open vSwitch + the os-ken app; "
        "failover: reference (default) or linux (keepalived + conntrackd)",
    )
    be.add_argument("--trials", type=int, default=5, help="forwarding: measurements of each configuration (box plots)")
    be.add_argument("--runs", type=int, default=1, help="pipeline: runs to take the median of (all in the JSON)")
    be.add_argument("--seconds", type=float, default=2.0, help="length of one trial")
    be.add_argument("--loss", type=float, default=0.001, help="loss tolerated by the no-loss search (fraction)")
    be.add_argument("--steps", type=int, default=6, help="binary search steps for the no-loss rate")
    be.add_argument("--out", default="results", help="directory for the JSON and the plot")
    be.add_argument(
        "--wire",
        action="store_true",
        help="scale: the tables grown in the running gateway, measured on the wire (as root, ~10 min)",
    )
    be.add_argument(
        "--io",
        default="block",
        choices=("block", "socket"),
        help="gateway port I/O (block, the default: PACKET_MMAP rings; socket: one system call per frame each way)",
    )
    be.add_argument(
        "--path",
        default="nat",
        choices=("nat", "routed", "routed6"),
        help="forwarding: what the dut does to the traffic: route and SNAT through an SR (nat), route with the DR alone (routed), the same over IPv6 (routed6)",
    )
    be.set_defaults(fn=cmd_bench)
    rp = sub.add_parser("report", help="the comparison page of several conformance runs")
    rp.add_argument("runs", nargs="*", help="run directories (with output.xml); default: every OUT/*/")
    rp.add_argument("--out", default="results", help="where comparison.html and results.json go")
    rp.set_defaults(fn=cmd_report)
    mu = sub.add_parser("mutants", help="plant each seeded fault in a copy of the tree, run the black-box suites")
    mu.add_argument("--only", type=lambda text: text.split(","), help="these faults (comma-separated names)")
    mu.add_argument("--list", action="store_true", help="list the catalogue and exit")
    mu.add_argument("--out", default="results", help="directory for mutants/ (table, JSON, logs)")
    mu.add_argument("--bound", type=float, default=600.0, help="seconds a stage may run before it is killed")
    mu.add_argument("--rev", help="the suites of this git revision instead of the working tree")
    mu.add_argument("--require-caught", action="store_true", help="exit 1 if any fault escapes")
    mu.set_defaults(fn=cmd_mutants)
    fz = sub.add_parser("fuzz", help="feed the reference gateway garbage, in process, with a budget")
    fz.add_argument("--budget", type=int, default=200000, help="frames (the other targets get a quarter each)")
    fz.add_argument("--seed", type=int, help="replay a run (default: the time)")
    fz.add_argument("--target", action="append", choices=("frames", "control", "ipc", "config"))
    fz.set_defaults(fn=cmd_fuzz)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.fn(args))
    except CliError as exc:
        print(f"edgelab: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # errors the user can cause arrive here as our own exception types
        from topologies import TopologyError

        if isinstance(exc, TopologyError):
            print(f"edgelab: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
