"""IPv4 past the next link's MTU: fragmentation needed (DF set) or fragments (DF clear).

The unit edge with an uplink MTU of 1400: a tenant's datagram of 1500 bytes to the
provider side either gets ICMP fragmentation needed carrying the next-hop MTU (RFC 1191),
or leaves in fragments that reassemble to it (RFC 791); a cached flow's larger packet
meets the same check, never the cache.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, UDP, IPerror, defragment
from scapy.layers.l2 import ARP, Dot1Q, Ether

from gateway.l3 import fragments
from suites.unit.conftest import EDGE_YAML, Rig

MTU_YAML = EDGE_YAML.replace(
    "uplink: {ifname: edge1-eth1, role: uplink}", "uplink: {ifname: edge1-eth1, role: uplink, mtu: 1400}"
)
H1, WEB_GW, EXT, UP_GW = "02:00:00:00:00:11", "02:00:00:00:10:01", "02:00:00:00:00:99", "02:00:00:00:cb:01"


def rig(cache: bool = True) -> Rig:
    r = Rig(MTU_YAML)
    r.dp.cache.enabled = cache
    r.send(
        "uplink",
        bytes(Ether(src=EXT, dst=UP_GW) / ARP(op=2, hwsrc=EXT, psrc="203.0.113.10", hwdst=UP_GW, pdst="203.0.113.1")),
    )
    r.send(
        "trunk",
        bytes(
            Ether(src=H1, dst="ff:ff:ff:ff:ff:ff")
            / Dot1Q(vlan=10)
            / ARP(op=1, hwsrc=H1, psrc="172.16.10.11", pdst="172.16.10.1")
        ),
    )
    r.take("trunk")
    r.take("uplink")
    r.handle(
        {"cmd": "route", "action": "add", "router": "t1", "half": "sr", "prefix": "0.0.0.0/0", "via": "203.0.113.10"}
    )
    return r


def datagram(size: int, df: bool, sport: int = 5000) -> bytes:
    """A UDP datagram of ``size`` bytes (IP header included) from t1 to 198.51.100.10."""
    ip = IP(src="172.16.10.11", dst="198.51.100.10", flags="DF" if df else 0, id=0x4242, ttl=64)
    return bytes(Ether(src=H1, dst=WEB_GW) / Dot1Q(vlan=10) / ip / UDP(sport=sport, dport=9) / bytes(size - 28))


@pytest.mark.parametrize("cache", [True, False])
def test_dont_fragment_past_the_mtu_gets_fragmentation_needed_with_the_mtu(cache):
    r = rig(cache)
    r.send("trunk", datagram(1500, df=True))
    assert r.take("uplink") == [] and r.drops() == {"sr/frag-needed": 1}
    (err,) = [Ether(f) for f in r.take("trunk")]
    assert err[IP].dst == "172.16.10.11" and err[ICMP].type == 3 and err[ICMP].code == 4
    assert err[ICMP].nexthopmtu == 1400 and err[IPerror].id == 0x4242
    r.send("trunk", datagram(1400, df=True))
    (out,) = r.take("uplink")
    assert len(out) == 14 + 1400, "a datagram of the MTU goes whole"


@pytest.mark.parametrize("cache", [True, False])
def test_without_dont_fragment_it_leaves_in_fragments_that_reassemble(cache):
    r = rig(cache)
    sent = datagram(3000, df=False)
    r.send("trunk", sent)
    frags = [Ether(f) for f in r.take("uplink")]
    assert len(frags) == 3 and all(len(f) - 14 <= 1400 for f in frags), [len(f) for f in frags]
    assert all(f[IP].frag * 8 % 8 == 0 for f in frags) and [f[IP].flags.MF for f in frags] == [1, 1, 0]
    (whole,) = defragment([f[IP] for f in frags])
    original = Ether(sent)[IP]
    assert bytes(whole[UDP].payload) == bytes(original[UDP].payload) and whole.ttl == 62  # DR and SR
    assert whole[UDP].chksum == original[UDP].chksum, "the first fragment carries the untouched UDP header"
    assert r.dp.pipeline.stages["egress"].counters()["fragments_sent"] == 3


def test_a_cached_flows_larger_packet_meets_the_check_not_the_cache():
    r = rig()
    for _ in range(3):
        r.send("trunk", datagram(200, df=True))
    assert len(r.take("uplink")) == 3 and r.dp.cache.hits >= 1
    hits = r.dp.cache.hits
    r.send("trunk", datagram(1500, df=True))  # the same flow, now too big
    assert r.dp.cache.hits == hits and r.take("uplink") == [] and r.drops() == {"sr/frag-needed": 1}
    r.send("trunk", datagram(1500, df=False))
    assert len(r.take("uplink")) == 2


@settings(max_examples=200, deadline=None)
@given(
    size=st.integers(21, 4000),
    mtu=st.integers(68, 1500),
    options=st.sampled_from([b"", b"\x01\x01\x01\x00", b"\x83\x07\x04" + bytes(4) + b"\x00", b"\x07\x03\x04\x00"]),
    offset=st.integers(0, 100),
    more=st.booleans(),
)
def test_fragments_reassemble_to_the_datagram(size, mtu, options, offset, more):
    """Any datagram (a fragment itself or not, with options copied or not) and MTU: every
    fragment fits, data offsets are multiples of 8 from the datagram's own, only copied
    options repeat, and the pieces put back in order are the datagram's data."""
    ip = IP(src="10.0.0.1", dst="10.0.0.2", proto=17, options=options, frag=offset, flags="MF" if more else 0)
    payload = (bytes(range(256)) * 16)[: max(1, size - len(bytes(ip)))]
    frame = bytearray(bytes(12) + b"\x08\x00" + bytes(ip / payload))
    ihl = (frame[14] & 0x0F) * 4
    if mtu < ihl + 8:
        return
    out = fragments(frame, mtu)
    data = b""
    for i, f in enumerate(out):
        p = IP(bytes(f[14:]))
        assert len(f) - 14 <= mtu and p.len == len(f) - 14
        assert p.frag == offset + len(data) // 8
        assert p.flags.MF == (1 if i < len(out) - 1 else int(more))
        assert IP(bytes(p)).chksum == p.chksum
        if i:
            assert all(o.copy_flag for o in p.options if o.option != 0)  # (0: end of list, padding)
        data += bytes(p.payload)
    assert data == bytes(frame[14 + ihl :])
