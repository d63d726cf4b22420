"""Each stage on synthetic frames, through a datapath on in-memory ports."""

from __future__ import annotations

import time

from scapy.layers.inet import ICMP, IP, UDP, IPerror
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.packet import Raw

from gateway.headers import ipv4_check
from gateway.tables.arp import RETRY_INTERVAL

H1 = "02:00:00:00:00:11"  # web, trunk vlan 10
H3 = "02:00:00:00:00:13"  # app, trunk vlan 20
EXT = "02:00:00:00:00:99"  # provider, uplink
WEB_GW, APP_GW, UP_GW = "02:00:00:00:10:01", "02:00:00:00:20:01", "02:00:00:00:cb:01"


def web(frame_payload, src=H1, dst=WEB_GW, vlan=10):
    return Ether(src=src, dst=dst) / Dot1Q(vlan=vlan) / frame_payload


def learn_ext(rig):
    """Teach the SR where 203.0.113.10 is (as ext1's ARP reply would)."""
    rig.send(
        "uplink",
        bytes(Ether(src=EXT, dst=UP_GW) / ARP(op=2, hwsrc=EXT, psrc="203.0.113.10", hwdst=UP_GW, pdst="203.0.113.1")),
    )


def learn_host(rig, mac, ip, gw_mac, gw_ip, vlan):
    rig.send(
        "trunk",
        bytes(Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") / Dot1Q(vlan=vlan) / ARP(op=1, hwsrc=mac, psrc=ip, pdst=gw_ip)),
    )
    rig.take("trunk")


# -- classify ---------------------------------------------------------------------------
def test_classify_maps_port_and_vlan(rig):
    pkt = rig.send("trunk", bytes(web(Raw(b"x" * 40), dst="ff:ff:ff:ff:ff:ff")))
    assert pkt.instance.name == "web"
    pkt = rig.send("uplink", bytes(Ether(src=EXT, dst="ff:ff:ff:ff:ff:ff", type=0x88B5) / Raw(b"y" * 40)))
    assert pkt.instance.name == "provider"


def test_classify_drops_unknown_vlan_and_untagged_trunk(rig):
    rig.send("trunk", bytes(web(Raw(b"x" * 40), vlan=99)))
    rig.send("trunk", bytes(Ether(src=H1, dst="ff:ff:ff:ff:ff:ff", type=0x88B5) / Raw(b"x" * 40)))
    rig.send("uplink", bytes(Ether(src=EXT, dst=UP_GW) / Dot1Q(vlan=10) / Raw(b"x" * 40)))
    assert rig.drops() == {"classify/no-service-instance": 3}
    assert not any(rig.take(p) for p in ("trunk", "uplink"))


def test_classify_drops_runt(rig):
    rig.dp.receive(rig.port("trunk"), bytearray(b"\x01\x02\x03"), None)
    assert rig.drops() == {"classify/runt": 1}


# -- l2switch ---------------------------------------------------------------------------
def test_flood_stays_inside_instance():
    from suites.unit.conftest import EDGE_YAML, Rig

    # Put web on the uplink too (VLAN 10 there), so a flood has somewhere to go.
    rig = Rig(
        EDGE_YAML.replace(
            "provider: {records: [{port: uplink}]}",
            "provider: {records: [{port: uplink}]}\n  web2: {records: [{port: uplink, vlan: 20}]}",
        ).replace(
            "web: {records: [{port: trunk, vlan: 10}]}",
            "web: {records: [{port: trunk, vlan: 10}, {port: uplink, vlan: 10}]}",
        )
    )
    rig.send("trunk", bytes(web(Raw(b"hello" * 10), dst="ff:ff:ff:ff:ff:ff")))
    out = [Ether(f) for f in rig.take("uplink")]
    assert [f[Dot1Q].vlan for f in out] == [10], "flooded once, into web's other member only, tagged 10"
    assert not rig.take("trunk"), "never back out the member it came in on"


def test_learning_then_unicast_and_same_segment_drop():
    from suites.unit.conftest import EDGE_YAML, Rig

    rig = Rig(
        EDGE_YAML.replace(
            "web: {records: [{port: trunk, vlan: 10}]}",
            "web: {records: [{port: trunk, vlan: 10}, {port: uplink, vlan: 10}]}",
        )
    )
    other = "02:00:00:00:00:77"
    rig.send("uplink", bytes(Ether(src=other, dst="ff:ff:ff:ff:ff:ff") / Dot1Q(vlan=10) / Raw(b"z" * 40)))
    rig.take("trunk")
    pkt = rig.send("trunk", bytes(web(Raw(b"u" * 40), dst=other)), trace=True)
    assert [Ether(f)[Dot1Q].vlan for f in rig.take("uplink")] == [10]
    assert "learned on uplink" in " ".join(pkt.trace)
    # A frame for a MAC learned on the very member it arrived on goes nowhere.
    rig.send("trunk", bytes(web(Raw(b"v" * 40), src="02:00:00:00:00:55", dst=H1)))
    rig.send("trunk", bytes(web(Raw(b"w" * 40), src="02:00:00:00:00:56", dst="02:00:00:00:00:55")))
    assert rig.drops().get("l2switch/same-segment") == 2
    assert rig.dp.macs.lookup(rig.dp.model.instances["web"], bytes.fromhex("020000000077")).port.name == "uplink"


def test_multicast_source_dropped(rig):
    rig.send("trunk", bytes(web(Raw(b"x" * 40), src="01:00:5e:00:00:01", dst="ff:ff:ff:ff:ff:ff")))
    assert rig.drops() == {"l2switch/multicast-source": 1}


def test_mac_aging(rig):
    rig.send("trunk", bytes(web(Raw(b"x" * 40), dst="ff:ff:ff:ff:ff:ff")))
    assert len(rig.dp.macs) == 1
    rig.dp.macs.age(time.monotonic() + rig.cfg.tables.mac_aging + 1)
    assert len(rig.dp.macs) == 0


# -- dr / sr ----------------------------------------------------------------------------
def test_arp_reply_for_router_port(rig):
    rig.send(
        "trunk",
        bytes(
            Ether(src=H1, dst="ff:ff:ff:ff:ff:ff")
            / Dot1Q(vlan=10)
            / ARP(op=1, hwsrc=H1, psrc="172.16.10.11", pdst="172.16.10.1")
        ),
    )
    (reply,) = [Ether(f) for f in rig.take("trunk")]
    assert reply[Dot1Q].vlan == 10 and reply.dst == H1
    assert reply[ARP].op == 2 and reply[ARP].hwsrc == WEB_GW and reply[ARP].psrc == "172.16.10.1"


def test_arp_for_someone_else_is_not_answered(rig):
    rig.send(
        "trunk",
        bytes(
            Ether(src=H1, dst="ff:ff:ff:ff:ff:ff")
            / Dot1Q(vlan=10)
            / ARP(op=1, hwsrc=H1, psrc="172.16.10.11", pdst="172.16.10.12")
        ),
    )
    assert rig.take("trunk") == []
    assert rig.dp.pipeline.stages["dr"].arp_other == 1


def test_route_between_instances_with_arp_resolution(rig):
    learn_host(rig, H1, "172.16.10.11", WEB_GW, "172.16.10.1", 10)
    rig.send("trunk", bytes(web(IP(src="172.16.10.11", dst="172.16.20.13", ttl=10) / UDP(sport=5, dport=6) / b"data")))
    (req,) = [Ether(f) for f in rig.take("trunk")]
    assert req[Dot1Q].vlan == 20 and req[ARP].pdst == "172.16.20.13" and req[ARP].psrc == "172.16.20.1"
    rig.send(
        "trunk",
        bytes(
            Ether(src=H3, dst=APP_GW)
            / Dot1Q(vlan=20)
            / ARP(op=2, hwsrc=H3, psrc="172.16.20.13", hwdst=APP_GW, pdst="172.16.20.1")
        ),
    )
    (fwd,) = [Ether(f) for f in rig.take("trunk")]
    assert fwd[Dot1Q].vlan == 20 and fwd.dst == H3 and fwd.src == APP_GW
    assert fwd[IP].ttl == 9 and ipv4_check(bytes(fwd[IP]), 0) is None
    assert bytes(fwd[UDP].payload) == b"data"
    # Now resolved: the next packet goes straight out.
    rig.send("trunk", bytes(web(IP(src="172.16.10.11", dst="172.16.20.13", ttl=10) / UDP(sport=5, dport=6) / b"more")))
    assert len(rig.take("trunk")) == 1


def test_arp_queue_bound_and_give_up(rig):
    limit = rig.cfg.tables.arp_queue
    for i in range(limit + 3):
        rig.send("trunk", bytes(web(IP(src="172.16.10.11", dst="172.16.20.50") / UDP(sport=i, dport=9))))
    assert len(rig.take("trunk")) == 1, "one ARP request, not one per packet"
    assert rig.drops() == {"dr/arp-queue-full": 3}
    learn_host(rig, H1, "172.16.10.11", WEB_GW, "172.16.10.1", 10)
    now = time.monotonic()
    for i in range(1, rig.cfg.tables.arp_retries + 1):
        rig.dp.tick(now + i * RETRY_INTERVAL + 0.01)
    out = [Ether(f) for f in rig.take("trunk")]
    retries = [f for f in out if ARP in f]
    unreach = [f for f in out if ICMP in f]
    assert len(retries) == rig.cfg.tables.arp_retries - 1
    assert len(unreach) == limit and all(f[ICMP].type == 3 and f[ICMP].code == 1 for f in unreach)
    assert rig.drops()["dr/arp-unresolved"] == limit


def test_echo_reply_from_router(rig):
    learn_host(rig, H1, "172.16.10.11", WEB_GW, "172.16.10.1", 10)
    rig.send("trunk", bytes(web(IP(src="172.16.10.11", dst="172.16.10.1") / ICMP(id=7, seq=3) / b"ping")))
    (rep,) = [Ether(f) for f in rig.take("trunk")]
    assert rep[IP].src == "172.16.10.1" and rep[ICMP].type == 0 and rep[ICMP].id == 7
    raw = bytes(rep[ICMP])
    rep[ICMP].chksum = None
    assert bytes(ICMP(bytes(rep[ICMP]))) == raw, "echo reply checksum wrong"


def test_echo_reply_with_zero_payload_has_valid_checksum(rig):
    learn_host(rig, H1, "172.16.10.11", WEB_GW, "172.16.10.1", 10)
    rig.send("trunk", bytes(web(IP(src="172.16.10.11", dst="172.16.10.1") / ICMP(id=0, seq=0))))
    (rep,) = [Ether(f) for f in rig.take("trunk")]
    assert rep[ICMP].chksum == 0xFFFF


def test_ttl_expiry_sends_time_exceeded(rig):
    learn_host(rig, H1, "172.16.10.11", WEB_GW, "172.16.10.1", 10)
    rig.send("trunk", bytes(web(IP(src="172.16.10.11", dst="203.0.113.10", ttl=1) / UDP(sport=33434, dport=33434))))
    (err,) = [Ether(f) for f in rig.take("trunk")]
    assert err[IP].src == "172.16.10.1" and err[IP].dst == "172.16.10.11"
    assert err[ICMP].type == 11 and err[IPerror].dst == "203.0.113.10"
    assert rig.drops() == {"dr/ttl-expired": 1}


def test_no_route_sends_unreachable(rig):
    learn_ext(rig)
    rig.send("uplink", bytes(Ether(src=EXT, dst=UP_GW) / IP(src="203.0.113.10", dst="10.9.9.9") / UDP()))
    (err,) = [Ether(f) for f in rig.take("uplink")]
    assert err[ICMP].type == 3 and err[ICMP].code == 0 and err[IP].src == "203.0.113.1"
    assert rig.drops() == {"sr/no-route": 1}


def test_no_icmp_error_about_icmp_error(rig):
    learn_ext(rig)
    inner = IP(src="10.0.0.1", dst="203.0.113.10") / UDP()
    rig.send(
        "uplink",
        bytes(Ether(src=EXT, dst=UP_GW) / IP(src="203.0.113.10", dst="10.9.9.9") / ICMP(type=3, code=1) / inner),
    )
    assert rig.take("uplink") == []
    assert rig.drops() == {"sr/no-route": 1}


def test_north_south_both_ways(rig):
    learn_ext(rig)
    learn_host(rig, H1, "172.16.10.11", WEB_GW, "172.16.10.1", 10)
    rig.send("trunk", bytes(web(IP(src="172.16.10.11", dst="203.0.113.10", ttl=64) / UDP(sport=1, dport=2) / b"out")))
    (out,) = [Ether(f) for f in rig.take("uplink")]
    assert Dot1Q not in out and out.dst == EXT and out.src == UP_GW and out[IP].ttl == 62
    rig.send(
        "uplink",
        bytes(
            Ether(src=EXT, dst=UP_GW)
            / IP(src="203.0.113.10", dst="172.16.10.11", ttl=64)
            / UDP(sport=2, dport=1)
            / b"in"
        ),
    )
    (back,) = [Ether(f) for f in rig.take("trunk")]
    assert back[Dot1Q].vlan == 10 and back.dst == H1 and back.src == WEB_GW and back[IP].ttl == 62


def test_ethernet_padding_is_not_forwarded(rig):
    learn_ext(rig)
    small = web(IP(src="172.16.10.11", dst="203.0.113.10") / UDP(sport=1, dport=2))
    rig.send("trunk", bytes(small) + b"\x00" * 10)
    (out,) = rig.take("uplink")
    assert len(out) == 14 + 28


def test_malformed_ip_is_dropped_by_name(rig):
    good = bytes(IP(src="172.16.10.11", dst="203.0.113.10") / UDP())
    bad = bytearray(good)
    bad[10] ^= 0x55
    rig.send("trunk", bytes(Ether(src=H1, dst=WEB_GW) / Dot1Q(vlan=10, type=0x0800) / Raw(bytes(bad))))
    rig.send("trunk", bytes(Ether(src=H1, dst=WEB_GW) / Dot1Q(vlan=10, type=0x0800) / Raw(good[:9])))
    rig.send("trunk", bytes(Ether(src=H1, dst=WEB_GW) / Dot1Q(vlan=10, type=0x88B5) / Raw(good)))
    assert rig.drops() == {"dr/ip-bad-checksum": 1, "dr/ip-truncated": 1, "dr/not-ip": 1}


def test_trace_names_every_stage(rig):
    learn_ext(rig)
    pkt = rig.send("trunk", bytes(web(IP(src="172.16.10.11", dst="203.0.113.10") / UDP(sport=1, dport=2))), trace=True)
    stages = [line.split(":")[0] for line in pkt.trace]
    assert stages == ["cache", "classify", "l2switch", "dr", "transit", "sr", "egress", "cache"]
    assert pkt.trace[0] == "cache: miss" and pkt.trace[-1].startswith("cache: installed")
    assert rig.dp.traces[-1]["verdict"] == "forwarded"
    again = rig.send(
        "trunk", bytes(web(IP(src="172.16.10.11", dst="203.0.113.10") / UDP(sport=1, dport=2))), trace=True
    )
    assert again is None, "the second packet of the flow is a cache hit"
    assert rig.dp.traces[-1]["steps"][0].startswith("cache: hit")


def test_stage_exception_costs_one_packet(rig, monkeypatch):
    # A bug planted in what l2switch reads (a compiled stage's methods cannot be replaced):
    # each instance's router MACs, which it looks every frame's destination up in, hold a key
    # that raises when the lookup compares it with this frame's destination.
    dst = "02:00:00:00:00:77"

    class Poison:
        def __hash__(self):
            return hash(bytes.fromhex(dst.replace(":", "")))

        def __eq__(self, other):
            raise RuntimeError("a planted bug")

    for inst in rig.dp.model.records.values():
        monkeypatch.setitem(inst.router_macs, Poison(), None)
    rig.send("trunk", bytes(web(Raw(b"x" * 40), dst=dst)))
    assert rig.dp.pipeline.internal_errors == 1
    assert rig.dp.pipeline.drops()["pipeline/internal-error"] == 1
    monkeypatch.undo()
    rig.send(
        "trunk",
        bytes(
            Ether(src=H1, dst="ff:ff:ff:ff:ff:ff")
            / Dot1Q(vlan=10)
            / ARP(op=1, hwsrc=H1, psrc="172.16.10.11", pdst="172.16.10.1")
        ),
    )
    assert len(rig.take("trunk")) == 1


def test_two_srs_on_one_segment_each_answer_their_own_arp():
    """The provider segment shared by two tenant routers' SRs: frames go to a router by its MAC,
    an ARP broadcast to each (each answers for its own address only)."""
    import yaml

    from suites.unit.conftest import EDGE_YAML, Rig
    from suites.unit.test_config import _second_tenant

    raw = yaml.safe_load(EDGE_YAML)
    _second_tenant(raw)
    rig = Rig(yaml.safe_dump(raw))
    ext = "02:00:00:00:00:99"
    for target, mac in (("203.0.113.1", "02:00:00:00:cb:01"), ("203.0.113.3", "02:00:00:00:cb:03")):
        ask = Ether(src=ext, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=ext, psrc="203.0.113.10", pdst=target)
        rig.send("uplink", bytes(ask))
        (reply,) = [Ether(f) for f in rig.take("uplink")]
        assert reply[ARP].op == 2 and reply[ARP].psrc == target and reply[ARP].hwsrc == mac
    # A ping to the second SR's address is its own to answer (dispatched by its MAC).
    rig.send(
        "uplink", bytes(Ether(src=ext, dst="02:00:00:00:cb:03") / IP(src="203.0.113.10", dst="203.0.113.3") / ICMP())
    )
    (echo,) = [Ether(f) for f in rig.take("uplink")]
    assert echo[IP].src == "203.0.113.3" and echo[ICMP].type == 0 and echo.src == "02:00:00:00:cb:03"
