"""Offered load at a constant rate: a token bucket (htb) on the generator's interface.

Why: trafgen's own rate (``-b``) is an average over a second, not a pace.  It
sends a second's frames as fast as it can and then sleeps: at "100 kpps" it
sent 100k frames in about 170 ms (some 600 kpps) and nothing for the next
830 ms (``/proc/<pid>/net/dev`` of the generator's node, sampled every 2 ms).
A no-loss search on such a load measures how big a burst the DUT can absorb,
not the rate it sustains, and a "latency beside 50 % load" probe lands mostly
in the quiet part of the second.  RFC 2544 offers a constant rate; so does
this: trafgen runs unthrottled through its interface's qdisc (``-q``), and
an ``htb`` class there lets frames out at ``pps`` (a bucket of :data:`BURST`
frames, a queue of :data:`QUEUE`).  When the queue is full the sender waits
for room (its socket's send buffer holds it back), so the interface's own
transmit counter is the offered load.  Pings (ICMP, ICMPv6) go by in a class
of their own: the latency probed beside a load is the DUT's, not the time
spent behind the load in the generator's own queue.  (trafgen's ``-t`` gap
sleeps once per frame: it could not pass about 35 kpps here.)

The bucket counts bytes, so the pace needs the frame size: :func:`frame_bytes`
sends one frame of the configuration and reads what the interface counted.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

BURST = 32  # frames the bucket lets out back to back after a pause
QUEUE = 64  # frames waiting in the qdisc before the sender is held back


def _tx(run: Any, node: Any, ifname: str) -> tuple[int, int]:
    stats = json.loads(run(node, ["ip", "-s", "-j", "link", "show", ifname]).stdout)[0]["stats64"]["tx"]
    return int(stats["packets"]), int(stats["bytes"])


def frame_bytes(run: Any, node: Any, ifname: str, cfg: str) -> int:
    """The size of the frames trafgen sends from ``cfg``, as ``ifname`` counts them (one frame sent)."""
    packets0, bytes0 = _tx(run, node, ifname)
    run(node, ["trafgen", "-o", ifname, "-i", cfg, "--cpus", "1", "-n", "1", "-q"], check=False, timeout=30)
    packets, sent = _tx(run, node, ifname)
    if packets - packets0 < 1:
        raise RuntimeError(f"trafgen sent no frame on {ifname} from {cfg}: cannot size the pace")
    return max(1, (sent - bytes0) // (packets - packets0))


def pace_argvs(ifname: str, pps: float, size: int) -> list[list[str]]:
    """The ``tc`` commands that pace ``ifname`` at ``pps`` frames of ``size`` bytes, pings aside."""
    rate = f"{max(1, round(pps * size * 8))}bit"
    return [
        ["tc", "qdisc", "replace", "dev", ifname, "root", "handle", "1:", "htb", "default", "2"],
        ["tc", "class", "add", "dev", ifname, "parent", "1:", "classid", "1:1", "htb", "rate", "10gbit",
         "quantum", "1600", "prio", "0"],
        ["tc", "class", "add", "dev", ifname, "parent", "1:", "classid", "1:2", "htb", "rate", rate, "ceil", rate,
         "burst", str(BURST * size), "cburst", str(BURST * size), "quantum", "1600", "prio", "1"],
        ["tc", "qdisc", "add", "dev", ifname, "parent", "1:2", "handle", "2:", "pfifo", "limit", str(QUEUE)],
        ["tc", "filter", "add", "dev", ifname, "parent", "1:", "protocol", "ip", "prio", "1", "u32",
         "match", "ip", "protocol", "1", "0xff", "flowid", "1:1"],
        ["tc", "filter", "add", "dev", ifname, "parent", "1:", "protocol", "ipv6", "prio", "2", "u32",
         "match", "ip6", "protocol", "58", "0xff", "flowid", "1:1"],
    ]  # fmt: skip


@contextlib.contextmanager
def paced(run: Any, node: Any, ifname: str, pps: float | None, size: int) -> Iterator[None]:
    """While the block runs, ``ifname`` sends at most ``pps`` frames a second, evenly
    (None: unpaced, as fast as the sender goes)."""
    if pps is None:
        yield
        return
    try:
        for argv in pace_argvs(ifname, pps, size):
            run(node, argv)
        yield
    finally:
        run(node, ["tc", "qdisc", "del", "dev", ifname, "root"], check=False)
