"""NPTv6 (RFC 6296) on the SR: the mapping (checked against the RFC's own example and for
checksum neutrality), and packets through the SR with it, slow path and cache alike."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import UDP
from scapy.layers.inet6 import ICMPv6PacketTooBig, IPerror6, IPv6
from scapy.layers.l2 import Ether

from gateway.headers import checksum
from gateway.services.npt import NptRule
from suites.unit.conftest import Rig
from suites.unit.test_ipv6 import DUAL_YAML, EXT, EXT_IP, H1, H1_IP, UP_GW, learn_h1, na, parsed, tenant

A = ipaddress.IPv6Address


def rule(inside: str, outside: str) -> NptRule:
    i, o = ipaddress.IPv6Network(inside), ipaddress.IPv6Network(outside)
    return NptRule("r", int(i.network_address), int(o.network_address), i.prefixlen)


def test_the_rfc_6296_example():
    """RFC 6296 appendix B: fd01:203:405:1::1234 inside fd01:0203:0405::/48 is
    2001:db8:1:d550::1234 outside 2001:0db8:0001::/48."""
    r = rule("fd01:203:405::/48", "2001:db8:1::/48")
    out = r.map(int(A("fd01:203:405:1::1234")), to_outside=True)
    assert out is not None and str(A(out)) == "2001:db8:1:d550::1234"
    assert r.map(out, to_outside=False) == int(A("fd01:203:405:1::1234"))


def _sum(addr: int) -> int:
    return checksum(addr.to_bytes(16, "big"))


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([16, 32, 48, 64]),
    st.integers(0, (1 << 128) - 1),
    st.integers(0, (1 << 128) - 1),
    st.integers(0, (1 << 128) - 1),
)
def test_the_mapping_is_checksum_neutral_and_reversible(plen, inside, outside, host):
    full = (1 << 128) - 1
    mask = (full << (128 - plen)) & full
    r = NptRule("r", inside & mask, outside & mask, plen)
    addr = (inside & mask) | (host & ~mask & full)
    out = r.map(addr, to_outside=True)
    if out is None:  # its adjusted word is 0xFFFF: not mappable (RFC 6296 3.5)
        return
    assert out & mask == outside & mask, "the outside prefix"
    assert _sum(out) == _sum(addr) or {_sum(out), _sum(addr)} == {0, 0xFFFF}, "checksum-neutral"
    back = r.map(out, to_outside=False)
    assert back == addr or (back is not None and _sum(back) == _sum(addr)), "and back"


NPT_YAML = DUAL_YAML.replace(
    '      routes: [{prefix: "::/0", via: "2001:db8:cb::fe"}]\n',
    '      routes: [{prefix: "::/0", via: "2001:db8:cb::fe"}]\n'
    '      nptv6: [{name: web, inside: "2001:db8:10::/48", outside: "2001:db8:1010::/48"}]\n',
)
FAR = "2001:db8:99::5"


def npt_rig(cache: bool = True) -> Rig:
    r = Rig(NPT_YAML)
    r.dp.cache.enabled = cache
    learn_h1(r)
    r.send("uplink", na(EXT_IP, EXT, "2001:db8:cb::1", UP_GW, None))
    r.take("uplink")
    return r


def outside(addr: str) -> str:
    """What NPTv6 makes of an address of 2001:db8:10::/48."""
    r = rule("2001:db8:10::/48", "2001:db8:1010::/48")
    return str(A(r.map(int(A(addr)), to_outside=True)))  # type: ignore[arg-type]


def test_a_tenant_leaves_translated_and_the_reply_comes_back_to_it():
    r = npt_rig()
    r.send("trunk", tenant(10, IPv6(src=H1_IP, dst=FAR) / UDP(sport=4000, dport=53) / b"q"))
    (out,) = parsed(r.take("uplink"))
    assert out[IPv6].src == outside(H1_IP) and out[IPv6].src.startswith("2001:db8:1010:")
    assert UDP(bytes(out[UDP])).chksum == out[UDP].chksum
    fresh = IPv6(bytes(out[IPv6]))
    del fresh[UDP].chksum
    assert IPv6(bytes(fresh))[UDP].chksum == out[UDP].chksum, "the UDP checksum is still right (neutral)"
    r.send("uplink", bytes(Ether(src=EXT, dst=UP_GW) / IPv6(src=FAR, dst=outside(H1_IP)) / UDP(sport=53, dport=4000)))
    (back,) = parsed(r.take("trunk"))
    assert back[IPv6].dst == H1_IP and back.dst == H1
    (row,) = r.handle({"cmd": "show", "what": "npt"})["result"]["t1-sr"]
    assert row["translated"] == {"out": 1, "in": 1} and row["outside"] == "2001:db8:1010::/48"


def test_a_packet_too_big_about_a_translated_flow_reaches_the_tenant_whole():
    r = npt_rig()
    r.send("trunk", tenant(10, IPv6(src=H1_IP, dst=FAR) / UDP(sport=4000, dport=9) / (b"x" * 1300)))
    (sent,) = parsed(r.take("uplink"))
    ptb = IPv6(src=EXT_IP, dst=outside(H1_IP)) / ICMPv6PacketTooBig(mtu=1280) / bytes(sent[IPv6])[:1232]
    r.send("uplink", bytes(Ether(src=EXT, dst=UP_GW) / ptb))
    (got,) = parsed(r.take("trunk"))
    assert got[IPv6].dst == H1_IP and got[IPerror6].src == H1_IP, "outer and quoted addresses inside again"
    fresh = IPv6(bytes(got[IPv6]))
    del fresh[ICMPv6PacketTooBig].cksum
    assert IPv6(bytes(fresh))[ICMPv6PacketTooBig].cksum == got[ICMPv6PacketTooBig].cksum


def test_an_unmappable_address_is_dropped_by_name():
    r = npt_rig()
    dst = "2001:db8:1010:ffff::11"  # the word NPTv6 adjusts (right after the /48) is 0xffff
    r.send("uplink", bytes(Ether(src=EXT, dst=UP_GW) / IPv6(src=FAR, dst=dst) / UDP(sport=53, dport=4000)))
    assert not r.take("trunk")
    assert r.drops() == {"sr/npt-unmappable": 1}


def test_cache_and_slow_path_translate_alike():
    a, b = npt_rig(True), npt_rig(False)
    for _ in range(3):
        for rig in (a, b):
            rig.send("trunk", tenant(10, IPv6(src=H1_IP, dst=FAR, hlim=9) / UDP(sport=1, dport=2)))
            rig.send(
                "uplink", bytes(Ether(src=EXT, dst=UP_GW) / IPv6(src=FAR, dst=outside(H1_IP)) / UDP(sport=2, dport=1))
            )
        assert a.take("uplink") == b.take("uplink") and a.take("trunk") == b.take("trunk")
    assert a.dp.cache.hits >= 4
    rows = a.handle({"cmd": "show", "what": "cache"})["result"]["entries"]
    assert any("ip6 " in row["action"] for row in rows), rows
