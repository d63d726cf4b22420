"""What a tenant cannot do to the edge or its neighbours, on synthetic frames."""

from __future__ import annotations

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import ARP, Dot1Q, Ether

from suites.unit.conftest import EDGE_YAML, Rig

H1, H3 = "02:00:00:00:00:11", "02:00:00:00:00:13"
WEB_GW, APP_GW = "02:00:00:00:10:01", "02:00:00:00:20:01"


def learn_h3(rig):
    rig.send(
        "trunk",
        bytes(
            Ether(src=H3, dst="ff:ff:ff:ff:ff:ff")
            / Dot1Q(vlan=20)
            / ARP(hwsrc=H3, psrc="172.16.20.13", pdst="172.16.20.1")
        ),
    )
    rig.take("trunk")


def from_t1(src: str) -> bytes:
    return bytes(Ether(src=H1, dst=WEB_GW) / Dot1Q(vlan=10) / IP(src=src, dst="172.16.20.13") / UDP(sport=1, dport=2))


def test_urpf_drops_sources_from_off_the_segment(rig):
    learn_h3(rig)
    rig.send("trunk", from_t1("172.16.10.11"))
    assert len(rig.take("trunk")) == 1
    rig.send("trunk", from_t1("172.16.20.99"))  # another tenant segment's address
    rig.send("trunk", from_t1("8.8.8.8"))
    assert rig.take("trunk") == []
    assert rig.drops() == {"dr/urpf": 2}


def test_a_cached_flow_does_not_carry_a_spoofed_source_past_urpf(rig):
    learn_h3(rig)
    for _ in range(3):
        rig.send("trunk", from_t1("172.16.10.11"))
    assert rig.dp.cache.hits == 2
    rig.send("trunk", from_t1("172.16.20.77"))  # same MACs and destination, spoofed source
    assert rig.drops() == {"dr/urpf": 1}


def test_arp_claiming_the_routers_address_is_refused(rig):
    rig.send(
        "trunk",
        bytes(
            Ether(src=H1, dst="ff:ff:ff:ff:ff:ff")
            / Dot1Q(vlan=10)
            / ARP(op=2, hwsrc=H1, psrc="172.16.10.1", pdst="172.16.10.1")
        ),
    )
    assert rig.drops() == {"l2switch/arp-spoofed": 1}, "not flooded to the other hosts"
    # Sent to the router's MAC (not broadcast), the claim reaches the router, which refuses it.
    rig.send(
        "trunk",
        bytes(Ether(src=H1, dst=WEB_GW) / Dot1Q(vlan=10) / ARP(op=2, hwsrc=H1, psrc="172.16.10.1", pdst="172.16.10.1")),
    )
    assert rig.drops() == {"l2switch/arp-spoofed": 1, "dr/arp-spoofed": 1}
    router = rig.dp.model.router("t1", "dr")
    assert router.arp.dump(0) == []


def test_arp_from_off_the_segment_is_not_learned(rig):
    rig.send(
        "trunk",
        bytes(
            Ether(src=H1, dst="ff:ff:ff:ff:ff:ff")
            / Dot1Q(vlan=10)
            / ARP(op=1, hwsrc=H1, psrc="10.9.9.9", pdst="172.16.10.1")
        ),
    )
    assert rig.drops() == {"dr/arp-off-subnet": 1}
    assert rig.take("trunk") == [], "not answered either"


def test_mac_flood_is_bounded_per_instance_and_known_macs_keep_working():
    rig = Rig(EDGE_YAML + "tables: {mac_per_instance: 5}\n")
    learn_h3(rig)  # app's host, known before the flood
    for i in range(50):
        mac = f"02:aa:00:00:{i // 256:02x}:{i % 256:02x}"
        rig.send("trunk", bytes(Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") / Dot1Q(vlan=10) / UDP()))
    counters = rig.dp.counters()["mac"]
    assert counters["per_instance"]["web"] == 5 and counters["refused"]["web"] == 45
    assert counters["per_instance"]["app"] == 1, "another tenant's host stays known"
    rig.take("trunk")
    rig.send(
        "trunk", bytes(Ether(src=H1, dst=APP_GW) / Dot1Q(vlan=20) / IP(src="172.16.20.11", dst="172.16.20.13") / UDP())
    )
    assert rig.dp.macs.lookup(rig.dp.model.instances["app"], bytes.fromhex("020000000013")) is not None
