"""The benches' offered load (``edgelab/pacing.py``) on a real veth: trafgen, unthrottled
behind the pace, sends evenly at the rate asked (not a second's frames in one burst, as its
own ``-b`` does), pings go by in a class of their own, and the interface is left as found."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from edgelab import pacing

RATE = 20_000
SECONDS = 2.0
SAMPLER = """
import json, sys, time
path = "/sys/class/net/io0/statistics/tx_packets"
out, end = [], time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    out.append((time.monotonic(), int(open(path).read())))
    time.sleep(0.01)
print(json.dumps(out))
"""


def _run(ns: str, argv: list[str], check: bool = True, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, timeout=timeout)
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {res.stderr.strip()}")
    return res


@pytest.fixture
def ns(tmp_path: Any) -> Iterator[str]:
    name, peer = f"edgelab-pace{os.getpid()}", f"edgelab-pace{os.getpid()}p"
    try:
        for one in (name, peer):
            subprocess.run(["ip", "netns", "add", one], check=True, capture_output=True)
            _run(one, ["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"])
        _run(name, ["ip", "link", "add", "io0", "type", "veth", "peer", "name", "io1", "netns", peer])
        for one, ifname, addr in ((name, "io0", "10.99.0.1/24"), (peer, "io1", "10.99.0.2/24")):
            _run(one, ["ip", "addr", "add", addr, "dev", ifname])
            _run(one, ["ip", "link", "set", ifname, "up"])
        yield name
    finally:
        for one in (name, peer):
            subprocess.run(["ip", "netns", "del", one], capture_output=True)


def test_an_even_rate_pings_aside_and_the_interface_left_as_found(ns, tmp_path):
    cfg = tmp_path / "frames.cfg"
    # 60 bytes: 14 + 20 + 8 + 18, to a MAC nobody has (io1 drops it)
    cfg.write_text(
        "{ eth(da=02:00:00:00:99:99, sa=02:00:00:00:99:01), "
        "ipv4(sa=10.99.0.1, da=10.99.0.9, ttl=64), udp(sp=dinc(1024, 2023), dp=9), fill(0x00, 18) }\n"
    )
    size = pacing.frame_bytes(_run, ns, "io0", str(cfg))
    assert size == 60
    trafgen = ["timeout", "-s", "INT", str(SECONDS), "trafgen", "-o", "io0", "-i", str(cfg), "--cpus", "1", "-q"]
    with pacing.paced(_run, ns, "io0", RATE, size):
        gen = subprocess.Popen(["ip", "netns", "exec", ns, *trafgen], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        ping = subprocess.Popen(["ip", "netns", "exec", ns, "ping", "-n", "-c", "3", "-i", "0.2", "10.99.0.2"],
                                stdout=subprocess.PIPE, text=True)  # fmt: skip
        try:
            sampler = _run(ns, [sys.executable, "-c", SAMPLER, str(SECONDS)], timeout=30)
        finally:
            gen.wait(timeout=30)
            pinged = ping.communicate(timeout=30)[0]
        classes = _run(ns, ["tc", "-s", "class", "show", "dev", "io0"]).stdout  # (-j: not for classes here)
    samples = json.loads(sampler.stdout)
    # Ten windows of 100 ms in the middle of the run: each within a third of the rate's share.
    # (trafgen's own -b sends the whole second's frames in one such window and nothing in the others.)
    t0 = samples[0][0] + 0.3
    windows = []
    for k in range(10):
        lo, hi = t0 + k * 0.1, t0 + (k + 1) * 0.1
        inside = [c for t, c in samples if lo <= t < hi]
        windows.append(inside[-1] - inside[0])
    share = RATE * 0.09  # what 90 ms between the first and last sample of a window should see
    assert all(abs(w - share) < share / 3 for w in windows), windows
    # the pings went by in their own class (a load that fills the paced queue would hold them)
    assert "3 received" in pinged, pinged
    icmp = re.search(r"class htb 1:1 .*\n Sent \d+ bytes (\d+) pkt", classes)
    assert icmp is not None and int(icmp.group(1)) >= 3, classes
    # the interface as it was: no qdisc of ours left
    time.sleep(0.1)
    left = _run(ns, ["tc", "qdisc", "show", "dev", "io0"]).stdout
    assert "htb" not in left and "pfifo" not in left, left
