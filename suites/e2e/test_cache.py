"""The reference gateway's datapath cache with real traffic: hits after the
first packet, no stale entry after a table change, TCP set-up and tear-down
through the slow path, the capacity bound under many flows."""

from __future__ import annotations

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import ARP, Ether

from suites.lib import traffic
from suites.lib.expect import poll
from suites.lib.plans import addr, router_port
from topologies.nodes import run

# The cache is the reference gateway's own: other DUTs are not judged on it.
pytestmark = pytest.mark.needs("internals.cache", "internals.show")


@pytest.fixture
def cache(gw):
    gw.request({"cmd": "cache", "action": "flush"})
    yield gw
    gw.request({"cmd": "cache", "action": "set", "capacity": 65536, "idle_timeout": 10})


def counters(gw):
    return gw.show("cache")["counters"]


def test_first_packet_misses_the_rest_hit(lab, plan, cache):
    gw = cache
    gw.request({"cmd": "trace", "action": "clear"})
    traffic.ping(lab.host("t3"), addr(plan, "ext2"), count=1)  # neighbours resolved: no ARP miss in the traces
    gw.request({"cmd": "cache", "action": "flush"})
    gw.request({"cmd": "trace", "action": "start", "count": 30})
    result = traffic.ping(lab.host("t3"), addr(plan, "ext2"), count=5, interval=0.05)
    assert result.ok, result.text
    requests = [t for t in gw.show("traces") if t["port"] == "trunk" and "icmp type 8" in t["packet"]]
    assert len(requests) == 5, requests
    first = [t["steps"][0] for t in requests]
    assert first[0] == "cache: miss" and any(s.startswith("cache: installed") for s in requests[0]["steps"]), requests[
        0
    ]
    assert all(s.startswith("cache: hit") for s in first[1:]), first
    entries = gw.show("cache")["entries"]
    assert any(e["match"] == "l4" and addr(plan, "t3") in e["key"] and e["hits"] >= 4 for e in entries), entries


def test_route_change_takes_effect_on_next_packet(lab, plan, cache):
    gw = cache
    t1, t3, ext1 = lab.host("t1"), lab.host("t3"), lab.host("ext1")
    frame = (
        Ether(src=plan["hosts"]["t1"]["mac"], dst=router_port(plan, "web")["mac"])
        / IP(src=addr(plan, "t1"), dst="10.50.1.1")
        / UDP(sport=3333, dport=4444)
        / b"edgelab-route-change"
    )
    with traffic.capture(ext1, seconds=5) as before:
        traffic.send(t1, [frame] * 3, gap_ms=20)
    assert len([f for f in before.frames if b"edgelab-route-change" in bytes(f)]) == 3, "went out the uplink first"
    assert counters(gw)["hits"] >= 2
    gw.request(
        {
            "cmd": "route",
            "action": "add",
            "router": "t1",
            "half": "dr",
            "prefix": "10.50.0.0/16",
            "via": addr(plan, "t3"),
        }
    )
    try:
        with traffic.capture(t3, seconds=5) as after:
            traffic.send(t1, [frame])
    finally:
        gw.request({"cmd": "route", "action": "del", "router": "t1", "half": "dr", "prefix": "10.50.0.0/16"})
    assert [f for f in after.frames if b"edgelab-route-change" in bytes(f)], (
        "the very next packet must follow the new route"
    )


def test_neighbour_mac_move_takes_effect_on_next_packet(lab, plan, cache):
    """ext1 changes its MAC and announces it: the same flow's next packet goes to the new MAC."""
    gw = cache
    ext1, t1 = lab.host("ext1"), lab.host("t1")
    intf = lab.intf_towards("ext1", "edge1")
    old_mac, new_mac = plan["hosts"]["ext1"]["mac"], "02:00:00:cb:00:99"
    echo = traffic.UdpEcho(ext1, 9994)
    # One flow (one 5-tuple, so one cache entry) before and after the move.
    try:
        for _ in range(3):
            assert traffic.udp_probe(t1, addr(plan, "ext1"), 9994, sport=24444, timeout=1)["ok"]
    finally:
        echo.stop()
    before = counters(gw)
    assert before["hits"] >= 2, "the flow is served from the cache before the move"
    try:
        run(ext1, ["ip", "link", "set", intf, "address", new_mac])
        garp = Ether(src=new_mac, dst="ff:ff:ff:ff:ff:ff") / ARP(
            op=2, hwsrc=new_mac, psrc=addr(plan, "ext1"), hwdst="ff:ff:ff:ff:ff:ff", pdst=addr(plan, "ext1")
        )
        traffic.send(ext1, [garp], iface=intf)
        poll(lambda: any(r["mac"] == new_mac for r in gw.show("arp")), what="the SR learned ext1's new MAC")
        echo = traffic.UdpEcho(ext1, 9994)
        cap = traffic.Capture(ext1, intf, seconds=10, max_frames=200)
        try:
            answer = traffic.udp_probe(t1, addr(plan, "ext1"), 9994, sport=24444, timeout=1)
        finally:
            frames = cap.stop()
            echo.stop()
        to_ext1 = [f for f in frames if UDP in f and f[UDP].dport == 9994]
        assert answer["ok"] and to_ext1, "stale cache entry: the flow's next packet went to the old MAC"
        assert all(f.dst == new_mac for f in to_ext1), [f.dst for f in to_ext1]
        assert counters(gw)["invalidations"] - before["invalidations"] >= 1, "the flow's entry was invalidated"
    finally:
        run(ext1, ["ip", "link", "set", intf, "address", old_mac])
        garp = Ether(src=old_mac, dst="ff:ff:ff:ff:ff:ff") / ARP(
            op=2, hwsrc=old_mac, psrc=addr(plan, "ext1"), hwdst="ff:ff:ff:ff:ff:ff", pdst=addr(plan, "ext1")
        )
        traffic.send(ext1, [garp], iface=intf)
        poll(lambda: any(r["mac"] == old_mac for r in gw.show("arp")), what="ext1's MAC restored")


def test_tcp_set_up_and_close_take_the_slow_path(lab, plan, cache):
    gw = cache
    before = counters(gw)
    res = traffic.tcp_transfer(lab.host("t1"), lab.host("ext1"), addr(plan, "ext1"), nbytes=512 * 1024, port=5002)
    assert res["server"]["sha256"] == res["client"]["sha256"]
    after = counters(gw)
    assert after["bypass"] - before["bypass"] >= 4, "SYN, SYN-ACK, FIN, FIN-ACK always meet the stages"
    assert after["hits"] - before["hits"] > 50, "the data segments in between are cache hits"
    states = {
        e["state"] for e in gw.show("conntrack")["t1"]["entries"] if e["proto"] == "tcp" and e["orig"].endswith(":5002")
    }
    assert states & {"time-wait", "fin-wait", "closed"}, states


def test_capacity_bound_holds_under_many_flows(lab, plan, cache):
    gw = cache
    gw.request({"cmd": "cache", "action": "set", "capacity": 10, "idle_timeout": 30})
    echo = traffic.UdpEcho(lab.host("ext1"), 9996)
    try:
        answers = [
            traffic.udp_probe(lab.host("t4"), addr(plan, "ext1"), 9996, sport=21000 + i, timeout=1) for i in range(25)
        ]
    finally:
        echo.stop()
    assert all(a["ok"] for a in answers)
    c = counters(gw)
    assert c["entries"] <= 10 and c["evictions"] >= 30, c
