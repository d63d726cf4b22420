"""Mirror sessions on a fake monitor TAP: what is copied, byte for byte, and nothing else."""

from __future__ import annotations

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import ARP, Dot1Q, Ether

from suites.unit.conftest import Rig

H1 = "02:00:00:00:00:11"
WEB_GW = "02:00:00:00:10:01"


class FakeTap:
    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[bytes] = []
        self.closed = False

    def send(self, frame: bytes) -> None:
        self.sent.append(bytes(frame))

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def mrig(monkeypatch) -> Rig:
    rig = Rig()
    taps: list[FakeTap] = []

    def open_tap(name: str) -> FakeTap:
        taps.append(FakeTap(name))
        return taps[-1]

    rig.dp.monitor.open_tap = open_tap
    rig.taps = taps  # type: ignore[attr-defined]
    return rig


def flow(n: int) -> list[bytes]:
    return [
        bytes(
            Ether(src=H1, dst=WEB_GW)
            / Dot1Q(vlan=10)
            / IP(src="172.16.10.11", dst="172.16.20.13")
            / UDP(sport=1000 + i, dport=53)
        )
        for i in range(n)
    ]


def learn(rig: Rig) -> None:
    rig.send(
        "trunk",
        bytes(
            Ether(src="02:00:00:00:00:13", dst="ff:ff:ff:ff:ff:ff")
            / Dot1Q(vlan=20)
            / ARP(psrc="172.16.20.13", pdst="172.16.20.1")
        ),
    )
    rig.take("trunk")


def test_port_rx_copies_each_frame_as_on_the_wire(mrig):
    learn(mrig)
    assert mrig.handle({"cmd": "mirror", "action": "add", "name": "m", "port": "trunk", "direction": "rx"})["ok"]
    frames = flow(5)
    for f in frames:
        mrig.send("trunk", f)
    (tap,) = mrig.taps
    assert tap.name == "edge1-mon"
    assert tap.sent == frames, "K received frames, K byte-identical copies, VLAN tag inline"


def test_port_tx_copies_what_left(mrig):
    learn(mrig)
    mrig.handle({"cmd": "mirror", "action": "add", "name": "m", "port": "trunk", "direction": "tx"})
    for f in flow(3):
        mrig.send("trunk", f)
    sent = mrig.take("trunk")
    assert len(sent) == 3 and mrig.taps[0].sent == sent


def test_instance_session_sees_only_its_members(mrig):
    learn(mrig)
    mrig.handle({"cmd": "mirror", "action": "add", "name": "web", "instance": "web", "direction": "rx"})
    web = flow(2)
    app = bytes(
        Ether(src="02:00:00:00:00:13", dst="02:00:00:00:20:01")
        / Dot1Q(vlan=20)
        / IP(src="172.16.20.13", dst="172.16.10.11")
        / UDP()
    )
    for f in [*web, app]:
        mrig.send("trunk", f)
    assert mrig.taps[0].sent == web, "VLAN 20 (instance app) is not web's"


def test_removing_the_last_session_closes_the_tap_and_unwires(mrig):
    mrig.handle({"cmd": "mirror", "action": "add", "name": "m", "port": "trunk"})
    assert mrig.dp.model.ports["trunk"].mirror is not None
    assert mrig.handle({"cmd": "mirror", "action": "del", "name": "m"})["ok"]
    assert mrig.taps[0].closed and all(p.mirror is None for p in mrig.dp.model.ports.values())
    mrig.send("trunk", flow(1)[0])
    assert mrig.taps[0].sent == []


@pytest.mark.parametrize(
    "req",
    [
        {"cmd": "mirror", "action": "add", "name": "x", "port": "nope"},
        {"cmd": "mirror", "action": "add", "name": "x", "instance": "nope"},
        {"cmd": "mirror", "action": "add", "name": "x", "router": "nope"},
        {"cmd": "mirror", "action": "add", "name": "x"},
        {"cmd": "mirror", "action": "add", "name": "x", "port": "trunk", "direction": "sideways"},
        {"cmd": "mirror", "action": "del", "name": "never"},
        {"cmd": "mirror", "action": "flip", "name": "x"},
    ],
)
def test_bad_sessions_are_refused(mrig, req):
    resp = mrig.handle(req)
    assert resp["ok"] is False and resp["error"], resp
    assert mrig.control.internal_errors == 0
