"""IPv6 through the router stages: neighbour discovery, router advertisements, ICMPv6,
hop limit, forwarding east-west and north-south, and malformed IPv6 dropped by name.

Every frame the gateway builds is read back with scapy, whose checksums and
field parsing are independent of ours.
"""

from __future__ import annotations

import ipaddress
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import UDP
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6ND_RA,
    ICMPv6ND_RS,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptPrefixInfo,
    ICMPv6NDOptSrcLLAddr,
    ICMPv6PacketTooBig,
    ICMPv6TimeExceeded,
    IPerror6,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrHopByHop,
)
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Raw

from suites.unit.conftest import EDGE_YAML, Rig

DUAL_YAML = (
    EDGE_YAML.replace(
        '{instance: web, ip: 172.16.10.1/24, mac: "02:00:00:00:10:01"}',
        '{instance: web, ip: 172.16.10.1/24, ip6: "2001:db8:10::1/64", mac: "02:00:00:00:10:01"}',
    )
    .replace(
        '{instance: app, ip: 172.16.20.1/24, mac: "02:00:00:00:20:01"}',
        '{instance: app, ip: 172.16.20.1/24, ip6: "2001:db8:20::1/64", mac: "02:00:00:00:20:01"}',
    )
    .replace(
        '{instance: provider, ip: 203.0.113.1/24, mac: "02:00:00:00:cb:01"}',
        '{instance: provider, ip: 203.0.113.1/24, ip6: "2001:db8:cb::1/64", mac: "02:00:00:00:cb:01"}\n'
        '      routes: [{prefix: "::/0", via: "2001:db8:cb::fe"}]',
    )
)
WEB_GW, APP_GW, UP_GW = "02:00:00:00:10:01", "02:00:00:00:20:01", "02:00:00:00:cb:01"
WEB_LL = "fe80::ff:fe00:1001"  # modified EUI-64 of 02:00:00:00:10:01
H1, H3, EXT = "02:00:00:00:00:11", "02:00:00:00:00:13", "02:00:00:00:00:fe"
H1_IP, H3_IP, EXT_IP = "2001:db8:10::11", "2001:db8:20::13", "2001:db8:cb::fe"


def tenant(vlan: int, pkt, src=H1, dst=WEB_GW) -> bytes:
    return bytes(Ether(src=src, dst=dst) / Dot1Q(vlan=vlan, type=0x86DD) / pkt)


def _group(addr: str) -> str:
    """The solicited-node group of ``addr``."""
    return str(
        ipaddress.IPv6Address(
            int(ipaddress.IPv6Address("ff02::1:ff00:0")) | int(ipaddress.IPv6Address(addr)) & 0xFFFFFF
        )
    )


def _sn(addr: str) -> str:
    """The solicited-node multicast MAC of ``addr``."""
    low = int(ipaddress.IPv6Address(addr)) & 0xFFFFFF
    return "33:33:ff:" + ":".join(f"{b:02x}" for b in low.to_bytes(3, "big"))


def ns(target: str, src: str = H1_IP, mac: str = H1, hlim: int = 255, vlan: int = 10, dad: bool = False) -> bytes:
    ip = IPv6(src="::" if dad else src, dst=_group(target), hlim=hlim)
    body = ICMPv6ND_NS(tgt=target) if dad else ICMPv6ND_NS(tgt=target) / ICMPv6NDOptSrcLLAddr(lladdr=mac)
    return bytes(Ether(src=mac, dst=_sn(target)) / Dot1Q(vlan=vlan) / ip / body)


def na(target: str, mac: str, dst: str, dst_mac: str, vlan: int | None, solicited: bool = True) -> bytes:
    pkt = (
        IPv6(src=target, dst=dst, hlim=255)
        / ICMPv6ND_NA(tgt=target, R=0, S=int(solicited), O=1)
        / ICMPv6NDOptDstLLAddr(lladdr=mac)
    )
    if vlan is None:
        return bytes(Ether(src=mac, dst=dst_mac) / pkt)
    return bytes(Ether(src=mac, dst=dst_mac) / Dot1Q(vlan=vlan) / pkt)


def parsed(frames: list[bytes]) -> list[Ether]:
    return [Ether(f) for f in frames]


def checksum_ok(frame: Ether) -> bool:
    """scapy recomputes the ICMPv6 checksum of a copy with the field cleared."""
    layer = frame[IPv6].payload
    sent = layer.cksum
    copy = IPv6(bytes(frame[IPv6]))
    del copy.payload.cksum
    return IPv6(bytes(copy)).payload.cksum == sent


def dual() -> Rig:
    return Rig(DUAL_YAML)


def learn_h1(rig: Rig) -> None:
    rig.send("trunk", ns("2001:db8:10::1"))
    rig.take("trunk")


def test_the_router_answers_a_solicitation_for_its_address_and_learns_the_solicitor():
    rig = dual()
    rig.send("trunk", ns("2001:db8:10::1"))
    (out,) = parsed(rig.take("trunk"))
    assert out.dst == H1 and out.src == WEB_GW and out[Dot1Q].vlan == 10
    assert out[IPv6].src == "2001:db8:10::1" and out[IPv6].dst == H1_IP and out[IPv6].hlim == 255
    adv = out[ICMPv6ND_NA]
    assert adv.tgt == "2001:db8:10::1" and adv.R == 1 and adv.S == 1 and adv.O == 1
    assert out[ICMPv6NDOptDstLLAddr].lladdr == WEB_GW
    assert checksum_ok(out)
    rows = rig.handle({"cmd": "show", "what": "nd"})["result"]
    assert {"port": "t1-dr:web", "ip": H1_IP, "mac": H1} in [{k: r[k] for k in ("port", "ip", "mac")} for r in rows]


def test_the_router_answers_for_its_link_local_address():
    rig = dual()
    rig.send("trunk", ns(WEB_LL))
    (out,) = parsed(rig.take("trunk"))
    assert out[ICMPv6ND_NA].tgt == WEB_LL and out[IPv6].src == WEB_LL


def test_duplicate_address_detection_of_a_router_address_is_defended_at_all_nodes():
    rig = dual()
    rig.send("trunk", ns("2001:db8:10::1", dad=True))
    frames = parsed(rig.take("trunk"))
    (out,) = [f for f in frames if f.haslayer(ICMPv6ND_NA)]
    assert out[IPv6].dst == "ff02::1" and out.dst == "33:33:00:00:00:01"
    assert out[ICMPv6ND_NA].S == 0 and out[ICMPv6ND_NA].O == 1
    assert rig.handle({"cmd": "show", "what": "nd"})["result"] == [], "a prober has no address to learn"
    # A host probing its own new address is left alone (the switch floods its probe).
    rig.send("trunk", ns("2001:db8:10::99", dad=True))
    assert not [f for f in parsed(rig.take("trunk")) if f.haslayer(ICMPv6ND_NA)]


def test_a_solicitation_for_another_host_is_flooded_not_answered():
    rig = dual()
    rig.send("trunk", ns("2001:db8:10::12"))
    frames = parsed(rig.take("trunk"))
    assert not [f for f in frames if f.haslayer(ICMPv6ND_NA)]


def test_bad_neighbour_discovery_is_dropped_by_name():
    rig = dual()
    rig.send("trunk", ns("2001:db8:10::1", hlim=64))  # routed NDP: not from the link
    rig.send("trunk", ns("2001:db8:10::1", src="2001:db8:99::5"))  # off-link source: uRPF on a tenant port
    off = IPv6(src="2001:db8:99::5", dst=_group("2001:db8:cb::1")) / ICMPv6ND_NS(tgt="2001:db8:cb::1")
    rig.send("uplink", bytes(Ether(src=EXT, dst=_sn("2001:db8:cb::1")) / off))  # and on the uplink
    # Somebody claims the router's address for its own MAC.
    rig.send("trunk", na("2001:db8:10::1", H1, "ff02::1", "33:33:00:00:00:01", 10, solicited=False))
    drops = rig.drops()
    assert drops == {"dr/nd-bad-hop-limit": 1, "dr/urpf": 1, "sr/nd-off-link": 1, "dr/nd-spoofed": 1}, drops
    assert not [f for f in parsed(rig.take("trunk")) if f.haslayer(ICMPv6ND_NA) and f.src == WEB_GW]


def test_the_router_pings_back_and_resolves_the_pinger_first_when_unknown():
    rig = dual()
    req = IPv6(src=H1_IP, dst="2001:db8:10::1") / ICMPv6EchoRequest(id=7, seq=1, data=b"abc")
    rig.send("trunk", tenant(10, req))
    (sol,) = parsed(rig.take("trunk"))
    assert sol[ICMPv6ND_NS].tgt == H1_IP and sol.dst == _sn(H1_IP) and checksum_ok(sol)
    rig.send("trunk", na(H1_IP, H1, "2001:db8:10::1", WEB_GW, 10))
    (rep,) = parsed(rig.take("trunk"))
    assert rep.dst == H1 and rep[IPv6].src == "2001:db8:10::1" and rep[IPv6].dst == H1_IP
    assert rep[ICMPv6EchoReply].id == 7 and rep[ICMPv6EchoReply].data == b"abc" and checksum_ok(rep)


def test_east_west_forwarding_decrements_the_hop_limit_and_resolves_the_next_hop():
    rig = dual()
    pkt = IPv6(src=H1_IP, dst=H3_IP, hlim=9) / UDP(sport=5000, dport=53) / Raw(b"q" * 20)
    rig.send("trunk", tenant(10, pkt))
    (sol,) = parsed(rig.take("trunk"))
    assert sol[Dot1Q].vlan == 20 and sol[ICMPv6ND_NS].tgt == H3_IP
    assert sol[ICMPv6NDOptSrcLLAddr].lladdr == APP_GW
    rig.send("trunk", na(H3_IP, H3, "2001:db8:20::1", APP_GW, 20))
    (fwd,) = parsed(rig.take("trunk"))
    assert fwd.src == APP_GW and fwd.dst == H3 and fwd[Dot1Q].vlan == 20
    assert fwd[IPv6].hlim == 8 and fwd[UDP].dport == 53 and bytes(fwd[Raw]) == b"q" * 20
    # The UDP checksum covers no hop limit: still right.
    assert UDP(bytes(fwd[UDP])).chksum == fwd[UDP].chksum
    rig.send("trunk", tenant(10, pkt))
    assert len(rig.take("trunk")) == 1, "the next hop is known now"


def test_north_south_goes_through_the_sr_to_the_provider():
    rig = dual()
    pkt = IPv6(src=H1_IP, dst="2001:db8:77::5", hlim=64) / UDP(sport=5000, dport=53)
    rig.send("trunk", tenant(10, pkt))
    (sol,) = parsed(rig.take("uplink"))
    assert sol[ICMPv6ND_NS].tgt == EXT_IP and sol.src == UP_GW
    rig.send("uplink", na(EXT_IP, EXT, "2001:db8:cb::1", UP_GW, None))
    (fwd,) = parsed(rig.take("uplink"))
    assert fwd.dst == EXT and fwd[IPv6].dst == "2001:db8:77::5" and fwd[IPv6].hlim == 62  # DR and SR
    # And back: the SR routes the tenant prefix to the DR over the transit.
    learn_h1(rig)
    back = IPv6(src="2001:db8:77::5", dst=H1_IP, hlim=50) / UDP(sport=53, dport=5000)
    rig.send("uplink", bytes(Ether(src=EXT, dst=UP_GW) / back))
    (ret,) = parsed(rig.take("trunk"))
    assert ret.dst == H1 and ret[Dot1Q].vlan == 10 and ret[IPv6].hlim == 48


def test_hop_limit_expiry_and_no_route_answer_with_icmpv6_errors():
    rig = Rig(DUAL_YAML.replace('      routes: [{prefix: "::/0", via: "2001:db8:cb::fe"}]\n', ""))
    learn_h1(rig)
    rig.send("trunk", tenant(10, IPv6(src=H1_IP, dst=H3_IP, hlim=1) / UDP(dport=33434)))
    (err,) = parsed(rig.take("trunk"))
    assert err[ICMPv6TimeExceeded].code == 0 and err[IPv6].src == "2001:db8:10::1" and err[IPv6].dst == H1_IP
    assert err[IPerror6].dst == H3_IP and checksum_ok(err)
    rig.send("trunk", tenant(10, IPv6(src=H1_IP, dst="2001:db8:77::5") / UDP(dport=9)))
    (err,) = parsed(rig.take("trunk"))
    assert err[ICMPv6DestUnreach].code == 0 and err[IPv6].dst == H1_IP
    assert rig.drops() == {"dr/hop-limit-expired": 1, "sr/no-route": 1}


def test_an_unresolved_next_hop_ends_in_address_unreachable():
    rig = dual()
    learn_h1(rig)
    rig.send("trunk", tenant(10, IPv6(src=H1_IP, dst="2001:db8:20::99") / UDP(dport=9)))
    rig.take("trunk")
    now = time.monotonic()
    for k in range(1, 5):
        rig.dp.pipeline.tick(now + k * 1.1)
    frames = parsed(rig.take("trunk"))
    sols = [f for f in frames if f.haslayer(ICMPv6ND_NS) and f[ICMPv6ND_NS].tgt == "2001:db8:20::99"]
    (err,) = [f for f in frames if f.haslayer(ICMPv6DestUnreach)]
    assert len(sols) == 2 and err[ICMPv6DestUnreach].code == 3 and err[IPv6].dst == H1_IP
    assert rig.drops() == {"dr/nd-unresolved": 1}


def test_router_solicitation_is_answered_and_tenant_advertisements_are_refused():
    rig = dual()
    rs = IPv6(src=H1_IP, dst="ff02::2", hlim=255) / ICMPv6ND_RS() / ICMPv6NDOptSrcLLAddr(lladdr=H1)
    rig.send("trunk", bytes(Ether(src=H1, dst="33:33:00:00:00:02") / Dot1Q(vlan=10) / rs))
    (ra,) = [f for f in parsed(rig.take("trunk")) if f.haslayer(ICMPv6ND_RA)]
    assert ra[IPv6].src == WEB_LL and ra[IPv6].dst == "ff02::1" and ra[IPv6].hlim == 255
    assert ra[ICMPv6ND_RA].routerlifetime == 1800 and checksum_ok(ra)
    assert ra[ICMPv6NDOptPrefixInfo].prefix == "2001:db8:10::" and ra[ICMPv6NDOptPrefixInfo].prefixlen == 64
    assert ra[ICMPv6NDOptPrefixInfo].L == 1 and ra[ICMPv6NDOptPrefixInfo].A == 0
    assert ra[ICMPv6NDOptSrcLLAddr].lladdr == WEB_GW
    rogue = IPv6(src="fe80::11", dst="ff02::1", hlim=255) / ICMPv6ND_RA() / ICMPv6NDOptSrcLLAddr(lladdr=H1)
    rig.send("trunk", bytes(Ether(src=H1, dst="33:33:00:00:00:01") / Dot1Q(vlan=10) / rogue))
    assert rig.drops() == {"dr/ra-from-host": 1}


def test_the_tick_advertises_on_tenant_segments_only():
    rig = dual()
    rig.dp.pipeline.tick(1000.0)
    ras = [f for f in parsed(rig.take("trunk")) if f.haslayer(ICMPv6ND_RA)]
    assert sorted(f[Dot1Q].vlan for f in ras) == [10, 20]
    assert not [f for f in parsed(rig.take("uplink")) if f.haslayer(ICMPv6ND_RA)]
    rig.dp.pipeline.tick(1001.0)
    assert not [f for f in parsed(rig.take("trunk")) if f.haslayer(ICMPv6ND_RA)], "not before the interval"


def test_urpf_and_unroutable_addresses():
    rig = dual()
    rig.send("trunk", tenant(10, IPv6(src="2001:db8:99::1", dst=H3_IP) / UDP()))  # not web's prefix
    rig.send("trunk", tenant(10, IPv6(src=H1_IP, dst="fe80::13") / UDP()))  # link-local: never routed
    rig.send("trunk", tenant(10, IPv6(src=H1_IP, dst="ff05::1") / UDP()))  # multicast: not forwarded
    assert rig.drops() == {"dr/urpf": 1, "dr/not-routable": 2}


def test_malformed_ipv6_is_dropped_by_name():
    rig = dual()
    good = bytes(IPv6(src=H1_IP, dst=H3_IP) / UDP() / Raw(b"x" * 8))
    rig.send("trunk", tenant(10, Raw(good[:30])))  # cut inside the header
    long = bytearray(good)
    long[4:6] = (200).to_bytes(2, "big")  # payload length past the frame
    rig.send("trunk", tenant(10, Raw(bytes(long))))
    chain = IPv6(src=H1_IP, dst=H3_IP)
    for _ in range(9):
        chain = chain / IPv6ExtHdrDestOpt()
    rig.send("trunk", tenant(10, chain / UDP()))
    rig.send("trunk", tenant(10, IPv6(src=H1_IP, dst=H3_IP) / IPv6ExtHdrDestOpt() / IPv6ExtHdrHopByHop() / UDP()))
    cut = bytearray(bytes(IPv6(src=H1_IP, dst=H3_IP) / IPv6ExtHdrDestOpt(len=4) / UDP()))
    cut[4:6] = (8).to_bytes(2, "big")  # the option header says 40 bytes, the payload 8
    rig.send("trunk", tenant(10, Raw(bytes(cut[:48]))))
    assert rig.drops() == {
        "dr/ip6-truncated": 1,
        "dr/ip6-bad-length": 1,
        "dr/ip6-ext-chain-too-long": 1,
        "dr/ip6-hbh-not-first": 1,
        "dr/ip6-ext-truncated": 1,
    }


def test_a_router_without_ipv6_drops_it_by_name():
    rig = Rig()
    rig.send("trunk", tenant(10, IPv6(src=H1_IP, dst=H3_IP) / UDP()))
    assert rig.drops() == {"dr/ip6-not-enabled": 1}


def test_icmpv6_with_a_bad_checksum_is_dropped():
    rig = dual()
    frame = bytearray(tenant(10, IPv6(src=H1_IP, dst="2001:db8:10::1") / ICMPv6EchoRequest()))
    frame[-1] ^= 0xFF
    frame[-2] ^= 0x0F
    rig.send("trunk", bytes(frame))
    assert rig.drops() == {"dr/icmp6-bad-checksum": 1}
    assert not rig.take("trunk")


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_ipv6_never_costs_more_than_the_packet(data):
    rig = RIG6
    base = data.draw(
        st.sampled_from(
            [
                tenant(10, IPv6(src=H1_IP, dst=H3_IP) / UDP() / Raw(b"x" * 16)),
                ns("2001:db8:10::1"),
                tenant(10, IPv6(src=H1_IP, dst="2001:db8:10::1") / ICMPv6EchoRequest()),
                tenant(10, IPv6(src=H1_IP, dst=H3_IP) / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / UDP()),
            ]
        )
    )
    frame = bytearray(base)
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(18, len(frame) - 1))
        frame[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(18, len(frame)))
    rig.send("trunk", bytes(frame[:cut]))
    assert rig.dp.pipeline.internal_errors == 0


RIG6 = dual()


# -- HA: IPv6 addresses move as IPv4's do ------------------------------------------------------
def test_a_taken_over_ipv6_address_is_announced_answered_and_released():
    """takeover: an unsolicited NA (override, to all-nodes) moves the neighbours' entries; NS for
    the address is answered with our MAC until release."""
    rig = dual()
    own = rig.dp.ownership
    peer_addr = "2001:db8:cb::2"
    result = own.takeover("t1", peer_addr)
    assert result["new"] is True
    (una,) = [f for f in parsed(rig.take("uplink")) if f.haslayer(ICMPv6ND_NA)]
    assert una[IPv6].dst == "ff02::1" and una.dst == "33:33:00:00:00:01" and una[IPv6].hlim == 255
    assert una[ICMPv6ND_NA].tgt == peer_addr and una[ICMPv6ND_NA].O == 1 and una[ICMPv6ND_NA].S == 0
    assert una[ICMPv6NDOptDstLLAddr].lladdr == UP_GW and checksum_ok(una)
    assert rig.dp.ha()["owned"]["t1-sr"] == [peer_addr] and rig.dp.ha()["unsolicited_nas"] == 1
    sol = IPv6(src=EXT_IP, dst=_group(peer_addr), hlim=255) / ICMPv6ND_NS(tgt=peer_addr)
    rig.send("uplink", bytes(Ether(src=EXT, dst=_sn(peer_addr)) / sol / ICMPv6NDOptSrcLLAddr(lladdr=EXT)))
    (adv,) = [f for f in parsed(rig.take("uplink")) if f.haslayer(ICMPv6ND_NA)]
    assert adv[ICMPv6ND_NA].tgt == peer_addr and adv[ICMPv6NDOptDstLLAddr].lladdr == UP_GW
    # Ping to it is answered too (it is local now), from it.
    rig.send("uplink", bytes(Ether(src=EXT, dst=UP_GW) / IPv6(src=EXT_IP, dst=peer_addr) / ICMPv6EchoRequest(id=3)))
    (rep,) = [f for f in parsed(rig.take("uplink")) if f.haslayer(ICMPv6EchoReply)]
    assert rep[IPv6].src == peer_addr
    own.release("t1", peer_addr)
    rig.send("uplink", bytes(Ether(src=EXT, dst=_sn(peer_addr)) / sol / ICMPv6NDOptSrcLLAddr(lladdr=EXT)))
    assert not [f for f in parsed(rig.take("uplink")) if f.haslayer(ICMPv6ND_NA)], "released: not ours"
    with pytest.raises(ValueError, match="no segment"):
        own.takeover("t1", "2001:db8:99::1")
    with pytest.raises(ValueError, match="own address"):
        own.takeover("t1", "2001:db8:cb::1")


def test_a_yielded_ipv6_address_is_neither_answered_nor_used_as_a_source():
    """HA without preemption: our own IPv6 address is yielded until claimed; a solicitation for it
    goes unanswered, and our own solicitations come from the link-local address."""
    rig = dual()
    own = rig.dp.ownership
    own.yield_all("t1")
    sol = IPv6(src=EXT_IP, dst=_group("2001:db8:cb::1"), hlim=255) / ICMPv6ND_NS(tgt="2001:db8:cb::1")
    rig.send("uplink", bytes(Ether(src=EXT, dst=_sn("2001:db8:cb::1")) / sol / ICMPv6NDOptSrcLLAddr(lladdr=EXT)))
    assert not [f for f in parsed(rig.take("uplink")) if f.haslayer(ICMPv6ND_NA)]
    learn_h1(rig)
    rig.send("trunk", tenant(10, IPv6(src=H1_IP, dst="2001:db8:77::5") / UDP(dport=9)))
    (ns_out,) = [f for f in parsed(rig.take("uplink")) if f.haslayer(ICMPv6ND_NS)]
    assert ns_out[IPv6].src.startswith("fe80::"), ns_out[IPv6].src
    own.claim("t1", "2001:db8:cb::1", True)
    (una,) = [f for f in parsed(rig.take("uplink")) if f.haslayer(ICMPv6ND_NA)]
    assert una[ICMPv6ND_NA].tgt == "2001:db8:cb::1" and una[ICMPv6ND_NA].O == 1


def test_a_packet_too_big_for_the_next_link_is_answered_never_fragmented_cached_or_not():
    """An uplink with an MTU of 1400: a 1452-byte IPv6 packet to the provider is answered with
    ICMPv6 packet too big (MTU 1400, from the SR that owns that link) and dropped; small packets of
    the same flow go on, also as cache hits, and a big one after them meets the check again."""
    text = DUAL_YAML.replace(
        "uplink: {ifname: edge1-eth1, role: uplink}", "uplink: {ifname: edge1-eth1, role: uplink, mtu: 1400}"
    )
    assert "mtu: 1400" in text
    for cache in (True, False):
        rig = Rig(text)
        rig.dp.cache.enabled = cache
        learn_h1(rig)
        rig.send("uplink", na(EXT_IP, EXT, "2001:db8:cb::1", UP_GW, None))
        rig.take("uplink")
        small = tenant(10, IPv6(src=H1_IP, dst="2001:db8:77::5") / UDP(sport=1, dport=2) / (b"s" * 100))
        big = tenant(10, IPv6(src=H1_IP, dst="2001:db8:77::5") / UDP(sport=1, dport=2) / (b"b" * 1404))
        for frame in (small, small, big, small):
            rig.send("trunk", frame)
        sent = parsed(rig.take("uplink"))
        assert [len(f[IPv6]) for f in sent] == [148, 148, 148], "the small ones, never the big one"
        (ptb,) = [f for f in parsed(rig.take("trunk")) if f.haslayer(ICMPv6PacketTooBig)]
        assert ptb[ICMPv6PacketTooBig].mtu == 1400 and ptb[IPv6].src == "2001:db8:cb::1" and ptb[IPv6].dst == H1_IP
        assert ptb[IPerror6].dst == "2001:db8:77::5" and checksum_ok(ptb)
        assert rig.drops() == {"sr/packet-too-big": 1}
        if cache:
            assert rig.dp.cache.hits >= 2 and rig.dp.cache.bypass >= 1


def test_addresses_that_embed_ipv4_are_never_routed_and_solicitations_must_come_from_the_link():
    """::/96 and ::ffff:0:0/96 never appear on the wire (RFC 4291): refused, so no IPv6 tuple can
    look like an IPv4 one in the connection table; a router solicitation with a hop limit below
    255 was routed to us and is not answered (RFC 4861 6.1.1)."""
    rig = dual()
    rig.send("uplink", bytes(Ether(src=EXT, dst=UP_GW) / IPv6(src="::10.1.2.3", dst=H1_IP) / UDP()))
    rig.send("trunk", tenant(10, IPv6(src=H1_IP, dst="::ffff:10.1.2.3") / UDP()))
    rig.send("trunk", tenant(10, IPv6(src=H1_IP, dst="::1") / UDP()))
    rs = IPv6(src=H1_IP, dst="ff02::2", hlim=64) / ICMPv6ND_RS() / ICMPv6NDOptSrcLLAddr(lladdr=H1)
    rig.send("trunk", bytes(Ether(src=H1, dst="33:33:00:00:00:02") / Dot1Q(vlan=10) / rs))
    assert rig.drops() == {"sr/not-routable": 1, "dr/not-routable": 2, "dr/nd-bad-hop-limit": 1}
    assert not [f for f in parsed(rig.take("trunk")) if f.haslayer(ICMPv6ND_RA)]
    assert not rig.take("uplink")


def test_the_neighbour_queue_is_bounded():
    """Packets waiting for one IPv6 next hop queue as behind ARP, up to tables.arp_queue; the next
    is dropped by name and only one solicitation goes out."""
    rig = Rig(DUAL_YAML + "tables: {arp_queue: 3}\n")
    learn_h1(rig)
    for sport in range(5):
        rig.send("trunk", tenant(10, IPv6(src=H1_IP, dst=H3_IP) / UDP(sport=1000 + sport, dport=9)))
    sols = [f for f in parsed(rig.take("trunk")) if f.haslayer(ICMPv6ND_NS)]
    assert len(sols) == 1 and rig.drops() == {"dr/nd-queue-full": 2}
    rig.send("trunk", na(H3_IP, H3, "2001:db8:20::1", APP_GW, 20))
    assert len([f for f in parsed(rig.take("trunk")) if f.haslayer(UDP)]) == 3, "the three queued go on"
