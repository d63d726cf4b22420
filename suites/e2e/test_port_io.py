"""The ``io: block`` port on a real veth: quiet frames are read one by one from a socket
(no wait for a receive block's timeout), a burst moves the port to its receive blocks and
a lull moves it back, and across both switches every frame arrives once and in order."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def veth_ns() -> Iterator[str]:
    ns = f"edgelab-io{os.getpid()}"
    _ip("netns", "add", ns)
    try:
        _ip("-n", ns, "link", "add", "io0", "type", "veth", "peer", "name", "io1")
        _ip("-n", ns, "link", "set", "io0", "up")
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_quiet_frames_one_by_one_bursts_in_blocks_every_frame_once_in_order(veth_ns):
    res = subprocess.run(
        ["ip", "netns", "exec", veth_ns, sys.executable, "-m", "suites.lib.portio", "io0", "io1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    r = json.loads(res.stdout)
    assert r["adaptive"], "this kernel took the fanout group (PLATFORM.md: AF_PACKET fanout)"
    assert r["received"] == r["sent"] and r["once_in_order"], r
    assert r["quiet"]["rx_by_frame"] == 30 and r["quiet"]["rx_switches"] == 0, r["quiet"]
    assert r["busy"]["rx_switches"] >= 1, "the burst moved the port to its blocks"
    assert r["busy"]["rx_by_frame"] < 30 + 2500, "most of the burst came through the blocks"
    assert r["quiet_again"]["rx_switches"] >= 2, "the lull moved it back to frames"
    assert r["quiet_again"]["rx_by_frame"] >= r["busy"]["rx_by_frame"] + 30, r["quiet_again"]
    assert r["quiet_again"]["rx_dropped"] == 0
