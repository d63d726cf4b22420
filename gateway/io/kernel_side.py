"""The kernel side of the user-kernel transport: one network namespace per tag.

Where this sits: ``python -m gateway`` calls :func:`setup` once the TAP is
open (``gateway/kernel.py`` says what to build) and :func:`teardown` when it
stops; :func:`teardown` is also what a test harness calls after a crash.

Each frame on the TAP carries a tag (a TLR id, or the management tag).
Where the kernel has 802.1Q, sub-interfaces of the TAP (``ip link add link
TAP name TAP.N type vlan id N``) moved into each namespace would split them.
This kernel has none, so an Open vSwitch userspace bridge does it: the TAP
is the bridge's trunk port and each namespace hangs off an access port
(``tag=N``) through a veth.  Open vSwitch opens its ports in the root network
namespace, so the TAP is moved there (its descriptor keeps working); the
bridge, the root-side veth ends and the TAP carry no address.

A namespace holds its addresses on its one interface ``kni`` (with the MAC
the datapath sends to; IPv6 ones too, for a dual-stack SR, with IPv6 on
``kni`` only), a default route through that interface (so the
kernel asks the datapath, by ARP, for every destination: the datapath
answers and routes), and IP forwarding off.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from typing import Any

from gateway.headers import mac_str
from gateway.io import frr


class KernelSideError(Exception):
    """The kernel side could not be built; the message is for the user."""


def _run(argv: Sequence[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        res = subprocess.run(list(argv), capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise KernelSideError(f"'{' '.join(argv)}' could not run: {exc}") from None
    if check and res.returncode != 0:
        raise KernelSideError(f"'{' '.join(argv)}' failed: {res.stderr.strip() or res.stdout.strip()}")
    return res


OVS_PID = "/var/run/openvswitch/ovs-vswitchd.pid"


def _ovs_pid() -> str:
    """The process whose network namespace Open vSwitch opens its ports in."""
    try:
        with open(OVS_PID) as fh:
            return fh.read().strip()
    except OSError:
        raise KernelSideError(f"Open vSwitch is not running (no {OVS_PID}); it demultiplexes the TAP's tags") from None


def bridge_name(node: str) -> str:
    return f"{node}-kb"[:15]


def veth_name(node: str, tag: int) -> str:
    return f"{node}-k{tag}"[:15]


def setup(node: str, tap: str, namespaces: list[dict[str, Any]]) -> None:
    """Build the namespaces and the tag demultiplexer for ``tap``; undo it all on failure."""
    try:
        _setup(node, tap, namespaces)
    except KernelSideError:
        teardown(node, namespaces)
        raise


def _setup(node: str, tap: str, namespaces: list[dict[str, Any]]) -> None:
    offloads = ["tx", "off", "rx", "off", "tso", "off", "gso", "off", "gro", "off", "rxvlan", "off", "txvlan", "off"]
    br = bridge_name(node)
    pid = _ovs_pid()
    _run(["ip", "link", "set", tap, "netns", pid])  # to Open vSwitch's namespace; the fd stays ours
    _run(["nsenter", "-t", pid, "-n", "sysctl", "-qw", f"net.ipv6.conf.{tap}.disable_ipv6=1"], check=False)
    _run(["nsenter", "-t", pid, "-n", "ethtool", "-K", tap, *offloads], check=False)
    _run(["nsenter", "-t", pid, "-n", "ip", "link", "set", tap, "up"])
    _run(["ovs-vsctl", "--may-exist", "add-br", br, "--", "set", "bridge", br, "datapath_type=netdev",
          "fail_mode=standalone"])  # fmt: skip
    _run(["ovs-vsctl", "--may-exist", "add-port", br, tap])
    for ns in namespaces:
        name, tag, root_side = ns["name"], ns["tag"], veth_name(node, ns["tag"])
        _run(["ip", "netns", "add", name])
        _run(["nsenter", "-t", pid, "-n", "ip", "link", "add", root_side, "type", "veth", "peer", "name", "kni",
              "netns", name])  # fmt: skip
        _run(["nsenter", "-t", pid, "-n", "sysctl", "-qw", f"net.ipv6.conf.{root_side}.disable_ipv6=1"], check=False)
        _run(["nsenter", "-t", pid, "-n", "ethtool", "-K", root_side, *offloads], check=False)
        _run(["nsenter", "-t", pid, "-n", "ip", "link", "set", root_side, "up"])
        _run(["ovs-vsctl", "--may-exist", "add-port", br, root_side, "--", "set", "port", root_side, f"tag={tag}"])
        inside = ["ip", "netns", "exec", name]
        _run([*inside, "sysctl", "-qw", "net.ipv4.ip_forward=0"])
        _run([*inside, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"], check=False)
        _run([*inside, "ethtool", "-K", "kni", *offloads], check=False)
        _run([*inside, "ip", "link", "set", "kni", "address", mac_str(ns["mac"])])
        _run([*inside, "ip", "link", "set", "lo", "up"])
        _run([*inside, "ip", "link", "set", "kni", "up"])
        v6 = [a for a in ns["addresses"] if ":" in a]
        if v6:
            # IPv6 on kni only: no duplicate-address probes, no router solicitations, no RAs
            # taken (the datapath owns neighbour discovery on the wire).
            for key in ("disable_ipv6=0", "accept_dad=0", "accept_ra=0", "router_solicitations=0"):
                _run([*inside, "sysctl", "-qw", f"net.ipv6.conf.kni.{key}"])
        for address in ns["addresses"]:
            _run([*inside, "ip", "addr", "add", address, "dev", "kni", *(["nodad"] if ":" in address else [])])
        _run([*inside, "ip", "route", "replace", "default", "dev", "kni"])
        if v6:
            _run([*inside, "ip", "-6", "route", "replace", "default", "dev", "kni"])


def teardown(node: str, namespaces: list[dict[str, Any]] | None = None) -> list[str]:
    """Remove what :func:`setup` built for ``node`` from ``namespaces`` (also after a crash);
    with ``namespaces`` None, whatever a dead gateway named ``node`` may have left (``edgelab
    clean``: nothing may be running then, as two topologies may both have a node of that name).
    Never raises."""
    removed = []
    br = bridge_name(node)
    if _run(["ovs-vsctl", "--timeout=10", "br-exists", br], check=False).returncode == 0:
        _run(["ovs-vsctl", "--timeout=10", "--if-exists", "del-br", br], check=False)
        removed.append(f"bridge {br}")
    if namespaces is not None:
        names = {ns["name"] for ns in namespaces}
        veths = {veth_name(node, ns["tag"]) for ns in namespaces}
    else:
        listed = _run(["ip", "netns", "list"], check=False).stdout.split()
        names = {n for n in listed if n == f"{node}-mgmt" or n.startswith(f"{node}-tlr")}
        veths = set()
    for name in sorted(names):
        removed += frr.stop(name)  # daemons left in it by a gateway that died
        if _run(["ip", "netns", "del", name], check=False).returncode == 0:
            removed.append(f"namespace {name}")
    try:
        pid = _ovs_pid()
    except KernelSideError:
        return removed
    links = _run(["nsenter", "-t", pid, "-n", "ip", "-o", "link", "show"], check=False).stdout
    for line in links.splitlines():
        ifname = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        if ifname in veths or (namespaces is None and ifname.startswith(f"{node}-k") and ifname != br):
            _run(["nsenter", "-t", pid, "-n", "ip", "link", "del", ifname], check=False)
            removed.append(f"interface {ifname}")
    return removed
