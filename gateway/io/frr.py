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
import time
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


def stop(netns: str, grace: float = 2.0) -> list[str]:
    """Stop the daemons of ``netns`` and remove their state dir (never raises); what was stopped.

    Each gets SIGTERM, then SIGKILL if it is still there after ``grace`` seconds: zebra can
    hang in its own shutdown (its main thread and ``dplane_fpm_nl`` both waiting on a futex,
    seen after a suite's gateway stopped), and a hung one outlived every teardown."""
    d = state_dir(netns)
    running: list[tuple[str, int]] = []
    for daemon in reversed(DAEMONS):
        try:
            pid = int((d / f"{daemon}.pid").read_text().strip())
            if _ours(pid, d):
                os.kill(pid, signal.SIGTERM)
                running.append((daemon, pid))
        except (OSError, ValueError):
            pass
    stopped = [f"{daemon} of {netns}" for daemon, _pid in running]
    deadline = time.monotonic() + grace
    while running and time.monotonic() < deadline:
        time.sleep(0.02)
        running = [(daemon, pid) for daemon, pid in running if _ours(pid, d)]
    for _daemon, pid in running:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    shutil.rmtree(d, ignore_errors=True)  # (their pid files, sockets and config)
    return stopped


def _ours(pid: int, d: Path) -> bool:
    """Process ``pid`` is alive and one of ours: its command line names state dir ``d`` (a
    pid file outlives its process, and the pid may be another's since)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return str(d).encode() in cmdline and state != "Z"
