"""IPv4 fragments through the SR's services: put back together before conntrack and NAT,
translated as one datagram, and sent on as fragments no larger than those that came.

The unit edge with SNAT (``test_nat.NAT_YAML``): t1's fragmented UDP datagram leaves from
the pool address with its fragments' sizes, reassembles at the far side with a correct UDP
checksum; the fragmented answer comes back to t1; fragments in any order, a datagram never
completed is dropped after its timeout and counted; the daemon's accounting stays whole.
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP, defragment, fragment
from scapy.layers.l2 import Dot1Q, Ether

from suites.unit.test_nat import EXT, H1, POOL, UP_GW, WEB_GW, nat_rig

T1, FAR = "172.16.10.11", "203.0.113.10"


def outbound(size: int, frag: int = 1000, ident: int = 7) -> list[IP]:
    dgram = IP(src=T1, dst=FAR, id=ident) / UDP(sport=5353, dport=53) / (bytes(range(256)) * 40)[: size - 28]
    return fragment(dgram, fragsize=frag)


def send_out(rig, frags) -> None:
    for f in frags:
        rig.send("trunk", bytes(Ether(src=H1, dst=WEB_GW) / Dot1Q(vlan=10) / f))


def test_a_fragmented_datagram_leaves_translated_in_fragments_and_its_answer_comes_back():
    rig = nat_rig()
    frags = outbound(3000)
    send_out(rig, frags)
    out = [Ether(f)[IP] for f in rig.take("uplink")]
    assert len(out) == len(frags) and all(p.src in POOL for p in out), rig.drops()
    assert max(p.len for p in out) == max(IP(bytes(f)).len for f in frags), "no larger than the largest that came"
    (whole,) = defragment(out)
    original = IP(src=T1, dst=FAR, id=7) / UDP(sport=5353, dport=53) / (bytes(range(256)) * 40)[: 3000 - 28]
    assert bytes(whole[UDP].payload) == bytes(original[UDP].payload) and whole.ttl == 62
    check = IP(bytes(whole))
    del check[UDP].chksum
    assert IP(bytes(check))[UDP].chksum == whole[UDP].chksum, "the UDP checksum fits the translated datagram"
    # The answer, fragmented by the far side, comes back to t1 (translated back) as fragments.
    public, port = whole.src, whole[UDP].sport
    answer = IP(src=FAR, dst=public, id=9) / UDP(sport=53, dport=port) / (b"a" * 2500)
    for f in fragment(answer, fragsize=1200):
        rig.send("uplink", bytes(Ether(src=EXT, dst=UP_GW) / f))
    back = [Ether(f)[IP] for f in rig.take("trunk")]
    (got,) = defragment(back)
    assert got.dst == T1 and got[UDP].dport == 5353 and bytes(got[UDP].payload) == b"a" * 2500, rig.drops()
    assert rig.dp.pipeline.drops() == {} and rig.dp.pipeline.internal_errors == 0


def test_an_incomplete_datagram_is_dropped_after_its_timeout_and_counted():
    rig = nat_rig()
    send_out(rig, outbound(3000)[:-1])  # the last fragment never comes
    assert rig.take("uplink") == []
    svc = rig.dp.model.router("t1", "sr").services
    assert svc.reasm.show()["waiting"] == 1
    import time

    svc.age(time.monotonic() + 10)
    assert svc.reasm.show() == {"waiting": 0, "reassembled": 0, "timeouts": 1}


@settings(max_examples=60, deadline=None)
@given(size=st.integers(60, 6000), frag=st.integers(1, 180).map(lambda n: n * 8), seed=st.integers(0, 1000))
def test_fragments_in_any_order_make_the_same_datagram(size, frag, seed):
    rig = nat_rig()
    frags = outbound(size, frag)
    random.Random(seed).shuffle(frags)
    send_out(rig, frags)
    out = [Ether(f)[IP] for f in rig.take("uplink")]
    assert out and rig.dp.pipeline.drops() == {}, rig.dp.pipeline.drops()
    whole = defragment(out)[0] if len(out) > 1 else out[0]
    assert len(whole[UDP].payload) == size - 28 and whole.src in POOL
