"""Open vSwitch (userspace datapath) programmed by an os-ken app, as a DUT.

The plan's intent is rendered by ``ovs_render.render`` (its docstring says
how each part maps onto OpenFlow); this module moves the gateway node's
ports onto one bridge ``<node>-ovs`` in the root namespace (OVS's userspace
datapath opens them there), starts the app (``ovsken/``) as the bridge's
controller and undoes it all at stop.  Counters are OVS's own: the flows'
packet counts by cookie kind (drops by category; what removed flows had
counted, the app keeps) and the ports' transmit counts.  Not declared: HA
(an OVS bridge has no failover of its own), EVI, the services processes,
the reference gateway's internals, and ``fault.crash`` (the app dying leaves
the bridge forwarding on its flows, as a controller failure should).
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from suites.duts.base import DROP_CATEGORIES, DutDriver, GatewayHandle
from suites.duts.ovs_render import render
from suites.duts.ovsken.flows import DROP_KINDS
from topologies.nodes import OFFLOADS, GatewayNode, NodeCommandError, run, run_root, stop_process

START_TIMEOUT = 30.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OvsGateway(GatewayHandle):
    capabilities = frozenset(
        {
            "switching",
            "routing",
            "counters",
            "route.runtime",
            "nat.snat",
            "nat.dnat",
            "nat.one_to_one",
            "nat.hairpin",
            "nat.runtime",
            "fw.stateful",
            "fw.reject",
            "fw.runtime",
            "sec.arp",
            "alg.ftp",  # ct(alg=ftp): Open vSwitch's conntrack FTP helper, NAT included
        }
    )

    def __init__(self, driver: OvsDriver, name: str, spec: dict[str, Any], proc: subprocess.Popen[bytes]) -> None:
        self.driver = driver
        self.name = name
        self.spec = spec
        self.proc = proc

    # -- the app's control socket ------------------------------------------------------------
    def request(self, req: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(self.spec["control"])
            s.sendall((json.dumps(req) + "\n").encode())
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        answer: dict[str, Any] = json.loads(buf or b"{}")
        if not answer.get("ok"):
            raise NodeCommandError(f"{self.name}: the ovs app refused {req['op']}: {answer.get('error')}")
        if req["op"] != "status":
            # The app answers after the switch's barrier: the OpenFlow tables have the change.
            # The datapath's cached flows follow when the revalidators next run; until then a
            # running flow goes on with the old decision.  A change is in force when the call
            # returns, as with the other DUTs: wait for that round.
            run_root(["ovs-appctl", "revalidator/wait"], check=False)
        return answer

    def alive(self) -> bool:
        if self.proc.poll() is not None:
            return False
        try:
            return bool(self.request({"op": "status"}, timeout=2).get("connected"))
        except (OSError, ValueError, NodeCommandError):
            return False

    # -- counters ----------------------------------------------------------------------------
    def _flows(self) -> str:
        return run_root(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", self.spec["bridge"]]).stdout

    def counters(self) -> dict[str, Any]:
        by_kind: dict[int, int] = {}
        for line in self._flows().splitlines():
            m = re.search(r"cookie=0x([0-9a-f]+).*?n_packets=(\d+)", line)
            if m:
                kind = int(m.group(1), 16) >> 32
                by_kind[kind] = by_kind.get(kind, 0) + int(m.group(2))
        for kind, n in self.request({"op": "status"})["retired"].items():
            by_kind[int(kind)] = by_kind.get(int(kind), 0) + int(n)
        dropped = dict.fromkeys(DROP_CATEGORIES, 0)
        for kind, category in DROP_KINDS.items():
            dropped[category] += by_kind.get(kind, 0)
        ports = run_root(["ovs-ofctl", "-O", "OpenFlow13", "dump-ports", self.spec["bridge"]]).stdout
        forwarded = 0
        for block in ports.split("port ")[1:]:
            if block.lstrip().startswith('"LOCAL"') or block.lstrip().startswith("LOCAL"):
                continue
            m = re.search(r"tx pkts=(\d+)", block)
            forwarded += int(m.group(1)) if m else 0
        return {"forwarded": forwarded, "dropped": dropped}

    # -- runtime changes -------------------------------------------------------------------
    def add_route(self, prefix: str, via: str | list[str], router: str = "t1") -> None:
        self.request({"op": "add_route", "prefix": prefix, "via": via, "router": router})

    def del_route(self, prefix: str, router: str = "t1") -> None:
        self.request({"op": "del_route", "prefix": prefix, "router": router})

    def add_firewall_rule(self, rule: dict[str, Any], position: int | None = None, router: str = "t1") -> None:
        self.request({"op": "add_fw", "rule": rule, "position": position, "router": router})

    def del_firewall_rule(self, name: str, router: str = "t1") -> None:
        self.request({"op": "del_fw", "name": name, "router": router})

    def add_nat_rule(self, kind: str, rule: dict[str, Any], router: str = "t1") -> None:
        self.request({"op": "add_nat", "kind": kind, "rule": rule, "router": router})

    def del_nat_rule(self, name: str, router: str = "t1") -> None:
        self.request({"op": "del_nat", "name": name, "router": router})

    # -- evidence ----------------------------------------------------------------------------
    def logs(self) -> dict[str, str]:
        parts = []
        br = self.spec["bridge"]
        for argv in (
            ["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", br],
            ["ovs-appctl", "dpctl/dump-conntrack"],
            ["ovs-ofctl", "-O", "OpenFlow13", "dump-ports", br],
        ):
            res = run_root(argv, check=False)
            parts.append(f"$ {' '.join(argv)}\n{res.stdout}{res.stderr}")
        out = {f"{self.name}-ovs.txt": "\n".join(parts)}
        log = Path(self.spec["log"])
        if log.exists():
            out[log.name] = log.read_text()[-200_000:]
        return out


class OvsDriver(DutDriver):
    name = "ovs"
    node_cls = GatewayNode
    capabilities = OvsGateway.capabilities
    description = (
        "Open vSwitch 3.1 on the userspace datapath as the gateway, programmed by an os-ken app: (port, VLAN) -> "
        "instance by OpenFlow, MAC learning by the learn action, DR and SR as two routers (two hops), ARP, ping and "
        "ICMP errors answered by the app, ct(nat) SNAT/port forwards/1:1 and a ct_state firewall; no HA, no EVI"
    )

    def __init__(self, lab: Any) -> None:
        super().__init__(lab)
        self._running: dict[str, OvsGateway] = {}

    @classmethod
    def versions(cls) -> dict[str, str]:
        out = {}
        res = run_root(["ovs-vsctl", "--version"], check=False)
        first = (res.stdout.splitlines() or ["?"])[0].split()
        out["openvswitch"] = first[-1] if res.returncode == 0 and first else "?"
        try:
            from importlib.metadata import version

            out["os-ken"] = version("os-ken")
        except Exception:  # noqa: BLE001
            out["os-ken"] = "?"
        return out

    def start(self, gateway: str) -> OvsGateway:
        lab = self.lab
        spec = render(lab.plan, gateway)
        node = lab.host(gateway)
        br = spec["bridge"]
        of_port = _free_port()
        spec.update(
            of_port=of_port,
            control=str(lab.rundir / f"{gateway}-ovsken.sock"),
            log=str(lab.rundir / f"{gateway}-ovsken.log"),
            ofports={ifname: i + 1 for i, ifname in enumerate(spec["ifnames"])},
        )
        run_root(["ovs-vsctl", "--may-exist", "add-br", br, "--", "set", "bridge", br, "datapath_type=netdev",
                  "fail_mode=secure", "protocols=OpenFlow13", "other_config:disable-in-band=true"])  # fmt: skip
        for ifname, ofport in spec["ofports"].items():
            run(node, ["ip", "link", "set", ifname, "netns", "1"])
            run_root(["sysctl", "-qw", f"net.ipv6.conf.{ifname}.disable_ipv6=1"], check=False)
            run_root(["ethtool", "-K", ifname, *OFFLOADS], check=False)
            run_root(["ip", "link", "set", ifname, "up"])
            run_root(["ovs-vsctl", "add-port", br, ifname, "--", "set", "interface", ifname,
                      f"ofport_request={ofport}"])  # fmt: skip
        path = lab.rundir / f"{gateway}-ovsken.json"
        path.write_text(json.dumps(spec, indent=1))
        with open(spec["log"], "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-u", "-m", "suites.duts.ovsken", str(path)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=str(Path(__file__).resolve().parents[2]),
            )  # fmt: skip
        handle = OvsGateway(self, gateway, spec, proc)
        self._running[gateway] = handle
        # The bridge connects once the app listens (else Open vSwitch backs off for a second).
        deadline = time.monotonic() + START_TIMEOUT
        while not Path(spec["control"]).exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        run_root(["ovs-vsctl", "set-controller", br, f"tcp:127.0.0.1:{of_port}"])
        deadline = time.monotonic() + START_TIMEOUT
        while not handle.alive():
            if proc.poll() is not None or time.monotonic() > deadline:
                text = Path(spec["log"]).read_text()[-3000:] if Path(spec["log"]).exists() else ""
                raise RuntimeError(f"the ovs app on {gateway} did not take the bridge {br}: {text}")
            time.sleep(0.1)
        return handle

    def stop(self, gateway: str) -> None:
        """Undo it all; every step runs even if one failed."""
        handle = self._running.pop(gateway, None)
        if handle is None:
            return
        stop_process(handle.proc)
        node = self.lab.host(gateway)
        run_root(["ovs-vsctl", "--if-exists", "del-br", handle.spec["bridge"]], check=False)
        for ifname in handle.spec["ifnames"]:
            # Back into the node, where Mininet will look for it at teardown.
            run_root(["ip", "link", "set", ifname, "netns", str(node.pid)], check=False)
            run(node, ["ip", "link", "set", ifname, "up"], check=False)
