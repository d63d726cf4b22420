"""A running topology: Mininet network + gateway software + teardown.

Who does what: the topology module declares nodes and links; :class:`Lab`
builds and starts the Mininet network, applies what Mininet cannot declare
(OVS VLAN access/trunk ports, offloads off, host routes), asks the DUT driver
to start the gateway software on each gateway node and waits until it
answers; ``stop()`` undoes all of it in reverse and never raises halfway, so
nothing is left behind when a test fails.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from mininet.log import setLogLevel
from mininet.net import Mininet

from topologies import TopologyError
from topologies.nodes import TestHost, UserOVS, quiet_interfaces, run, run_root

RUN_ROOT = Path("/run/edgelab")


def _require_root_and_ovs() -> None:
    if os.geteuid() != 0:
        raise TopologyError("starting a topology needs root (network namespaces, OVS); run it with sudo or as root")
    for tool in ("ovs-vsctl", "ethtool", "ip", "mnexec"):
        if shutil.which(tool) is None:
            raise TopologyError(f"'{tool}' is not installed; run 'make bootstrap' (ci/bootstrap.sh) first")
    probe = run_root(["ovs-vsctl", "--timeout=5", "show"], check=False)
    if probe.returncode != 0:
        raise TopologyError(
            "Open vSwitch is not running; start it with '/usr/share/openvswitch/scripts/ovs-ctl start' "
            "(make bootstrap does)"
        )


def clean_leftovers(mod: ModuleType) -> list[str]:
    """Remove bridges and root-namespace interfaces a dead run of this topology left behind."""
    removed = []
    for sw in mod.PLAN.get("switches", {}):
        if run_root(["ovs-vsctl", "--timeout=10", "br-exists", sw], check=False).returncode == 0:
            run_root(["ovs-vsctl", "--timeout=10", "--if-exists", "del-br", sw], check=False)
            removed.append(f"bridge {sw}")
        links = run_root(["ip", "-o", "link", "show"], check=False).stdout
        for line in links.splitlines():
            ifname = line.split(":")[1].strip().split("@")[0]
            if ifname.startswith(f"{sw}-eth"):
                run_root(["ip", "link", "del", ifname], check=False)
                removed.append(f"interface {ifname}")
    return removed


class Lab:
    def __init__(
        self,
        mod: ModuleType,
        dut: str | type = "reference",
        quiet: bool = True,
        log: Any = None,
        plan: dict[str, Any] | None = None,
    ) -> None:
        from topologies import dut_driver

        self.module = mod
        # A variant of the topology's plan (same nodes and links, other settings) may be given.
        self.plan: dict[str, Any] = plan if plan is not None else mod.PLAN
        self.name: str = mod.NAME
        driver_cls = dut_driver(dut)
        self.driver = driver_cls(self)
        self.dut: str = driver_cls.name
        self.net: Mininet | None = None
        self.rundir: Path | None = None
        self.log = log or (lambda msg: print(f"[{self.name}] {msg}", file=sys.stderr, flush=True))
        self._quiet = quiet
        self._gateways: dict[str, Any] = {}

    # -- bring up ----------------------------------------------------------------------
    def start(self) -> None:
        _require_root_and_ovs()
        setLogLevel("warning" if self._quiet else "info")
        leftovers = clean_leftovers(self.module)
        if leftovers:
            self.log(f"removed leftovers of an earlier run: {', '.join(leftovers)}")
        RUN_ROOT.mkdir(parents=True, exist_ok=True)
        self.rundir = Path(tempfile.mkdtemp(prefix=f"{self.name}-", dir=RUN_ROOT))
        t0 = time.monotonic()
        topo = self.module.TOPO(plan=self.plan, gateway_cls=self.driver.node_cls, host_cls=TestHost)
        self.net = Mininet(
            topo=topo,
            switch=UserOVS,
            controller=None,
            autoSetMacs=False,
            autoStaticArp=False,
            build=True,
            waitConnected=False,
        )
        self.net.start()
        for node in self.net.hosts:
            quiet_interfaces(node)
        for sw in self.net.switches:
            quiet_interfaces(sw)
        self._configure_switches()
        self._configure_hosts()
        for gw in self.plan.get("gateways", {}):
            self.log(f"starting {self.dut} gateway on {gw}")
            self._gateways[gw] = self.driver.start(gw)
        self.log(f"up in {time.monotonic() - t0:.1f} s (run dir {self.rundir})")

    def _configure_switches(self) -> None:
        for sw_name, spec in self.plan.get("switches", {}).items():
            sw = self.net.get(sw_name)  # type: ignore[union-attr]
            for peer, vlan in spec.get("access", {}).items():
                run_root(["ovs-vsctl", "set", "port", self.intf_towards(sw_name, peer), f"tag={vlan}"])
            for peer in spec.get("trunks", []):
                # An empty trunks list means every VLAN: clear any restriction.
                run_root(["ovs-vsctl", "clear", "port", self.intf_towards(sw_name, peer), "trunks", "tag"])
            del sw

    def _configure_hosts(self) -> None:
        for name, h in self.plan.get("hosts", {}).items():
            host = self.net.get(name)  # type: ignore[union-attr]
            if h.get("router"):
                run(host, ["sysctl", "-qw", "net.ipv4.ip_forward=1"])
            if h.get("ip6"):
                self._configure_ipv6(name, h)
            for prefix, via in h.get("routes", {}).items():
                run(host, ["ip", "route", "replace", prefix, "via", via])
        for link in self.plan.get("links", []):
            a, b = link["between"]
            if "mtu" in link:
                run(self.net.get(a), ["ip", "link", "set", self.intf_towards(a, b), "mtu", str(link["mtu"])])  # type: ignore[union-attr]
                run(self.net.get(b), ["ip", "link", "set", self.intf_towards(b, a), "mtu", str(link["mtu"])])  # type: ignore[union-attr]
        for name in self.plan.get("probes", {}):
            probe = self.net.get(name)  # type: ignore[union-attr]
            run(probe, ["ip", "addr", "flush", "dev", probe.defaultIntf().name])

    def _configure_ipv6(self, name: str, h: dict[str, Any]) -> None:
        """A dual-stack host: IPv6 back on where the plan gives it an address (``ip6``; a router's
        second link ``ip6_2``).  Addresses skip duplicate address detection (the plan's are
        unique); a host without ``gw6`` learns its default router from router advertisements;
        ``lo6`` is an address on its loopback."""
        host = self.net.get(name)  # type: ignore[union-attr]
        intfs = [i for i in host.intfList() if i.name != "lo"]
        addrs = [(intfs[0].name, h["ip6"])] + ([(intfs[1].name, h["ip6_2"])] if h.get("ip6_2") else [])
        conf = ["net.ipv6.conf.all.disable_ipv6=0", "net.ipv6.conf.default.disable_ipv6=0"]
        if h.get("router"):
            conf.append("net.ipv6.conf.all.forwarding=1")
        run(host, ["sysctl", "-qw", *conf])
        for ifname, addr in addrs:
            run(host, ["sysctl", "-qw", f"net.ipv6.conf.{ifname}.disable_ipv6=0", f"net.ipv6.conf.{ifname}.accept_dad=0",
                       f"net.ipv6.conf.{ifname}.accept_ra={0 if h.get('router') or h.get('gw6') else 1}"])  # fmt: skip
            run(host, ["ip", "-6", "addr", "add", addr, "dev", ifname, "nodad"])
        if h.get("gw6"):
            run(host, ["ip", "-6", "route", "replace", "default", "via", h["gw6"]])
        if h.get("lo6"):  # an address to reach behind a router (a provider's announced prefix)
            run(host, ["sysctl", "-qw", "net.ipv6.conf.lo.disable_ipv6=0"])
            run(host, ["ip", "-6", "addr", "add", h["lo6"], "dev", "lo", "nodad"])

    def stop_gateway(self, name: str) -> None:
        """Stop the gateway software on ``name`` (the node and its links stay)."""
        if name in self._gateways:
            self.driver.stop(name)
            del self._gateways[name]

    def start_gateway(self, name: str) -> Any:
        """Start the gateway software on ``name``; one already running there is stopped first
        (two daemons on the same ports would each forward every frame)."""
        self.stop_gateway(name)
        self._gateways[name] = self.driver.start(name)
        return self._gateways[name]

    # -- accessors ---------------------------------------------------------------------
    def host(self, name: str) -> Any:
        if self.net is None or name not in self.net:
            raise TopologyError(f"no node {name!r} in {self.name}")
        return self.net.get(name)

    def gateway(self, name: str) -> Any:
        if name not in self._gateways:
            raise TopologyError(f"no gateway {name!r} in {self.name}; gateways: {', '.join(self._gateways)}")
        return self._gateways[name]

    def intf_towards(self, node: str, peer: str) -> str:
        """Name of ``node``'s interface on the link to ``peer``."""
        a, b = self.net.get(node), self.net.get(peer)  # type: ignore[union-attr]
        for link in self.net.linksBetween(a, b):  # type: ignore[union-attr]
            return link.intf1.name if link.intf1.node is a else link.intf2.name
        raise TopologyError(f"no link between {node} and {peer}")

    # -- tear down ---------------------------------------------------------------------
    def stop(self) -> None:
        """Undo everything; each step runs even if an earlier one failed."""
        for gw in list(self._gateways):
            try:
                self.driver.stop(gw)
            except Exception as exc:  # noqa: BLE001
                self.log(f"stopping gateway {gw}: {exc}")
        self._gateways.clear()
        if self.net is not None:
            try:
                self.net.stop()
            except Exception as exc:  # noqa: BLE001
                self.log(f"stopping Mininet: {exc}")
            self.net = None
        try:
            clean_leftovers(self.module)
        except Exception as exc:  # noqa: BLE001
            self.log(f"final cleanup: {exc}")
        if self.rundir is not None and not os.environ.get("EDGELAB_KEEP_RUNDIR"):
            shutil.rmtree(self.rundir, ignore_errors=True)
            self.rundir = None
