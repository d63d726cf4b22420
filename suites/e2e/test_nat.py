"""NAT and firewall on edge-basic, end to end: what the provider sees, what gets in.

The provider (ext1, and ext2 behind it) has no route to the tenant prefixes:
every flow crosses the SR's NAT.  Expected translations come from the plan.
"""

from __future__ import annotations

import time

import pytest
from scapy.layers.inet import ICMP, IP

from suites.lib import traffic
from suites.lib.expect import poll
from suites.lib.gateway import drop_count
from suites.lib.plans import addr
from topologies.nodes import run


@pytest.mark.needs("nat.snat")
def test_provider_sees_pool_address(lab, plan):
    ext1 = lab.host("ext1")
    with traffic.capture(ext1, seconds=5) as cap:
        result = traffic.ping(lab.host("t1"), addr(plan, "ext1"), count=2)
    assert result.ok, result.text
    requests = [f for f in cap.frames if ICMP in f and f[ICMP].type == 8 and f[IP].dst == addr(plan, "ext1")]
    assert requests, "no echo request captured on ext1"
    assert {f[IP].src for f in requests} <= set(plan["nat"]["pool"]), [f[IP].src for f in requests]


@pytest.mark.needs("nat.snat")
def test_two_tenants_same_source_port(lab, plan):
    """t1 and t3 both send from UDP port 5555: distinct public endpoints, both get their answer."""
    echo = traffic.UdpEcho(lab.host("ext1"), 9999)
    try:
        a = traffic.udp_probe(lab.host("t1"), addr(plan, "ext1"), 9999, sport=5555)
        b = traffic.udp_probe(lab.host("t3"), addr(plan, "ext1"), 9999, sport=5555)
    finally:
        peers = echo.stop()
    assert a["ok"] and b["ok"], (a, b)
    assert len(peers) == 2 and peers[0] != peers[1], f"the provider saw {peers}"
    assert {p[0] for p in peers} <= set(plan["nat"]["pool"])


@pytest.mark.needs("nat.dnat")
def test_port_forward_from_provider(lab, plan):
    rule = plan["nat"]["dnat"]["t3-http"]
    res = traffic.tcp_transfer(
        lab.host("ext2"),
        lab.host(rule["host"]),
        rule["public"],
        nbytes=256 * 1024,
        port=rule["port"],
        listen_port=rule["to_port"],
    )
    assert res["server"]["sha256"] == res["client"]["sha256"]
    assert res["server"]["peer"] == addr(plan, "ext2"), "inbound DNAT keeps the client's own address"


@pytest.mark.needs("nat.one_to_one")
def test_one_to_one_both_directions(lab, plan):
    public = plan["nat"]["one_to_one"]["t2"]
    inbound = traffic.ping(lab.host("ext1"), public, count=2)
    assert inbound.ok, inbound.text
    echo = traffic.UdpEcho(lab.host("ext1"), 9998)
    try:
        out = traffic.udp_probe(lab.host("t2"), addr(plan, "ext1"), 9998, sport=7000)
    finally:
        peers = echo.stop()
    assert out["ok"], out
    assert peers == [(public, 7000)], f"t2 must leave as its 1:1 address with its own port, provider saw {peers}"


@pytest.mark.needs("nat.dnat", "nat.hairpin")
def test_hairpin_to_port_forward(lab, plan):
    """t1 reaches t3 through t3's public address and port."""
    rule = plan["nat"]["dnat"]["t3-http"]
    res = traffic.tcp_transfer(
        lab.host("t1"),
        lab.host(rule["host"]),
        rule["public"],
        nbytes=64 * 1024,
        port=rule["port"],
        listen_port=rule["to_port"],
    )
    assert res["server"]["sha256"] == res["client"]["sha256"]
    assert res["server"]["peer"] in plan["nat"]["pool"], "hairpin traffic is SNAT'd so the reply returns through the SR"


@pytest.mark.needs("routing", "nat.snat")
def test_traceroute_through_snat(lab, plan):
    """TTL 3 from t1 to ext2 expires at the provider router, beyond the NAT: its error is translated back."""
    result = traffic.ping(lab.host("t1"), addr(plan, "ext2"), count=1, ttl=3)
    assert result.errors, result.text
    source, message = result.errors[0]
    assert source == addr(plan, "ext1") and "Time to live exceeded" in message, result.text
    hops = [traffic.ping(lab.host("t1"), addr(plan, "ext2"), count=1, ttl=ttl) for ttl in (1, 2, 3, 4)]
    assert [h.errors[0][0] if h.errors else ("reply" if h.ok else None) for h in hops] == [
        plan["routers"]["t1"]["dr"]["web"],
        "169.254.0.2",
        addr(plan, "ext1"),
        "reply",
    ]


@pytest.mark.needs("routing", "nat.snat")
def test_path_mtu_through_snat(lab, plan):
    """A 1500-byte DF packet towards ext2 meets the provider's 1400-byte link: frag-needed comes back through NAT."""
    t1 = lab.host("t1")
    run(t1, ["ip", "route", "flush", "cache"], check=False)
    res = run(t1, ["ping", "-n", "-c", "1", "-W", "2", "-M", "do", "-s", "1472", addr(plan, "ext2")], check=False)
    text = res.stdout + res.stderr
    assert "mtu = 1400" in text or "mtu=1400" in text, text
    small = traffic.ping(t1, addr(plan, "ext2"), count=1)
    assert small.ok, small.text


@pytest.mark.needs("fw.stateful", "counters")
def test_unsolicited_inbound_is_blocked(lab, plan, gw):
    ext1 = lab.host("ext1")
    run(ext1, ["ip", "route", "replace", "172.16.0.0/16", "via", plan["routers"]["t1"]["sr"]["uplink"]])
    before = gw.counters()["dropped"]["firewall"]
    try:
        result = traffic.ping(ext1, addr(plan, "t1"), count=2)
    finally:
        run(ext1, ["ip", "route", "del", "172.16.0.0/16"])
    assert result.received == 0, "an unsolicited ping reached a tenant: " + result.text
    poll(lambda: gw.counters()["dropped"]["firewall"] - before >= 2, what="2 drops counted as firewall")


@pytest.mark.needs("fw.reject", "counters")
def test_telnet_out_is_rejected(lab, plan, gw):
    before = gw.counters()["dropped"]["firewall"]
    res = traffic.tcp_connect(lab.host("t1"), addr(plan, "ext1"), plan["nat"]["firewall"]["rejected_out"]["port"])
    assert res.get("error"), res
    assert "No route to host" in res["error"] or res.get("errno") == 113, res
    poll(lambda: gw.counters()["dropped"]["firewall"] > before, what="the reject counted as a firewall drop")


@pytest.mark.needs("fw.runtime", "counters")
def test_rule_added_at_runtime_blocks_a_running_flow(lab, plan, gw):
    """A ping stream runs; a drop rule lands; the stream stops at once; the rule goes; it resumes."""
    t1 = lab.host("t1")
    stream = traffic.PingStream(t1, addr(plan, "ext1"))
    try:
        time.sleep(1.0)  # the flow runs (and is tracked) before the rule lands
        before = gw.counters()["dropped"]["firewall"]
        gw.add_firewall_rule(
            {"name": "runtime-block", "action": "drop", "proto": "icmp", "dst": f"{addr(plan, 'ext1')}/32"},
            position=0,
        )
        poll(
            lambda: gw.counters()["dropped"]["firewall"] - before >= 5,
            timeout=5,
            what="the running flow dropped by the new rule",
        )
        # The counter is the gateway's word; the proof is the stream's loss.  A gateway may
        # credit a new rule with packets its datapath still forwarded on the old decision
        # (Open vSwitch does, until its revalidators catch up), so the rule stays in for
        # half a second (ten pings) before it goes.
        time.sleep(0.5)
        gw.del_firewall_rule("runtime-block")
        stats = stream.result()
    finally:
        stream.stop()
    assert 0 < stats.received < stats.sent, f"expected some loss while the rule was in: {stats.received}/{stats.sent}"
    assert traffic.ping(t1, addr(plan, "ext1"), count=1).ok, "flow did not resume after the rule was removed"


@pytest.mark.needs("nat.runtime", "counters", "internals.show")
def test_pool_exhaustion_is_counted_and_reported(lab, plan, gw):
    t4 = lab.host("t4")
    rule = {"name": "tiny-pool", "source": f"{addr(plan, 't4')}/32", "pool": ["203.0.113.70"], "ports": "6000-6002"}
    gw.add_nat_rule("snat", rule)
    before = drop_count(gw, "sr/nat-pool-exhausted")
    echo = traffic.UdpEcho(lab.host("ext1"), 9997)
    try:
        answers = [traffic.udp_probe(t4, addr(plan, "ext1"), 9997, sport=20000 + i, timeout=1) for i in range(5)]
        pool = next(p for p in gw.show("nat")["t1"]["pools"] if p["rule"] == "tiny-pool")
    finally:
        peers = echo.stop()
        gw.del_nat_rule("tiny-pool")
    assert [a["ok"] for a in answers] == [True, True, True, False, False]
    assert sorted(p[1] for p in peers) == [6000, 6001, 6002] and {p[0] for p in peers} == {"203.0.113.70"}
    assert drop_count(gw, "sr/nat-pool-exhausted") - before == 2
    assert pool["used"]["udp"] == 3 and pool["capacity_per_protocol"] == 3


@pytest.mark.needs("internals.show")
def test_show_nat_and_conntrack(lab, plan, gw):
    traffic.ping(lab.host("t3"), addr(plan, "ext1"), count=1)
    nat = gw.show("nat")["t1"]
    assert nat["public_addresses"] and set(plan["nat"]["pool"]) <= set(nat["public_addresses"])
    assert any(s["proto"] == "icmp" and s["orig"].startswith(addr(plan, "t3")) for s in nat["sessions"]), nat[
        "sessions"
    ]
    ct = gw.show("conntrack")["t1"]
    assert ct["count"] >= 1 and all({"state", "orig", "reply", "expires_in"} <= e.keys() for e in ct["entries"])
