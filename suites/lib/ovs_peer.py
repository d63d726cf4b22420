"""Open vSwitch as an EVI data-plane peer: a private OVS instance in a node's namespace.

Where this sits: used by ``suites/e2e/test_evi_interop.py`` to replace one
site's edge by Open vSwitch with userspace GRE ports (``type=gre``,
``options:key``), so the gateway under test is checked against an
independent implementation of the wire format.  The instance (ovsdb-server
and ovs-vswitchd, its database, sockets and logs in a temporary directory)
runs inside the node's network namespace: its physical bridge and the
tunnel address it needs live there, not in the root namespace.  Its flows
make it a flooding peer with split horizon: VLAN ``vlan`` from the site
trunk goes untagged to every GRE port, and what comes from a GRE port goes
only to the trunk, tagged.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from topologies.nodes import run

SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"


@contextmanager
def gre_peer(
    node: Any, trunk: str, core: str, address: str, gateway: str, remotes: list[str], key: int, vlan: int, mtu: int
) -> Iterator[dict[str, Any]]:
    """Run the peer on ``node`` while the block runs; stopped and removed afterwards."""
    d = tempfile.mkdtemp(prefix="edgelab-ovs-peer-")
    env = ["env", f"OVS_RUNDIR={d}", f"OVS_DBDIR={d}", f"OVS_LOGDIR={d}"]
    vsctl = [*env, "ovs-vsctl", f"--db=unix:{d}/db.sock", "--timeout=10"]
    try:
        subprocess.run(["ovsdb-tool", "create", f"{d}/conf.db", SCHEMA], check=True, capture_output=True)
        run(node, [*env, "ovsdb-server", f"{d}/conf.db", f"--remote=punix:{d}/db.sock",
                   f"--pidfile={d}/ovsdb.pid", "--detach", f"--log-file={d}/ovsdb.log"])  # fmt: skip
        run(node, [*vsctl, "--no-wait", "init"])
        run(node, [*env, "ovs-vswitchd", f"unix:{d}/db.sock", f"--pidfile={d}/vswitchd.pid", "--detach",
                   f"--log-file={d}/vswitchd.log"])  # fmt: skip
        # The core side: the physical bridge holds the tunnel address (OVS routes tunnels by
        # the routes of its namespace, and answers ARP for it through its bridge port).
        run(node, [*vsctl, "add-br", "ep-phy", "--", "set", "bridge", "ep-phy", "datapath_type=netdev"])
        run(node, [*vsctl, "add-port", "ep-phy", core])
        run(node, ["ip", "addr", "add", address, "dev", "ep-phy"])
        run(node, ["ip", "link", "set", "ep-phy", "up", "mtu", str(mtu)])
        run(node, ["ip", "route", "add", "10.255.0.0/16", "via", gateway, "dev", "ep-phy"])
        # The site side: the trunk and one GRE port per remote edge, switched by our flows.
        run(node, [*vsctl, "add-br", "ep-int", "--", "set", "bridge", "ep-int", "datapath_type=netdev",
                   "fail-mode=secure"])  # fmt: skip
        run(node, [*vsctl, "add-port", "ep-int", trunk, "--", "set", "interface", trunk, "ofport_request=1"])
        ports = []
        for i, remote in enumerate(remotes, start=2):
            name = f"gre{i}"
            run(node, [*vsctl, "add-port", "ep-int", name, "--", "set", "interface", name, "type=gre",
                       f"options:remote_ip={remote}", f"options:key={key}", f"ofport_request={i}"])  # fmt: skip
            ports.append(i)
        ofctl = [*env, "ovs-ofctl", "-O", "OpenFlow13"]
        mgmt = f"unix:{d}/ep-int.mgmt"
        flows = [f"in_port=1,dl_vlan={vlan},actions=pop_vlan," + ",".join(f"output:{p}" for p in ports)]
        flows += [f"in_port={p},actions=push_vlan:0x8100,set_field:{4096 | vlan}->vlan_vid,output:1" for p in ports]
        for flow in flows:
            run(node, [*ofctl, "add-flow", mgmt, flow])
        yield {"dir": d, "flows": lambda: run(node, [*ofctl, "dump-flows", mgmt]).stdout}
    finally:
        for name in ("vswitchd", "ovsdb"):
            try:
                with open(os.path.join(d, f"{name}.pid")) as fh:
                    os.kill(int(fh.read().strip()), signal.SIGTERM)
            except (OSError, ValueError):
                pass
        shutil.rmtree(d, ignore_errors=True)
