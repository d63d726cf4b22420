"""The ``io: block`` port on a real veth: quiet frames are read one by one from a socket
(no wait for a receive block's timeout; only when epoll reported it), a burst moves the port to its receive blocks and
a lull moves it back, and across both switches every frame arrives once and in order."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.io.blockring import WINDOW

REPO = Path(__file__).resolve().parents[2]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def veth_ns() -> Iterator[str]:
    ns = f"edgelab-io{os.getpid()}"
    _ip("netns", "add", ns)
    try:
        # No IPv6 on the pair: its neighbour discovery and MLD frames, sent at moments of their
        # own, would be counted among the quiet frames.
        for conf in ("all", "default"):
            subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{conf}.disable_ipv6=1"],
                           check=True, capture_output=True)  # fmt: skip
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
    assert r["waiting"] == [0, 1, 1], "a quiet frame is read only when epoll reported it, one per read"
    assert r["quiet"]["rx_by_frame"] == 32 and r["quiet"]["rx_switches"] == 0, r["quiet"]
    assert r["busy"]["rx_switches"] >= 1, "the burst moved the port to its blocks"
    # Only what arrived before the port judged the burst's rate (a window, 10 ms; three
    # allowed, and a batch) may come frame by frame: the rest of the burst, through the blocks.
    burst = r["burst"]
    before_switch = burst["frames"] / burst["seconds"] * 3 * WINDOW + 64
    assert before_switch < burst["frames"] / 2, burst
    assert r["busy"]["rx_by_frame"] - 30 < before_switch, ("most of the burst came through the blocks", r)
    assert r["quiet_again"]["rx_switches"] >= 2, "the lull moved it back to frames"
    assert r["quiet_again"]["rx_by_frame"] >= r["busy"]["rx_by_frame"] + 30, r["quiet_again"]
    assert r["quiet_again"]["rx_dropped"] == 0


def test_the_transmit_ring_keeps_step_with_the_kernel_after_a_queue_dropped_frames(veth_ns):
    # A tbf qdisc too small for a burst makes the kernel fail frames (ENOBUFS) mid-flush; once
    # it is gone every frame must go again (the ring once stayed a slot behind the kernel for
    # good: a few frames of every 200 lost, and a bench trial whose every frame was refused).
    res = subprocess.run(
        ["ip", "netns", "exec", veth_ns, sys.executable, "-m", "suites.lib.portio", "--transmit-after-drops", "io0",
         "io1"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    r = json.loads(res.stdout)
    assert r["overload"]["dropped"] + r["overload"]["refused"] > 0, ("the qdisc made the kernel fail frames", r)
    assert all(x == {"received": 200, "dropped": 0, "refused": 0} for x in r["after"]), r


def test_receive_blocks_are_sized_to_the_link_mtu_and_a_jumbo_frame_comes_whole(veth_ns):
    # Blocks as small as the largest frame allows (a block is handed over when full or after
    # the kernel's 1 ms: small blocks wait less); a frame too big for a block would be cut.
    res = subprocess.run(
        ["ip", "netns", "exec", veth_ns, sys.executable, "-m", "suites.lib.portio", "--jumbo", "io0", "io1"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    r = json.loads(res.stdout)
    assert (r["block_1500"], r["block_9000"]) == (4096, 16384), r
    assert r["counters"]["rx_switches"] >= 1, ("the burst went through the blocks", r)
    assert r["counters"]["rx_truncated"] == 0 and r["counters"]["rx_dropped"] == 0, r
    assert r["sent"] > 1000 and r["whole"] == r["sent"], r
