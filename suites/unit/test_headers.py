"""Header codecs against scapy (the reference dissector), and checksum helpers."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Dot1Q, Ether

from gateway import headers as h
from gateway.l3 import decrement_ttl


def test_ethernet_roundtrip_tagged_and_untagged():
    tagged = bytes(Ether(dst="02:00:00:00:00:01", src="02:00:00:00:00:02") / Dot1Q(vlan=123, prio=5) / IP())
    eth, rest = h.Ethernet.parser(tagged)
    assert (eth.vlan, eth.pcp, eth.ethertype) == (123, 5, h.ETH_P_IP)
    assert eth.serialize() + bytes(rest) == tagged
    plain = bytes(Ether(dst="02:00:00:00:00:01", src="02:00:00:00:00:02") / IP())
    eth, rest = h.Ethernet.parser(plain)
    assert eth.vlan is None and eth.serialize() + bytes(rest) == plain


def test_arp_roundtrip():
    raw = bytes(ARP(op=1, hwsrc="02:00:00:00:00:02", psrc="10.0.0.2", pdst="10.0.0.1"))
    arp, _ = h.Arp.parser(raw)
    assert arp.op == 1 and h.ip_str(arp.spa) == "10.0.0.2" and h.ip_str(arp.tpa) == "10.0.0.1"
    assert arp.serialize() == raw


def test_ipv4_serialize_matches_scapy_checksum():
    ours = h.IPv4(src=h.ip_int("192.0.2.1"), dst=h.ip_int("198.51.100.7"), proto=17, ttl=33, ident=7).serialize(8)
    theirs = bytes(IP(src="192.0.2.1", dst="198.51.100.7", proto=17, ttl=33, id=7, len=28, flags=0))
    assert ours == theirs


def test_icmp_udp_tcp_checksums_match_scapy():
    src, dst = h.ip_int("172.16.10.11"), h.ip_int("203.0.113.10")
    icmp = h.Icmp(8, 0, b"\x12\x34\x00\x01").serialize(b"payload")
    assert icmp == bytes(ICMP(type=8, id=0x1234, seq=1) / b"payload")
    udp = h.Udp(1000, 2000).serialize(b"data", src, dst)
    assert udp == bytes(IP(src="172.16.10.11", dst="203.0.113.10") / UDP(sport=1000, dport=2000) / b"data")[20:]
    tcp = h.Tcp(1000, 80, seq=5, ack=0, flags=h.Tcp.SYN).serialize(b"", src, dst)
    ref = bytes(IP(src="172.16.10.11", dst="203.0.113.10") / TCP(sport=1000, dport=80, seq=5, flags="S", window=65535))[
        20:
    ]
    assert tcp == ref


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda b: b[:10], "ip-truncated"),
        (lambda b: bytes([0x65]) + b[1:], "ip-bad-version"),
        (lambda b: bytes([0x43]) + b[1:], "ip-bad-ihl"),
        (lambda b: bytes([0x4F]) + b[1:], "ip-truncated"),
        (lambda b: b[:2] + struct.pack("!H", 500) + b[4:], "ip-bad-length"),
        (lambda b: b[:2] + struct.pack("!H", 10) + b[4:], "ip-bad-length"),
        (lambda b: b[:10] + bytes([b[10] ^ 0xFF]) + b[11:], "ip-bad-checksum"),
    ],
)
def test_ipv4_check_names_each_defect(mutate, reason):
    good = bytes(IP(src="10.0.0.1", dst="10.0.0.2") / UDP() / (b"x" * 3))
    assert h.ipv4_check(good, 0) is None
    assert h.ipv4_check(mutate(good), 0) == reason


@pytest.mark.parametrize("options", [b"", b"\x01" * 4, b"\x07\x07\x04" + b"\0" * 5])
def test_ipv4_check_verifies_the_checksum_of_every_header_length(options):
    # (an option-less header takes a path of its own)
    good = bytes(IP(src="10.0.0.1", dst="10.0.0.2", options=options) / UDP())
    assert (good[0] & 0x0F) * 4 == 20 + len(options)
    assert h.ipv4_check(good, 0) is None
    for at in (1, 10, 11, 19, (good[0] & 0x0F) * 4 - 1):
        bad = bytearray(good)
        bad[at] ^= 0x01
        assert h.ipv4_check(bad, 0) == "ip-bad-checksum", at


@given(st.binary(min_size=20, max_size=60).filter(lambda b: len(b) % 2 == 0), st.integers(0, 9), st.integers(0, 0xFFFF))
def test_incremental_checksum_equals_recompute(data, word, new):
    word = min(word, len(data) // 2 - 1)
    csum = h.checksum(data)
    old = int.from_bytes(data[2 * word : 2 * word + 2], "big")
    changed = data[: 2 * word] + new.to_bytes(2, "big") + data[2 * word + 2 :]
    updated = h.csum_update16(csum, old, new)
    # One's complement has two zeros; both verify.
    assert updated == h.checksum(changed) or {updated, h.checksum(changed)} == {0, 0xFFFF}


@given(st.integers(2, 255))
def test_ttl_decrement_keeps_header_valid(ttl):
    frame = bytearray(bytes(Ether() / IP(src="10.1.1.1", dst="10.2.2.2", ttl=ttl) / UDP()))
    decrement_ttl(frame)
    assert frame[22] == ttl - 1
    assert h.ipv4_check(frame, 14) is None


def test_describe_never_raises_on_garbage():
    assert "unparsable" in h.describe(b"\x01\x02")
    assert "malformed" in h.describe(bytes(Ether(type=0x0800)) + b"\x45\x00")


@given(
    st.sampled_from(["tcp", "udp", "udp-no-checksum", "icmp-echo"]),
    st.booleans(),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 0xFFFF),
    st.binary(max_size=21),
)
def test_a_translation_leaves_every_checksum_valid(kind, src, new_ip, new_port, payload):
    """``l4.rewrite`` (NAT) updates the checksums incrementally: the header's and the
    segment's (its pseudo-header included) must verify as if computed afresh."""
    from gateway.l4 import rewrite

    ip = IP(src="192.0.2.2", dst="203.0.113.9", ttl=64)
    l4 = {
        "tcp": TCP(sport=40000, dport=80, flags="S"),
        "udp": UDP(sport=40000, dport=53),
        "udp-no-checksum": UDP(sport=40000, dport=53, chksum=0),
        "icmp-echo": ICMP(type=8, id=40000, seq=1),
    }[kind]
    buf = bytearray(bytes(ip / l4 / payload))
    rewrite(buf, 0, src, new_ip, new_port)
    assert h.ipv4_check(buf, 0) is None
    assert int.from_bytes(buf[12:16] if src else buf[16:20], "big") == new_ip
    seg = bytes(buf[20:])
    if kind == "icmp-echo":
        assert int.from_bytes(seg[4:6], "big") == new_port  # the identifier, either direction
        assert h.checksum(seg) == 0
    else:
        assert int.from_bytes(seg[0:2] if src else seg[2:4], "big") == new_port
        proto = h.IPPROTO_TCP if kind == "tcp" else h.IPPROTO_UDP
        if kind == "udp-no-checksum":
            assert seg[6:8] == b"\0\0"  # none stays none
        else:
            assert h.checksum(h.pseudo_header(bytes(buf[12:16]), bytes(buf[16:20]), proto, len(seg)) + seg) == 0
