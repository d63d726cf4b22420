"""Mininet node roles of the testbed, and the helpers that run commands on nodes.

Who does what: topologies *declare* nodes and links (``Topo.build``); the
lab (``lab.py``) starts them and applies what Mininet cannot declare (VLAN
tags on OVS ports, offloads, routes); DUT drivers (``suites/duts``) start
the gateway software on a :class:`GatewayNode`.

Every command here has its exit status checked: a failed step raises
:class:`NodeCommandError` naming the node and the command.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from typing import Any

from mininet.node import Host, Node, OVSSwitch


class NodeCommandError(RuntimeError):
    pass


def stop_process(proc: subprocess.Popen[Any] | None, timeout: float = 5.0) -> None:
    """End a daemon a driver started: SIGTERM, then SIGKILL after ``timeout`` s; never raises."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


def run(node: Node, argv: Sequence[str], check: bool = True, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` inside ``node``'s namespace; raise if it fails and ``check``."""
    proc = node.popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise NodeCommandError(f"{node.name}: '{' '.join(argv)}' did not finish in {timeout:.0f} s") from None
    result = subprocess.CompletedProcess(
        list(argv), proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")
    )
    if check and result.returncode != 0:
        raise NodeCommandError(
            f"{node.name}: '{' '.join(argv)}' failed (exit {result.returncode}): {result.stderr.strip() or result.stdout.strip()}"
        )
    return result


def run_root(argv: Sequence[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command in the root namespace (OVS, link cleanup)."""
    result = subprocess.run(list(argv), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise NodeCommandError(f"'{' '.join(argv)}' failed (exit {result.returncode}): {result.stderr.strip()}")
    return result


OFFLOADS = ("rx", "off", "tx", "off", "tso", "off", "gso", "off", "gro", "off", "rxvlan", "off", "txvlan", "off")


def quiet_interfaces(node: Node) -> None:
    """Offloads off and IPv6 off on every interface of ``node``.

    Offloads: a veth hands partial checksums to whatever reads it; a userspace
    datapath (the gateway, OVS netdev) would forward them wrong.  IPv6: router
    solicitations and MLD reports are noise in captures and counters.
    """
    for intf in node.intfList():
        if intf.name == "lo":
            continue
        # ethtool exits non-zero when one feature is fixed; the rest still applies.
        run(node, ["ethtool", "-K", intf.name, *OFFLOADS], check=False)
        run(node, ["sysctl", "-qw", f"net.ipv6.conf.{intf.name}.disable_ipv6=1"], check=False)


class TestHost(Host):
    """A tenant or provider host: Mininet's Host, with IPv6 off (no stray ND/MLD)."""

    def config(self, **params):  # type: ignore[no-untyped-def]
        result = super().config(**params)
        self.cmd("sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1")
        return result


class GatewayNode(Node):
    """The node in the gateway's position: interfaces with no kernel addresses.

    The gateway software (started by a DUT driver) owns the interfaces; the
    node's kernel must not answer ARP or route on them, so every address
    Mininet assigns is flushed and forwarding is off.
    """

    def config(self, **params):  # type: ignore[no-untyped-def]
        params.pop("ip", None)
        result = super().config(**params)
        self.cmd(
            "sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1"
        )
        for intf in self.intfList():
            if intf.name != "lo":
                self.cmd(f"ip addr flush dev {intf.name}")
        return result


class UserOVS(OVSSwitch):
    """Open vSwitch on the userspace (netdev) datapath: the kernel here has no OVS module."""

    def __init__(self, name: str, **params):  # type: ignore[no-untyped-def]
        params.setdefault("datapath", "user")
        params.setdefault("failMode", "standalone")
        super().__init__(name, **params)


class FrrRouter(TestHost):
    """A provider router: Linux forwarding with FRR (zebra + staticd, and bgpd) holding its routes.

    ``frr_routes`` (prefix -> next hop) become ``ip route`` (``ipv6 route``) lines of staticd;
    ``frr_bgp`` ({asn, neighbors: [{address, asn}], networks, loopback}) makes
    it a BGP speaker announcing ``networks`` (``loopback``: an address on
    ``lo`` inside them, so there is something to reach; a dual-stack host's
    ``lo6`` is the IPv6 one, ``lab.py``); an IPv6 neighbor carries the IPv6
    networks; ``frr_bfd`` ({local, local6, peers, interval_ms, mult}) runs bfdd
    with a single-hop session to each peer (from ``local6`` to an IPv6 one).  The daemons run in
    the node's namespace with their own config and vty socket directory, and
    stop with the node.
    """

    def config(
        self,
        frr_routes: dict[str, str] | None = None,
        frr_bgp: dict | None = None,
        frr_bfd: dict | None = None,
        **params,
    ):  # type: ignore[no-untyped-def,type-arg]
        import os
        import shutil
        import tempfile

        result = super().config(**params)
        self.cmd("sysctl -qw net.ipv4.ip_forward=1")
        self.frr_dir = tempfile.mkdtemp(prefix=f"edgelab-frr-{self.name}-")
        lines = ["frr defaults traditional", f"hostname {self.name}"]
        lines += [f"{'ipv6' if ':' in p else 'ip'} route {p} {via}" for p, via in (frr_routes or {}).items()]
        self.frr_daemons = ["zebra", "staticd"]
        if frr_bgp:
            if frr_bgp.get("loopback"):
                self.cmd(f"ip addr add {frr_bgp['loopback']} dev lo")
            v6 = [n["address"] for n in frr_bgp["neighbors"] if ":" in n["address"]]
            nets = frr_bgp.get("networks", [])
            lines += [
                f"router bgp {frr_bgp['asn']}",
                " no bgp ebgp-requires-policy",
                " no bgp network import-check",
                " timers bgp 1 3",
                *(f" neighbor {n['address']} remote-as {n['asn']}" for n in frr_bgp["neighbors"]),
                " address-family ipv4 unicast",
                *(f"  network {net}" for net in nets if ":" not in net),
                *(f"  no neighbor {a} activate" for a in v6),
                " exit-address-family",
            ]
            if v6:  # IPv6 neighbors carry IPv6, the global next hop preferred (not the link-local)
                lines += [
                    " address-family ipv6 unicast",
                    *(f"  network {net}" for net in nets if ":" in net),
                    *(f"  neighbor {a} activate" for a in v6),
                    *(f"  neighbor {a} route-map PREFER-GLOBAL in" for a in v6),
                    " exit-address-family",
                    "route-map PREFER-GLOBAL permit 10",
                    " set ipv6 next-hop prefer-global",
                ]
            self.frr_daemons.append("bgpd")
        if frr_bfd:
            ms, mult = frr_bfd.get("interval_ms", 100), frr_bfd.get("mult", 3)
            lines.append("bfd")
            for peer in frr_bfd["peers"]:
                lines += [
                    f" peer {peer} local-address {frr_bfd['local6' if ':' in peer else 'local']}",
                    f"  receive-interval {ms}",
                    f"  transmit-interval {ms}",
                    f"  detect-multiplier {mult}",
                    " exit",
                ]
            lines.append("exit")
            self.frr_daemons.append("bfdd")
        conf = os.path.join(self.frr_dir, "frr.conf")
        with open(conf, "w") as fh:
            fh.write("\n".join(lines) + "\n")
        for path in (self.frr_dir, conf):
            shutil.chown(path, "frr", "frr")
        common = ["-d", "-f", conf, "--vty_socket", self.frr_dir, "-z", os.path.join(self.frr_dir, "zserv.api")]
        for daemon in self.frr_daemons:
            run(self, [f"/usr/lib/frr/{daemon}", *common, "-i", os.path.join(self.frr_dir, f"{daemon}.pid")])
        return result

    def vtysh(self, command: str) -> str:
        return run_root(["vtysh", "--vty_socket", self.frr_dir, "-c", command]).stdout

    def terminate(self) -> None:
        import os
        import shutil
        import signal

        for daemon in reversed(getattr(self, "frr_daemons", ["zebra", "staticd"])):
            try:
                with open(os.path.join(getattr(self, "frr_dir", ""), f"{daemon}.pid")) as fh:
                    os.kill(int(fh.read().strip()), signal.SIGTERM)
            except (OSError, ValueError):
                pass
        shutil.rmtree(getattr(self, "frr_dir", ""), ignore_errors=True)
        super().terminate()
