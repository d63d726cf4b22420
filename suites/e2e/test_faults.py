"""Faults under traffic (edge-basic): the gateway restarted, its uplink flapped, while a
tenant's flow runs; judged by the flow as the hosts see it.

A probe pings from t1 to ext2 (through the DR, the SR and its SNAT) every 20 ms;
the loss window is its longest silence (``traffic.probe_gap``).
"""

from __future__ import annotations

import subprocess
import time
from typing import Any

import pytest

from suites.lib import traffic
from topologies.nodes import run

EXT2 = "198.51.100.10"
INTERVAL = 0.02


def probe(lab: Any, seconds: float) -> subprocess.Popen[bytes]:
    count = int(seconds / INTERVAL)
    return lab.host("t1").popen(
        ["ping", "-n", "-D", "-i", str(INTERVAL), "-c", str(count), "-W", "1", EXT2],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def window(proc: subprocess.Popen[bytes]) -> tuple[float, int]:
    out, _ = proc.communicate(timeout=60)
    gap, seqs = traffic.probe_gap(out, INTERVAL)
    return gap, len(seqs)


@pytest.mark.needs("routing", "nat.snat", "fault.crash")
def test_the_flow_resumes_after_the_gateway_restarts(lab: Any) -> None:
    assert traffic.ping(lab.host("t1"), EXT2, count=2).ok
    p = probe(lab, 8.0)
    time.sleep(1.5)
    lab.start_gateway("edge1")  # stops the running one, starts it again
    gap, replies = window(p)
    print(f"restart: loss window {gap:.2f} s")
    # Everything the gateway knew (ARP, MACs, NAT sessions) is relearned from the traffic.
    assert replies > 100 and gap < 4.0, f"loss window {gap:.2f} s, {replies} replies"
    assert traffic.ping(lab.host("t1"), EXT2, count=3).ok


@pytest.mark.needs("routing", "nat.snat")
def test_the_flow_resumes_after_the_uplink_flaps(lab: Any) -> None:
    ext1 = lab.host("ext1")
    intf = lab.intf_towards("ext1", "edge1")
    p = probe(lab, 6.0)
    try:
        time.sleep(1.0)
        run(ext1, ["ip", "link", "set", intf, "down"])
        time.sleep(1.5)
    finally:
        run(ext1, ["ip", "link", "set", intf, "up"])
    gap, replies = window(p)
    print(f"uplink flap: loss window {gap:.2f} s")
    # Down for 1.5 s: the flow is back within a second of the link.
    assert replies > 50 and gap < 1.5 + 1.0, f"loss window {gap:.2f} s, {replies} replies"
    assert lab.gateway("edge1").alive()
    assert traffic.ping(lab.host("t1"), EXT2, count=3).ok


@pytest.mark.needs("routing", "nat.snat", "fw.reject", "config.reload")
def test_a_broken_config_on_reload_changes_nothing_and_a_good_one_applies(lab: Any, gw: Any) -> None:
    """Under traffic: a truncated configuration is refused whole (the flow does not notice, the
    running firewall still rejects telnet); the configuration given back applies again."""
    good = gw.config_text()
    p = probe(lab, 5.0)
    try:
        time.sleep(1.0)
        why = gw.reload(good[: len(good) // 2])
        assert why, "a configuration cut in half was accepted"
        time.sleep(1.0)
    finally:
        gap, replies = window(p)
        back = gw.reload(good)
    print(f"broken reload refused ({why.splitlines()[0][:120]}); loss window {gap:.2f} s")
    assert back is None, f"the good configuration was refused: {back}"
    assert replies > 150 and gap < 1.0, f"the flow noticed the refused reload: {gap:.2f} s, {replies} replies"
    # The running configuration stayed in force, and stays after the good one: telnet is still
    # rejected (ICMP administratively prohibited: the client's "No route to host").
    tried = traffic.tcp_connect(lab.host("t1"), EXT2, 23)
    assert tried.get("errno") == 113, f"telnet out was not rejected: {tried}"
    assert traffic.ping(lab.host("t1"), EXT2, count=2).ok


@pytest.mark.needs("internals.show", "config.reload")
def test_sighup_reloads_the_config_file(lab: Any, gw: Any) -> None:
    import os
    import signal

    import yaml

    from suites.lib.expect import poll

    good = gw.config_text()
    raw = yaml.safe_load(good)
    rule = {"name": "no-smtp-out", "action": "reject", "direction": "out", "proto": "tcp", "dport": 25}
    raw["routers"][0]["sr"]["firewall"]["rules"].append(rule)
    gw.config.write_text(yaml.safe_dump(raw))
    try:
        os.kill(gw.proc.pid, signal.SIGHUP)
        names = lambda: [r["name"] for r in gw.show("firewall")["t1"]["rules"]]  # noqa: E731
        poll(lambda: "no-smtp-out" in names() or None, timeout=5, what="the rule from the file after SIGHUP")
        assert "config reloaded" in gw.log_text(), gw.log_text()[-1000:]
    finally:
        assert gw.reload(good) is None
    assert "no-smtp-out" not in [r["name"] for r in gw.show("firewall")["t1"]["rules"]]
