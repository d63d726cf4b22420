"""BFD interoperability with FRR's bfdd: real packets between two namespaces.

Our session (``gateway.ha.udp``, the same ``Session`` the HA agent runs)
faces bfdd on a veth pair with 100 ms x 3 timers: the session must come up
on both sides with the fast timers agreed, and ours must go down when bfdd
is stopped.  The namespaces and daemons are the test's own and are removed
whatever happens.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from suites.lib.expect import poll

FRR = Path("/usr/lib/frr")
REPO = Path(__file__).resolve().parents[2]
OURS, THEIRS = "198.51.100.1", "198.51.100.2"


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(list(argv), capture_output=True, text=True)
    if check and res.returncode != 0:
        raise RuntimeError(f"'{' '.join(argv)}' failed: {res.stderr.strip()}")
    return res


# The reference gateway's own BFD implementation against FRR's: no DUT is judged here.
pytestmark = pytest.mark.needs("internals.ha")


@pytest.fixture
def bfd_pair() -> Iterator[dict[str, str]]:
    if os.geteuid() != 0 or not (FRR / "bfdd").exists():
        reason = "needs root and FRR (apt-get install frr; make bootstrap installs it)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    tag = f"{os.getpid() % 10000}"
    ours, theirs = f"elb{tag}a", f"elb{tag}b"
    rundir = Path(tempfile.mkdtemp(prefix="edgelab-bfd-"))
    try:
        sh("ip", "netns", "add", ours)
        sh("ip", "netns", "add", theirs)
        sh("ip", "link", "add", "bfd0", "netns", ours, "type", "veth", "peer", "name", "bfd1", "netns", theirs)
        for ns, dev, addr in ((ours, "bfd0", OURS), (theirs, "bfd1", THEIRS)):
            sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        conf = rundir / "frr.conf"
        conf.write_text(
            "frr defaults traditional\nhostname bfdpeer\nbfd\n"
            f" peer {OURS} local-address {THEIRS}\n  receive-interval 100\n  transmit-interval 100\n  detect-multiplier 3\n !\n!\n"
        )
        shutil.chown(rundir, "frr", "frr")
        shutil.chown(conf, "frr", "frr")
        common = ["-d", "-f", str(conf), "--vty_socket", str(rundir), "-z", str(rundir / "zserv.api")]
        sh("ip", "netns", "exec", theirs, str(FRR / "zebra"), *common, "-i", str(rundir / "zebra.pid"))
        sh("ip", "netns", "exec", theirs, str(FRR / "bfdd"), *common, "-i", str(rundir / "bfdd.pid"))
        yield {"ours": ours, "theirs": theirs, "rundir": str(rundir)}
    finally:
        for pidfile in ("bfdd.pid", "zebra.pid"):
            try:
                os.kill(int((rundir / pidfile).read_text().strip()), 15)
            except (OSError, ValueError):
                pass
        for ns in (ours, theirs):
            sh("ip", "netns", "del", ns, check=False)
        shutil.rmtree(rundir, ignore_errors=True)


def frr_peer(rundir: str) -> dict:
    out = sh("vtysh", "--vty_socket", rundir, "-c", "show bfd peers json").stdout
    peers = json.loads(out or "[]")
    return next((p for p in peers if p.get("peer") == OURS), {})


def test_bfd_session_with_frr_comes_up_and_goes_down_when_frr_stops(bfd_pair):
    proc = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            bfd_pair["ours"],
            sys.executable,
            "-m",
            "gateway.ha.udp",
            "--local",
            OURS,
            "--peer",
            THEIRS,
            "--tx",
            "100",
            "--rx",
            "100",
            "--mult",
            "3",
            "--seconds",
            "8",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=str(REPO),
    )
    try:
        peer = poll(
            lambda: (p := frr_peer(bfd_pair["rundir"])).get("status") == "up" and p,
            timeout=8,
            what="FRR sees the session up",
        )
        assert peer["remote-transmit-interval"] == 100 and peer["transmit-interval"] == 100, peer
        time.sleep(1.0)
        bfdd_pid = int((Path(bfd_pair["rundir"]) / "bfdd.pid").read_text().strip())
        os.kill(bfdd_pid, 15)
        stopped = time.monotonic()
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    states = [(e["from"], e["to"]) for e in events if e["event"] == "state"]
    assert ("down", "up") in states or ("init", "up") in states, states
    assert states[-1][1] == "down", states
    down = [e for e in events if e["event"] == "state" and e["to"] == "down"][-1]
    assert down["diag"] in (1, 3), "down by detection timeout or because bfdd said so"
    status = events[-1]
    assert status["event"] == "status" and status["ttl_rejected"] == 0 and status["discarded"] == 0
    # Same monotonic clock in both processes: detection within 3 x 100 ms (+ scheduling slack).
    assert 0 <= down["t"] - stopped <= 1.0, f"down {down['t'] - stopped:.3f} s after bfdd stopped"
