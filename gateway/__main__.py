"""``python -m gateway --config FILE``: run the reference gateway datapath."""

from __future__ import annotations

import argparse
import json
import sys

from gateway import config, gcpolicy, loop
from gateway.control.server import ControlServer
from gateway.datapath import Datapath
from gateway.fpm import FPM_PORT, FpmError, FpmServer, listen_in
from gateway.headers import ip_str
from gateway.io import frr, kernel_side
from gateway.io.netdev import PortError
from gateway.supervisor import Supervisor


def start_routing(dp: Datapath) -> None:
    """For each SR with BGP: an FPM listener in its TLR namespace, then FRR there."""
    kc = dp.cfg.kernel
    if kc is None:
        return
    for bgp in kc.bgp:
        sr = dp.model.router(bgp.router, "sr")
        netns = f"{dp.cfg.node}-tlr{sr.tlr_id}"
        server = FpmServer(dp.model, sr, listen_in(netns, FPM_PORT))
        dp.listeners.append(server)
        uplink = next(p for p in sr.ports if p.instance is not None)
        frr.start(netns, frr.render(bgp, netns, ip_str(uplink.ip), FPM_PORT))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m gateway", description="edgelab reference gateway datapath")
    ap.add_argument("--config", required=True, help="YAML config of this gateway node")
    ap.add_argument("--check", action="store_true", help="validate the config and exit")
    args = ap.parse_args(argv)
    try:
        cfg = config.load(args.config)
        dp = Datapath(cfg)
    except config.ConfigError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    if args.check:
        print(
            f"gateway: {args.config}: config is valid ({len(cfg.ports)} ports, {len(cfg.instances)} instances, {len(cfg.routers)} routers)"
        )
        return 0
    try:
        dp.open_ports()
        control = ControlServer(dp, cfg.control_socket)
        dp.listeners.append(control)
        ha_socket = next((rc.ha.socket for rc in cfg.routers if rc.ha is not None), None)
        if ha_socket:
            dp.open_ipc(ha_socket)
        if cfg.evi is not None:
            dp.open_ipc(cfg.evi.socket)  # the EVI control process (gateway/evi/agent.py)
        if cfg.services:
            dp.open_services()  # the data-plane services (gateway/io/service.py) ...
            supervisor = Supervisor(cfg.services, args.config)
            dp.listeners.append(supervisor)
            supervisor.start()  # ... whose processes run with the daemon
        if dp.kernel is not None and dp.kernel.tap is not None:
            kernel_side.setup(cfg.node, dp.kernel.tap.ifname, dp.kernel.namespaces())
            start_routing(dp)
    except (PortError, OSError, kernel_side.KernelSideError, frr.FrrError, FpmError) as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        for listener in dp.listeners:
            listener.close()
        dp.close_ports()
        return 1
    # Without preemption an SR starts by claiming nothing: a peer may hold its addresses.
    # Its HA agent claims them once it knows (gateway/ha/agent.py).
    for rc in cfg.routers:
        if rc.ha is not None and not rc.ha.preempt:
            dp.ownership.yield_all(rc.name)
    dp.ownership.announce()
    dp.on_hup = lambda: _reload_on_hup(control)
    print(f"gateway: {cfg.node} running, control socket {cfg.control_socket}", flush=True)
    try:
        gcpolicy.reference_counting_only()
        loop.run(dp)
    finally:
        found = gcpolicy.cycles(free=False)
        if found["unreachable"]:
            print(
                f"gateway: {found['unreachable']} objects in reference cycles were never freed (a leak): {found['kinds']}"
            )
        for listener in dp.listeners:
            listener.close()
        dp.close_ports()
        if dp.kernel is not None:
            kernel_side.teardown(cfg.node, dp.kernel.namespaces())  # also stops FRR there
    print(f"gateway: {cfg.node} stopped", flush=True)
    return 0


def _reload_on_hup(control: ControlServer) -> None:
    """SIGHUP: the config file read again, as the ``reload`` command does; the log says how it went."""
    answer = control.control.handle({"cmd": "reload"})
    if answer["ok"]:
        print(f"gateway: config reloaded: {json.dumps(answer['result']['changed'])}", flush=True)
    else:
        print(f"gateway: {answer['error']}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
