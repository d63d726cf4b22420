"""DHCP helpers for the suites: a real server (dnsmasq) and real clients (dhclient).

Where this sits: used by ``suites/e2e/test_dhcp.py`` and the Robot keywords
(``keywords/dhcp.py``).  The server hands out addresses of 172.16.10.0/24 in
one range per option-82 circuit-id (``RANGES``), and nothing to a request
without a known one, so a lease from the right range proves the relay named
the client's (port, VLAN) record.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from topologies.nodes import run

RANGES = {"trunk:10": ("172.16.10.100", "172.16.10.109"), "access:0": ("172.16.10.110", "172.16.10.119")}
CIRCUIT = {"t1": "trunk:10", "t4": "access:0"}  # edge-basic: the record each client comes in on


def _hex(text: str) -> str:
    return ":".join(f"{b:02x}" for b in text.encode())


class Server:
    """dnsmasq on ``host`` (DHCP only), one range per circuit-id."""

    def __init__(self, lab: Any, host: str = "t3") -> None:
        if shutil.which("dnsmasq") is None or shutil.which("dhclient") is None:
            raise RuntimeError("dnsmasq and dhclient are needed (make bootstrap installs them)")
        self.lab = lab
        self.dir = Path(tempfile.mkdtemp(prefix="edgelab-dhcp-"))
        d = self.dir
        lines = [
            "port=0",
            "no-resolv",
            "no-hosts",
            "log-dhcp",
            f"dhcp-leasefile={d}/leases",
            f"log-facility={d}/dnsmasq.log",
        ]
        for i, (circuit, (lo, hi)) in enumerate(RANGES.items()):
            lines += [f"dhcp-circuitid=set:c{i},{_hex(circuit)}", f"dhcp-range=tag:c{i},{lo},{hi},255.255.255.0,120s"]
        (d / "dnsmasq.conf").write_text("\n".join(lines) + "\n")
        self.proc = lab.host(host).popen(
            ["dnsmasq", "--no-daemon", f"--conf-file={d}/dnsmasq.conf", f"--pid-file={d}/dnsmasq.pid"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip

    def log(self) -> str:
        path = self.dir / "dnsmasq.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)


def lease(lab: Any, host: str, server: Server) -> str | None:
    """Run dhclient once on ``host`` (its script does nothing: the host keeps its address);
    the address it was acknowledged, None when it got none."""
    node = lab.host(host)
    d = server.dir
    conf = d / f"{host}.conf"
    conf.write_text("timeout 15;\nretry 1;\n")
    argv = ["dhclient", "-4", "-1", "-v", "-sf", "/bin/true", "-cf", str(conf), "-lf", str(d / f"{host}.leases"),
            "-pf", str(d / f"{host}.pid"), node.defaultIntf().name]  # fmt: skip
    res = run(node, argv, check=False, timeout=40)
    run(node, ["dhclient", "-x", "-pf", str(d / f"{host}.pid")], check=False)
    m = re.search(r"bound to (\d+\.\d+\.\d+\.\d+)", res.stdout + res.stderr)
    return m.group(1) if m else None


def in_range(addr: str | None, lo: str, hi: str) -> bool:
    if addr is None:
        return False
    key = [int(x) for x in addr.split(".")]
    return [int(x) for x in lo.split(".")] <= key <= [int(x) for x in hi.split(".")]
