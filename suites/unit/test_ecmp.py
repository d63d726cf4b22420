"""A DR whose SRs run elsewhere: routing over the transit segment, ECMP over
active/active SRs (a flow stays on one SR, flows spread), takeover GARP."""

from __future__ import annotations

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import ARP, Ether

from suites.unit.conftest import Rig

HV_YAML = """
node: hv1
ports:
  web: {ifname: hv1-eth0, role: tenant}
  transit: {ifname: hv1-eth2, role: transit}
instances:
  web: {records: [{port: web}]}
  transit: {records: [{port: transit}]}
routers:
  - name: t1
    tlr_id: 1
    dr:
      ports: [{instance: web, ip: 172.16.10.1/24, mac: "02:00:01:10:00:01"}]
    transit: {subnet: 169.254.0.0/28, dr: 169.254.0.1, instance: transit, peers: [169.254.0.2, 169.254.0.3], dr_mac: "02:00:01:a9:00:01"}
"""
T1, SR1, SR2 = "02:00:01:10:00:11", "02:00:01:a9:00:02", "02:00:01:a9:00:03"


def rig(cache: bool = True) -> Rig:
    r = Rig(HV_YAML)
    r.dp.cache.enabled = cache
    r.send(
        "web",
        bytes(Ether(src=T1, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=T1, psrc="172.16.10.11", pdst="172.16.10.1")),
    )
    for mac, ip in ((SR1, "169.254.0.2"), (SR2, "169.254.0.3")):
        r.send(
            "transit",
            bytes(
                Ether(src=mac, dst="02:00:01:a9:00:01")
                / ARP(op=2, hwsrc=mac, psrc=ip, hwdst="02:00:01:a9:00:01", pdst="169.254.0.1")
            ),
        )
    r.take("web")
    r.take("transit")
    return r


def flow(sport: int) -> bytes:
    return bytes(
        Ether(src=T1, dst="02:00:01:10:00:01")
        / IP(src="172.16.10.11", dst="198.51.100.10")
        / UDP(sport=sport, dport=9)
        / b"x"
    )


@pytest.mark.parametrize("family", [4, 6])
def test_flows_spread_over_both_srs_and_stick(family):
    r, make = (rig(), flow) if family == 4 else (rig6(), flow6)
    chosen = {}
    for sport in range(2000, 2040):
        for _ in range(3):  # first packet through the stages, then cache hits
            r.send("web", make(sport))
        macs = {Ether(f).dst for f in r.take("transit")}
        assert len(macs) == 1, f"flow {sport} split over {macs} ({r.drops()})"
        chosen[sport] = macs.pop()
    assert set(chosen.values()) == {SR1, SR2}, "40 flows must use both SRs"
    assert r.dp.cache.hits == 80


@pytest.mark.parametrize("family", [4, 6])
def test_ecmp_choice_is_the_same_with_and_without_cache(family):
    (a, b), make = ((rig(True), rig(False)), flow) if family == 4 else ((rig6(True), rig6(False)), flow6)
    for sport in range(3000, 3020):
        for _ in range(2):
            a.send("web", make(sport))
            b.send("web", make(sport))
        assert a.take("transit") == b.take("transit")


def test_takeover_garp_moves_every_flow_of_the_failed_sr():
    r = rig()
    for sport in range(4000, 4020):
        r.send("web", flow(sport))
    r.take("transit")
    # SR2 takes over SR1's transit address: gratuitous ARP from SR2's MAC.
    r.send(
        "transit",
        bytes(Ether(src=SR2, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=SR2, psrc="169.254.0.2", pdst="169.254.0.2")),
    )
    for sport in range(4000, 4020):
        r.send("web", flow(sport))
    assert {Ether(f).dst for f in r.take("transit")} == {SR2}


SR_YAML = """
node: edge1
ports:
  transit: {ifname: edge1-eth0, role: transit}
  uplink: {ifname: edge1-eth1, role: uplink}
instances:
  transit: {records: [{port: transit}]}
  provider: {records: [{port: uplink}]}
routers:
  - name: t1
    tlr_id: 1
    sr:
      ports: [{instance: provider, ip: 203.0.113.1/24, mac: "02:00:01:cb:00:01"}]
      routes: [{prefix: 0.0.0.0/0, via: 203.0.113.254}, {prefix: 172.16.0.0/16, via: 169.254.0.1}]
      firewall: {rules: []}
    transit: {subnet: 169.254.0.0/28, dr: 169.254.0.1, sr: 169.254.0.2, instance: transit, sr_mac: "02:00:01:a9:00:02"}
"""
DR_MAC, PR_MAC, SR_TRANSIT, SR_UPLINK = (
    "02:00:01:a9:00:01",
    "02:00:01:cb:00:fe",
    "02:00:01:a9:00:02",
    "02:00:01:cb:00:01",
)


def test_an_sr_on_a_transit_segment_tracks_tenant_traffic_as_outbound():
    """On its own node the SR's transit is a segment like any other: what comes from the DR
    over it is tenant-initiated (allowed, tracked) and its reply comes back; only what the
    uplink starts is unsolicited.  (It once took the DR's packets for inbound: with the
    stateful firewall on, every reply was dropped as unsolicited.)"""
    r = Rig(SR_YAML)
    for port, mac, ip, dst, me in (
        ("transit", DR_MAC, "169.254.0.1", SR_TRANSIT, "169.254.0.2"),
        ("uplink", PR_MAC, "203.0.113.254", SR_UPLINK, "203.0.113.1"),
    ):
        r.send(port, bytes(Ether(src=mac, dst=dst) / ARP(op=2, hwsrc=mac, psrc=ip, hwdst=dst, pdst=me)))
    r.take("transit")
    r.take("uplink")
    out = (
        Ether(src=DR_MAC, dst=SR_TRANSIT)
        / IP(src="172.16.10.11", dst="198.51.100.10", ttl=63)
        / UDP(sport=4000, dport=53)
    )
    r.send("transit", bytes(out / b"q"))
    assert [IP(f[14:]).dst for f in r.take("uplink")] == ["198.51.100.10"], r.drops()
    back = (
        Ether(src=PR_MAC, dst=SR_UPLINK)
        / IP(src="198.51.100.10", dst="172.16.10.11", ttl=63)
        / UDP(sport=53, dport=4000)
    )
    r.send("uplink", bytes(back / b"a"))
    assert [IP(f[14:]).dst for f in r.take("transit")] == ["172.16.10.11"], r.drops()
    unsolicited = (
        Ether(src=PR_MAC, dst=SR_UPLINK) / IP(src="198.51.100.10", dst="172.16.10.11") / UDP(sport=53, dport=4001)
    )
    r.send("uplink", bytes(unsolicited / b"x"))
    assert r.take("transit") == [] and r.drops().get("sr/fw-unsolicited") == 1


# -- IPv6: the same equal-cost choice over the SRs' IPv6 transit addresses ----------------
HV6_YAML = HV_YAML.replace(
    'ip: 172.16.10.1/24, mac: "02:00:01:10:00:01"',
    'ip: 172.16.10.1/24, ip6: "2001:db8:0:10::1/64", mac: "02:00:01:10:00:01"',
).replace(
    'dr_mac: "02:00:01:a9:00:01"}',
    'dr_mac: "02:00:01:a9:00:01", subnet6: "fd00:a9fe::/64", dr6: "fd00:a9fe::1", peers6: ["fd00:a9fe::2", "fd00:a9fe::3"]}',
)


def rig6(cache: bool = True) -> Rig:
    from scapy.layers.inet6 import ICMPv6ND_NS, ICMPv6NDOptSrcLLAddr, IPv6

    r = Rig(HV6_YAML)
    r.dp.cache.enabled = cache
    for mac, ip in ((SR1, "fd00:a9fe::2"), (SR2, "fd00:a9fe::3")):  # each SR asks for the DR: it is learnt
        r.send(
            "transit",
            bytes(
                Ether(src=mac, dst="33:33:ff:00:00:01")
                / IPv6(src=ip, dst="ff02::1:ff00:1", hlim=255)
                / ICMPv6ND_NS(tgt="fd00:a9fe::1")
                / ICMPv6NDOptSrcLLAddr(lladdr=mac)
            ),
        )
    r.take("transit")
    return r


def flow6(sport: int) -> bytes:
    from scapy.layers.inet6 import IPv6

    return bytes(
        Ether(src=T1, dst="02:00:01:10:00:01")
        / IPv6(src="2001:db8:0:10::11", dst="2001:db8:c6::10")
        / UDP(sport=sport, dport=9)
        / b"x"
    )
