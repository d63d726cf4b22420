"""BFD: packet format against scapy's BFD layer, the state machine, timers."""

from __future__ import annotations

import pytest
from scapy.contrib.bfd import BFD

from gateway.ha import bfd
from gateway.ha.bfd import DOWN, INIT, UP, Packet, Session


def test_packet_roundtrip_and_scapy_agrees():
    pkt = Packet(UP, 0, 3, 0x11223344, 0x55667788, 100_000, 100_000, 0, poll=True)
    raw = pkt.serialize()
    assert len(raw) == 24
    theirs = BFD(raw)
    assert (theirs.version, theirs.sta, theirs.detect_mult, theirs.len) == (1, 3, 3, 24)
    assert theirs.my_discriminator == 0x11223344 and theirs.your_discriminator == 0x55667788
    assert theirs.min_tx_interval == 100_000 and "P" in str(theirs.flags)
    assert Packet.parser(raw) == pkt


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda b: b[:20], "short"),
        (lambda b: bytes([0x40]) + b[1:], "version"),
        (lambda b: b[:3] + bytes([30]) + b[4:], "length"),
        (lambda b: b[:2] + bytes([0]) + b[3:], "detect-mult-zero"),
        (lambda b: b[:4] + bytes(4) + b[8:], "my-discriminator-zero"),
        (lambda b: b[:1] + bytes([b[1] | 0x04]) + b[2:], "authentication-unsupported"),
    ],
)
def test_invalid_packets_are_named(mutate, reason):
    raw = Packet(UP, 0, 3, 1, 2, 1000, 1000).serialize()
    with pytest.raises(bfd.BfdError, match=reason):
        Packet.parser(mutate(raw))


def pair(tx_ms=100, mult=3):
    return Session(1, tx_ms * 1000, tx_ms * 1000, mult, seed=1), Session(2, tx_ms * 1000, tx_ms * 1000, mult, seed=2)


def run(a, b, start, until, step=0.01, drop_b_to_a=False):
    t = start
    while t < until:
        for src, dst, blocked in ((a, b, False), (b, a, drop_b_to_a)):
            out = src.poll(t)
            if out is not None and not blocked:
                dst.receive(out, t)
        t += step
    return t


def test_three_way_handshake_then_fast_timers():
    a, b = pair()
    t = run(a, b, 0.0, 3.0)
    assert a.state == b.state == UP
    assert [c[2] for c in a.changes][:2] in (["init", "up"], ["up"])
    assert a.desired_tx_us == 100_000, "Up: configured interval instead of the 1 s slow start"
    assert not a.polling and not b.polling, "the poll sequence completed with a Final"
    sent = a.tx_packets
    run(a, b, t, t + 1.0)
    assert 9 <= a.tx_packets - sent <= 14, "about 10 packets a second at 100 ms (75-100% jitter)"


def test_detection_time_expiry_takes_the_session_down():
    a, b = pair()
    t = run(a, b, 0.0, 3.0)
    assert a.state == UP
    assert a.detection_time() == pytest.approx(0.3)
    t2 = run(a, b, t, t + 0.5, drop_b_to_a=True)
    assert a.state == DOWN and a.diag == bfd.DIAG_DETECT_EXPIRED
    down_at = next(c[0] for c in a.changes if c[2] == "down")
    last_rx = t  # b's packets stopped reaching a at t
    assert down_at - last_rx <= 0.3 + 0.11, "detected within multiplier x interval"
    run(a, b, t2, t2 + 4.0)
    assert a.state == b.state == UP, "the session comes back when packets flow again"


def test_peer_signalling_down_brings_us_down():
    a, b = pair()
    t = run(a, b, 0.0, 3.0)
    b.admin_down(t)
    run(a, b, t, t + 0.5)
    assert a.state == DOWN and a.diag == bfd.DIAG_NEIGHBOR_DOWN


def test_slow_start_while_down():
    a = Session(7, 50_000, 50_000, 3, seed=3)
    assert a.state == DOWN and a.desired_tx_us == bfd.SLOW_TX_US
    assert 0.75 <= a.tx_interval() <= 1.0


def test_wrong_your_discriminator_is_discarded():
    a = Session(7, 100_000, 100_000, 3)
    raw = Packet(INIT, 0, 3, 9, 12345, 100_000, 100_000).serialize()
    assert a.receive(raw, 0.0) is None and a.discarded == 1 and a.state == DOWN


def test_the_next_timer_is_the_detection_timeout_when_it_comes_before_the_next_packet():
    # A caller that sleeps until next_timer() notices a dead peer at its detection time,
    # not up to a transmit interval later.
    a, b = pair(tx_ms=50)
    t = run(a, b, 0.0, 3.0)
    assert a.state == UP
    a.next_tx = t + 10.0  # nothing to send for a long time: only detection can wake us
    deadline = a.next_timer()
    assert deadline == a.detect_deadline and t < deadline <= t + 0.15
    a.poll(deadline)  # (the state change goes out at once)
    assert a.state == DOWN, "the session goes down at its deadline, when the caller wakes"
