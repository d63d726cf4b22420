"""edge-basic forwarding, end to end: real frames from real host namespaces.

Each test says what a host sends, where it must (and must not) arrive, and
what the gateway must have counted.  Addresses come from the topology plan.
"""

from __future__ import annotations

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.packet import Raw

from suites.lib import traffic
from suites.lib.expect import ANY, expect_state, poll
from suites.lib.gateway import drop_count, drops_delta
from suites.lib.plans import addr as _addr
from suites.lib.plans import router_port

MARK_TYPE = 0x88B5  # IEEE local experimental EtherType: frames no host stack answers


def _marked(frames: list[Ether], marker: bytes) -> list[Ether]:
    return [f for f in frames if marker in bytes(f)]


@pytest.mark.needs("switching")
def test_l2_inside_instance_crosses_gateway(lab, plan, gw):
    """t1 (VLAN 10 on the trunk) and t4 (untagged access port) share instance web."""
    result = traffic.ping(lab.host("t1"), _addr(plan, "t4"), count=3)
    assert result.ok, result.text
    assert result.ttls and all(t == 64 for t in result.ttls), f"switched, not routed: {result.ttls}"
    if "internals.show" not in gw.capabilities:
        return
    expect_state(
        lambda: gw.show("mac"),
        [
            {"instance": "web", "mac": plan["hosts"]["t1"]["mac"], "port": "trunk", "vlan": 10},
            {"instance": "web", "mac": plan["hosts"]["t4"]["mac"], "port": "access", "vlan": None},
        ],
        what="MAC table learned both hosts in instance web",
    )


@pytest.mark.needs("switching")
def test_broadcast_stays_in_its_instance(lab, plan):
    """A VLAN 10 broadcast reaches web's hosts (t1, t4) and never app's (t3) or the provider."""
    probe = lab.host("probe")
    marker = b"edgelab-isolation-web"
    frame = (
        Ether(dst="ff:ff:ff:ff:ff:ff", src=plan["probes"]["probe"]["mac"])
        / Dot1Q(vlan=10, type=MARK_TYPE)
        / Raw(marker)
    )
    caps = {}
    names = ("t1", "t3", "t4", "ext1")
    for name in names:
        caps[name] = traffic.Capture(lab.host(name), lab.host(name).defaultIntf().name, seconds=3, max_frames=200)
    traffic.send(probe, [frame] * 3, gap_ms=20)
    got = {name: _marked(cap.stop(), marker) for name, cap in caps.items()}
    assert got["t1"], "t1 is in web (VLAN 10 access port) and must see the broadcast"
    assert got["t4"], "t4 is in web (untagged on the gateway's access port) and must see the broadcast"
    assert all(Dot1Q not in f for f in got["t4"]), "the gateway must pop VLAN 10 towards the untagged access port"
    assert not got["t3"], "t3 is in app: a web broadcast leaked into another instance"
    assert not got["ext1"], "ext1 is on the provider segment: a web broadcast leaked out of the instance"


@pytest.mark.needs("switching", "counters")
def test_unknown_vlan_is_dropped_and_counted(lab, plan, gw):
    probe = lab.host("probe")
    marker = b"edgelab-vlan-99"
    before = gw.counters()["dropped"]["no-instance"]
    frame = (
        Ether(dst="ff:ff:ff:ff:ff:ff", src=plan["probes"]["probe"]["mac"])
        / Dot1Q(vlan=99, type=MARK_TYPE)
        / Raw(marker)
    )
    caps = {
        name: traffic.Capture(lab.host(name), lab.host(name).defaultIntf().name, seconds=3, max_frames=200)
        for name in ("t4", "ext1")
    }
    traffic.send(probe, [frame] * 5, gap_ms=10)
    poll(
        lambda: gw.counters()["dropped"]["no-instance"] - before >= 5,
        timeout=5,
        what="5 drops counted as no-instance",
    )
    for name, cap in caps.items():
        assert not _marked(cap.stop(), marker), f"a VLAN 99 frame (no record) reached {name}"


@pytest.mark.needs("routing")
def test_routing_between_instances(lab, plan):
    result = traffic.ping(lab.host("t1"), _addr(plan, "t3"), count=3)
    assert result.ok, result.text
    assert all(t == 63 for t in result.ttls), f"one routed hop (the DR) expected: ttls {result.ttls}"
    back = traffic.ping(lab.host("t3"), _addr(plan, "t4"), count=2)
    assert back.ok, back.text


@pytest.mark.needs("routing", "nat.snat", "nat.one_to_one")
def test_north_south_to_provider(lab, plan):
    out = traffic.ping(lab.host("t1"), _addr(plan, "ext1"), count=3)
    assert out.ok, out.text
    assert all(t == 62 for t in out.ttls), f"DR and SR are two hops: ttls {out.ttls}"
    beyond = traffic.ping(lab.host("t3"), _addr(plan, "ext2"), count=2)
    assert beyond.ok, beyond.text
    assert all(t == 61 for t in beyond.ttls), f"DR, SR and the provider router: ttls {beyond.ttls}"
    inbound = traffic.ping(lab.host("ext2"), plan["nat"]["one_to_one"]["t2"], count=3)
    assert inbound.ok, "inbound to t2's 1:1 address: " + inbound.text


@pytest.mark.needs("routing")
def test_router_answers_arp_and_ping(lab, plan, gw):
    router = plan["gateways"]["edge1"]["routers"][0]
    web_port = router["dr"]["ports"][0]
    uplink = router["sr"]["ports"][0]
    t1, ext1 = lab.host("t1"), lab.host("ext1")
    r1 = traffic.ping(t1, web_port["ip"].split("/")[0], count=2)
    assert r1.ok, r1.text
    assert traffic.neighbour_mac(t1, web_port["ip"].split("/")[0]) == web_port["mac"]
    r2 = traffic.ping(ext1, uplink["ip"].split("/")[0], count=2)
    assert r2.ok, r2.text
    assert traffic.neighbour_mac(ext1, uplink["ip"].split("/")[0]) == uplink["mac"]
    # The other DR port answers too (from t1, through the DR).
    r3 = traffic.ping(t1, router["dr"]["ports"][1]["ip"].split("/")[0], count=2)
    assert r3.ok, r3.text


@pytest.mark.needs("routing")
def test_arp_request_on_the_wire(lab, plan):
    """The router's ARP reply, as it appears on the wire to a crafted request."""
    probe = lab.host("probe")
    router_ip = plan["routers"]["t1"]["dr"]["web"]
    req = (
        Ether(dst="ff:ff:ff:ff:ff:ff", src=plan["probes"]["probe"]["mac"])
        / Dot1Q(vlan=10)
        / ARP(op=1, hwsrc=plan["probes"]["probe"]["mac"], psrc="172.16.10.99", pdst=router_ip)
    )
    cap = traffic.Capture(probe, probe.defaultIntf().name, seconds=3, max_frames=50)
    traffic.send(probe, [req])
    replies = [f for f in cap.stop() if ARP in f and f[ARP].op == 2 and f[ARP].psrc == router_ip]
    assert replies, "no ARP reply from the router"
    reply = replies[0]
    assert reply[Dot1Q].vlan == 10
    assert reply[ARP].hwsrc == router_port(plan, "web")["mac"]
    assert reply[ARP].pdst == "172.16.10.99"


@pytest.mark.needs("routing", "counters")
def test_ttl_expiry_gives_time_exceeded(lab, plan, gw):
    before = gw.counters()["dropped"]["ttl"]
    result = traffic.ping(lab.host("t1"), _addr(plan, "ext1"), count=1, ttl=1)
    assert not result.ok
    assert result.errors, f"no ICMP error reported: {result.text}"
    source, message = result.errors[0]
    assert source == plan["routers"]["t1"]["dr"]["web"], (
        f"time exceeded must come from the DR's web port, came from {source}"
    )
    assert "Time to live exceeded" in message
    poll(lambda: gw.counters()["dropped"]["ttl"] > before, what="a ttl drop counted")


@pytest.mark.needs("routing", "route.runtime")
def test_no_route_gives_unreachable(lab, plan, gw):
    """With the default route removed at run time, 10.99.1.1 has no route: net unreachable."""
    from topologies.nodes import run

    ext1 = lab.host("ext1")
    gw.del_route("0.0.0.0/0")
    run(ext1, ["ip", "route", "replace", "10.99.0.0/16", "via", plan["routers"]["t1"]["sr"]["uplink"]])
    try:
        result = traffic.ping(ext1, "10.99.1.1", count=1)
    finally:
        run(ext1, ["ip", "route", "del", "10.99.0.0/16"])
        gw.add_route("0.0.0.0/0", _addr(plan, "ext1"))
    assert not result.ok
    assert result.errors and "Unreachable" in result.errors[0][1], result.text
    after = traffic.ping(lab.host("t1"), _addr(plan, "ext2"), count=1)
    assert after.ok, "default route not restored: " + after.text


@pytest.mark.needs("routing", "nat.snat")
def test_tcp_transfer_through_gateway(lab, plan):
    """1 MiB over TCP from a tenant to the provider: every byte arrives, checksums right."""
    res = traffic.tcp_transfer(lab.host("t1"), lab.host("ext1"), _addr(plan, "ext1"), nbytes=1 << 20)
    assert res["server"]["bytes"] == 1 << 20
    assert res["server"]["sha256"] == res["client"]["sha256"] == res["client"]["server_sha256"]
    assert res["server"]["peer"] in plan["nat"]["pool"], "the provider sees the SNAT pool, not the tenant"


@pytest.mark.needs("routing", "nat.snat")
def test_udp_checksum_survives_routing(lab, plan):
    """A UDP datagram from t3 arrives at ext1 with a valid checksum and TTL 62."""
    t3, ext1 = lab.host("t3"), lab.host("ext1")
    traffic.ping(t3, _addr(plan, "ext1"), count=1)  # resolve ARP on the way
    marker = b"edgelab-udp-checksum"
    head = Ether(dst=router_port(plan, "app")["mac"], src=plan["hosts"]["t3"]["mac"])
    dgram = (
        head / IP(src=_addr(plan, "t3"), dst=_addr(plan, "ext1"), ttl=64) / UDP(sport=40000, dport=40001) / Raw(marker)
    )
    cap = traffic.Capture(ext1, ext1.defaultIntf().name, seconds=3, max_frames=100)
    traffic.send(t3, [dgram])
    got = _marked(cap.stop(), marker)
    assert got, "the datagram did not reach ext1"
    pkt = got[0]
    assert pkt[IP].ttl == 62
    assert pkt[IP].src in plan["nat"]["pool"]
    received = pkt[UDP].chksum
    pkt[UDP].chksum = None
    assert IP(bytes(pkt[IP]))[UDP].chksum == received, "UDP checksum wrong after routing"


@pytest.mark.needs("routing", "counters", "internals.show")
def test_malformed_burst_is_counted_and_survived(lab, plan, gw):
    """Truncated, bad-IHL, bad-length, bad-checksum and bad-version frames: dropped by name, daemon alive."""
    probe = lab.host("probe")
    router_mac = router_port(plan, "web")["mac"]
    head = Ether(dst=router_mac, src=plan["probes"]["probe"]["mac"]) / Dot1Q(vlan=10, type=0x0800)
    good = bytes(IP(src="172.16.10.99", dst=_addr(plan, "ext1")) / ICMP())
    bad_csum = bytearray(good)
    bad_csum[10] ^= 0xFF
    bad_ihl = bytearray(good)
    bad_ihl[0] = 0x43
    bad_len = bytearray(good)
    bad_len[2:4] = (200).to_bytes(2, "big")
    bad_version = bytearray(good)
    bad_version[0] = 0x65
    cases = {
        "dr/ip-bad-checksum": bytes(head / Raw(bytes(bad_csum))),
        "dr/ip-bad-ihl": bytes(head / Raw(bytes(bad_ihl))),
        "dr/ip-bad-length": bytes(head / Raw(bytes(bad_len))),
        "dr/ip-bad-version": bytes(head / Raw(bytes(bad_version))),
        "dr/ip-truncated": bytes(head) + good[:12],
        "dr/arp-truncated": bytes(head)[:-2] + b"\x08\x06" + b"\x00\x01\x08\x00\x06\x04",
    }
    n = 20
    before = {reason: drop_count(gw, reason) for reason in cases}
    traffic.send(probe, [frame for frame in cases.values() for _ in range(n)])
    poll(
        lambda: all(drop_count(gw, r) - before[r] >= n for r in cases),
        timeout=10,
        what=f"{n} drops counted for each of {', '.join(cases)}",
    )
    assert drops_delta(gw, before) == {r: n for r in cases}
    assert gw.alive()
    expect_state(lambda: gw.show("counters"), {"pipeline": {"internal_errors": 0}})
    after = traffic.ping(lab.host("t1"), _addr(plan, "ext1"), count=2)
    assert after.ok, "forwarding broken after the malformed burst: " + after.text


@pytest.mark.needs("internals.trace")
def test_trace_shows_each_stage(lab, plan, gw):
    router_mac = router_port(plan, "web")["mac"]
    frame = (
        Ether(dst=router_mac, src=plan["hosts"]["t1"]["mac"])
        / Dot1Q(vlan=10)
        / IP(src=_addr(plan, "t1"), dst=_addr(plan, "t3"), ttl=9)
        / UDP(sport=1, dport=9)
    )
    record = gw.trace_inject("trunk", bytes(frame))
    stages = [step.split(":")[0] for step in record["steps"]]
    assert stages[:3] == ["classify", "l2switch", "dr"], record
    assert stages[-1] == "egress", record
    assert record["verdict"] == "forwarded"
    expect_state(lambda: gw.show("traces"), [{"packet": ANY, "verdict": "forwarded"}])


@pytest.mark.needs("routing")
def test_router_answers_arp_only_on_the_segment_of_the_address(lab, plan):
    """Asked on VLAN 20 (app) for web's gateway address, the gateway says nothing; asked on
    VLAN 10 it answers: an address is answered only where it lives."""
    probe = lab.host("probe")
    mac = plan["probes"]["probe"]["mac"]
    web_gw = router_port(plan, "web")["ip"]

    def ask(vlan: int, src_ip: str) -> list:
        req = (
            Ether(dst="ff:ff:ff:ff:ff:ff", src=mac) / Dot1Q(vlan=vlan) / ARP(op=1, hwsrc=mac, psrc=src_ip, pdst=web_gw)
        )
        cap = traffic.Capture(probe, probe.defaultIntf().name, seconds=3, max_frames=50)
        traffic.send(probe, [req])
        return [f for f in cap.stop() if ARP in f and f[ARP].op == 2 and f[ARP].psrc == web_gw]

    assert not ask(20, "172.16.20.98"), "web's gateway address answered on app's segment"
    assert ask(10, "172.16.10.98"), "and it is answered where it lives"
