"""IPv6 codecs against scapy: the header, the extension-header walk, ICMPv6 and
neighbour discovery; every bad input refused by name, never by another exception."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import TCP
from scapy.layers.inet6 import (
    ICMPv6EchoRequest,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptSrcLLAddr,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.inet6 import IPv6 as ScapyIPv6

from gateway import headers6 as h6
from gateway.headers import HeaderError, mac_bytes

A, B = "2001:db8:10::11", "2001:db8:20::13"
MAC = "02:00:01:10:00:11"


def chain(n: int):
    """An IPv6 packet with ``n`` destination-options headers before its TCP header."""
    pkt = ScapyIPv6(src=A, dst=B)
    for _ in range(n):
        pkt = pkt / IPv6ExtHdrDestOpt()
    return pkt / TCP()


def test_ipv6_header_roundtrip_and_scapy_agrees():
    raw = bytes(ScapyIPv6(src=A, dst=B, hlim=7, tc=0x2E, fl=0x12345) / TCP(sport=1, dport=2))
    hdr, payload = h6.IPv6.parser(raw)
    assert (h6.ip6_str(hdr.src), h6.ip6_str(hdr.dst), hdr.hop_limit) == (A, B, 7)
    assert (hdr.next_header, hdr.traffic_class, hdr.flow_label, hdr.payload_len) == (6, 0x2E, 0x12345, 20)
    assert len(payload) == 20
    assert hdr.serialize() == raw[:40]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (bytes(ScapyIPv6(src=A, dst=B))[:39], "ip6-truncated"),
        (b"\x45" + bytes(ScapyIPv6(src=A, dst=B))[1:], "ip6-bad-version"),
        (bytes(ScapyIPv6(src=A, dst=B, plen=100) / (b"x" * 20)), "ip6-bad-length"),
    ],
)
def test_bad_ipv6_headers_are_named(raw, reason):
    with pytest.raises(HeaderError, match=reason):
        h6.IPv6.parser(raw)


def test_the_extension_walk_finds_the_upper_layer_and_fragments():
    pkt = ScapyIPv6(src=A, dst=B) / IPv6ExtHdrHopByHop() / IPv6ExtHdrRouting() / IPv6ExtHdrDestOpt() / TCP()
    assert h6.upper_layer(bytes(pkt)) == (6, 40 + 8 + 8 + 8, False)
    frag = bytes(ScapyIPv6(src=A, dst=B) / IPv6ExtHdrFragment(offset=0, m=1) / TCP())
    assert h6.upper_layer(frag) == (6, 48, True)
    assert h6.upper_layer(bytes(ScapyIPv6(src=A, dst=B) / TCP())) == (6, 40, False)


@pytest.mark.parametrize(
    ("pkt", "reason"),
    [
        (ScapyIPv6(src=A, dst=B) / IPv6ExtHdrDestOpt() / IPv6ExtHdrHopByHop() / TCP(), "ip6-hbh-not-first"),
        (chain(9), "ip6-ext-chain-too-long"),
        (ScapyIPv6(src=A, dst=B, nh=60, plen=4) / b"\x06\x00\x00\x00", "ip6-ext-truncated"),
        # A header that says it is longer than what is left of the payload.
        (ScapyIPv6(src=A, dst=B, nh=60) / (b"\x06\x05" + bytes(14)), "ip6-ext-truncated"),
    ],
)
def test_bad_extension_chains_are_named(pkt, reason):
    with pytest.raises(HeaderError, match=reason):
        h6.upper_layer(bytes(pkt))


def test_a_chain_of_the_longest_length_allowed_is_walked():
    assert h6.upper_layer(bytes(chain(h6.MAX_EXTENSIONS))) == (6, 40 + 8 * h6.MAX_EXTENSIONS, False)


def test_icmp6_checksum_agrees_with_scapy():
    src, dst = h6.ip6_int(A), h6.ip6_int(B)
    ours = h6.icmp6(src, dst, h6.ECHO_REQUEST6, 0, b"\x12\x34\x00\x01hello")
    theirs = bytes(ScapyIPv6(src=A, dst=B) / ICMPv6EchoRequest(id=0x1234, seq=1, data=b"hello"))[40:]
    assert ours == theirs
    assert h6.icmp6_check(src, dst, ours) is None
    assert h6.icmp6_check(src, dst, ours[:-1] + b"!") == "icmp6-bad-checksum"
    assert h6.icmp6_check(src, dst, ours[:3]) == "icmp6-truncated"


def test_neighbour_solicitation_and_advertisement_against_scapy():
    ns = bytes(ICMPv6ND_NS(tgt="2001:db8:10::1") / ICMPv6NDOptSrcLLAddr(lladdr=MAC))
    got = h6.Neighbour.parser(255, ns)
    assert (got.type, h6.ip6_str(got.target), got.lladdr) == (h6.ND_NS, "2001:db8:10::1", mac_bytes(MAC))
    na = h6.Neighbour(h6.ND_NA, h6.ip6_int("2001:db8:10::1"), h6.NA_ROUTER | h6.NA_SOLICITED, mac_bytes(MAC))
    raw = na.serialize(h6.ip6_int("2001:db8:10::1"), h6.ip6_int(A))
    theirs = ICMPv6ND_NA(raw)
    assert (theirs.R, theirs.S, theirs.O, theirs.tgt) == (1, 1, 0, "2001:db8:10::1")
    assert theirs[ICMPv6NDOptDstLLAddr].lladdr == MAC
    assert h6.icmp6_check(h6.ip6_int("2001:db8:10::1"), h6.ip6_int(A), raw) is None
    assert h6.Neighbour.parser(255, raw) == na


def test_solicited_node_group_and_its_mac():
    group = h6.solicited_node(h6.ip6_int("2001:db8:10::1:2:3"))
    assert h6.ip6_str(group) == "ff02::1:ff02:3"
    assert h6.multicast_mac(group) == bytes.fromhex("3333ff020003")


@pytest.mark.parametrize(
    ("hop_limit", "raw", "reason"),
    [
        (64, bytes(ICMPv6ND_NS(tgt="2001:db8:10::1")), "nd-bad-hop-limit"),
        (255, bytes(ICMPv6ND_NS(tgt="2001:db8:10::1"))[:20], "nd-truncated"),
        (255, bytes(ICMPv6ND_NS(tgt="2001:db8:10::1", code=1)), "nd-bad-code"),
        (255, bytes(ICMPv6ND_NS(tgt="ff02::1")), "nd-multicast-target"),
        (255, bytes(ICMPv6ND_NS(tgt="2001:db8:10::1")) + b"\x01\x00" + bytes(6), "nd-bad-option"),
        (255, bytes(ICMPv6ND_NS(tgt="2001:db8:10::1")) + b"\x01\x02" + bytes(6), "nd-bad-option"),
        (255, bytes(ICMPv6EchoRequest()) + bytes(20), "nd-not-neighbour"),
    ],
)
def test_bad_neighbour_discovery_is_named(hop_limit, raw, reason):
    with pytest.raises(HeaderError, match=reason):
        h6.Neighbour.parser(hop_limit, raw)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.integers(0, 255))
def test_garbage_is_refused_by_name_never_by_another_exception(data, hop_limit):
    for parse in (
        lambda: h6.IPv6.parser(data),
        lambda: h6.ipv6_check(data, 0) or h6.upper_layer(data),
        lambda: h6.Neighbour.parser(hop_limit, data),
    ):
        try:
            parse()
        except HeaderError:
            pass
