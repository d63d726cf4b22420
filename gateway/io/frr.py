"""FRR (zebra + bgpd) in a TLR namespace: the SR's routing protocol daemons.

Where this sits: ``python -m gateway`` starts them after the kernel side is
built (``kernel_side.py``) and stops them when it stops; ``kernel_side.teardown``
also stops what a dead gateway left.  Their BGP session runs over the TLR
namespace's one interface, so through the datapath like any traffic of the SR;
zebra hands what it learns to the datapath over FPM (``gateway/fpm.py``:
``dplane_fpm_nl``, next hops inline rather than in next-hop groups).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

from gateway.config.kernel import BgpConfig

FRR = Path("/usr/lib/frr")
STATE = Path("/run/edgelab/frr")
DAEMONS = ("zebra", "bgpd")


class FrrError(Exception):
    """FRR could not be started; the message is for the user."""


def state_dir(netns: str) -> Path:
    return STATE / netns


def render(bgp: BgpConfig, hostname: str, router_id: str, fpm_port: int) -> str:
    """bgpd's config: each neighbor in the address family of its address (an IPv6 neighbor
    carries IPv6 routes only), the announced prefixes in theirs."""
    v4 = [addr for addr, _asn in bgp.neighbors if addr.version == 4]
    v6 = [addr for addr, _asn in bgp.neighbors if addr.version == 6]
    med = bgp.med is not None
    lines = [
        "frr defaults traditional",
        f"hostname {hostname}",
        f"fpm address 127.0.0.1 port {fpm_port}",
        "no fpm use-next-hop-groups",
        f"router bgp {bgp.asn}",
        f" bgp router-id {router_id}",
        " no bgp ebgp-requires-policy",
        " no bgp network import-check",
        f" timers bgp {bgp.keepalive} {bgp.hold}",
        *(f" neighbor {addr} remote-as {asn}" for addr, asn in bgp.neighbors),
        " address-family ipv4 unicast",
        *(f"  network {net}" for net in bgp.announce if net.version == 4),
        *(f"  neighbor {addr} route-map EDGELAB-OUT out" for addr in v4 if med),
        *(f"  no neighbor {addr} activate" for addr in v6),
        " exit-address-family",
    ]
    if v6:
        lines += [
            " address-family ipv6 unicast",
            *(f"  network {net}" for net in bgp.announce if net.version == 6),
            *(f"  neighbor {addr} activate" for addr in v6),
            *(f"  neighbor {addr} route-map EDGELAB-OUT out" for addr in v6 if med),
            # The peer's global address as the next hop, not its link-local one: the FIB must
            # know the segment (gateway/fpm.py).
            *(f"  neighbor {addr} route-map EDGELAB-IN6 in" for addr in v6),
            " exit-address-family",
            "route-map EDGELAB-IN6 permit 10",
            " set ipv6 next-hop prefer-global",
        ]
    if med:
        # The MED it announces with: of two SRs of one router, the provider prefers the lower.
        lines += ["route-map EDGELAB-OUT permit 10", f" set metric {bgp.med}"]
    return "\n".join(lines) + "\n"


def start(netns: str, conf: str) -> None:
    if not (FRR / "zebra").exists():
        raise FrrError("FRR is not installed (/usr/lib/frr/zebra); install frr (make bootstrap does)")
    d = state_dir(netns)
    stop(netns)
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    (d / "frr.conf").write_text(conf)
    for path in (d, d / "frr.conf"):
        shutil.chown(path, "frr", "frr")
    common = ["-d", "-f", str(d / "frr.conf"), "--vty_socket", str(d), "-z", str(d / "zserv.api")]
    for daemon in DAEMONS:
        extra = ["-M", "dplane_fpm_nl"] if daemon == "zebra" else []
        argv = ["ip", "netns", "exec", netns, str(FRR / daemon), *common, *extra, "-i", str(d / f"{daemon}.pid")]
        res = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        if res.returncode != 0:
            stop(netns)
            raise FrrError(f"{daemon} in {netns} did not start: {res.stderr.strip() or res.stdout.strip()}")


def stop(netns: str) -> list[str]:
    """Stop the daemons of ``netns`` (never raises); what was stopped."""
    stopped = []
    d = state_dir(netns)
    for daemon in reversed(DAEMONS):
        try:
            pid = int((d / f"{daemon}.pid").read_text().strip())
            os.kill(pid, signal.SIGTERM)
            stopped.append(f"{daemon} of {netns}")
        except (OSError, ValueError):
            pass
    return stopped
