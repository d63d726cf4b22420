"""The daemon runs with automatic garbage collection off (``gateway/gcpolicy.py``): that is
sound only while what it drops is freed by reference counting, or is collected by the
``young_garbage`` block that made it.  Each test runs a kind of churn with automatic
collection off, as the daemon does, and finds none of the churn's objects left: connections
and their cache entries, the model a reload builds on the side, zebra's route messages."""

from __future__ import annotations

import gc
import time
import weakref
from collections.abc import Iterator

import pytest
from pyroute2.netlink.rtnl.rtmsg import nh, rtmsg
from scapy.layers.inet import ICMP, IP, TCP, UDP

from gateway.cache import Entry
from gateway.effects import Effects
from gateway.fpm import RTM_DELROUTE, RTM_NEWROUTE, FpmServer
from gateway.headers import ip_int
from gateway.packet import Packet
from gateway.services.conntrack import Conn
from gateway.tables.fib import Fib
from suites.unit.conftest import Rig
from suites.unit.test_fpm import FakeSock, fpm, route_msg
from suites.unit.test_nat import nat_rig, out_frame
from suites.unit.test_reload import edit, rig_from_file, sr


def alive(*kinds: type) -> int:
    return sum(1 for o in gc.get_objects() if type(o) in kinds)


@pytest.fixture
def no_collection() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def test_connections_and_their_cache_entries_are_freed_without_a_collection(no_collection):
    rig = nat_rig(max_sessions=2000)
    before = alive(Conn, Entry, Packet, Effects)
    for sport in range(2000, 2200):
        for flags in ("S", "A", "R"):
            tcp = TCP(sport=sport, dport=80, flags=flags)
            rig.send("trunk", out_frame(IP(src="172.16.10.11", dst="203.0.113.10") / tcp))
        rig.send("trunk", out_frame(IP(src="172.16.10.11", dst="203.0.113.10") / UDP(sport=sport, dport=53)))
    rig.send("trunk", out_frame(IP(src="172.16.10.11", dst="203.0.113.10") / ICMP(id=7)))
    rig.send("trunk", out_frame(IP(src="172.16.10.11", dst="203.0.113.10", ttl=1) / UDP(sport=9, dport=9)))
    assert len(rig.take("uplink")) == 801
    assert alive(Conn) + alive(Entry) == before + 802
    for what in ("conntrack", "cache", "counters", "nat"):
        assert rig.handle({"cmd": "show", "what": what})["ok"]
    while rig.dp.sweep(time.monotonic() + 1000):
        pass
    assert alive(Conn, Entry, Packet, Effects) == before


def test_the_model_a_reload_builds_on_the_side_is_freed(tmp_path):
    rig, path = rig_from_file(tmp_path)
    gc.collect()
    gc.disable()
    try:
        before = alive(Fib)
        edit(path, lambda r: sr(r)["routes"].append({"prefix": "192.0.2.0/24", "via": "203.0.113.10"}))
        assert rig.handle({"cmd": "reload"})["ok"]
        edit(path, lambda r: r.setdefault("tables", {}).update(mac_aging=77))
        answer = rig.handle({"cmd": "reload"})
        assert not answer["ok"] and "need a restart" in answer["error"], answer  # after its model was built
        assert alive(Fib) == before, "the side models' FIBs are still there"
    finally:
        gc.enable()


def test_route_messages_from_zebra_are_freed(no_collection):
    rig = Rig()
    srv = FpmServer(rig.dp.model, rig.dp.model.router("t1", "sr"), FakeSock())
    nets = [f"10.{i // 256}.{i % 256}.0" for i in range(300)]
    add = b"".join(fpm(route_msg(RTM_NEWROUTE, n, 24, "203.0.113.10", "203.0.113.11")) for n in nets)
    withdraw = b"".join(fpm(route_msg(RTM_DELROUTE, n, 24)) for n in nets)
    gc.collect()
    before = alive(rtmsg, nh)
    srv.feed(add)
    assert srv.router.fib.lookup(ip_int("10.1.7.9")).origin == "bgp"
    srv.feed(withdraw)
    assert srv.removed == 300
    assert alive(rtmsg, nh) == before


CONTROL_WORKLOAD = [
    {"cmd": "ping"},
    *[
        {"cmd": "show", "what": what}
        for what in (
            "ports",
            "instances",
            "mac",
            "arp",
            "nd",
            "npt",
            "fib",
            "counters",
            "drops",
            "traces",
            "summary",
            "cache",
            "ha",
            "nat",
            "conntrack",
            "firewall",
            "mirror",
            "listeners",
            "services",
            "evi",
            "bogus",
        )
    ],  # fmt: skip
    {"cmd": "trace", "action": "start", "count": 5},
    {"cmd": "trace", "action": "show"},
    {"cmd": "route", "action": "add", "router": "t1", "half": "sr", "prefix": "192.0.2.0/24", "via": "203.0.113.10"},
    {
        "cmd": "route",
        "action": "add",
        "router": "t1",
        "half": "sr",
        "prefix": "198.51.100.0/24",
        "via": ["203.0.113.10", "203.0.113.11"],
    },  # fmt: skip
    {"cmd": "route", "action": "del", "router": "t1", "half": "sr", "prefix": "192.0.2.0/24"},
    {"cmd": "route", "action": "del", "router": "t1", "half": "sr", "prefix": "198.51.100.0/24"},
    # (ipaddress makes a /31 a reference cycle of itself: gcpolicy.acyclic)
    {"cmd": "route", "action": "add", "router": "t1", "half": "sr", "prefix": "192.0.2.8/31", "via": "203.0.113.10"},
    {"cmd": "route", "action": "del", "router": "t1", "half": "sr", "prefix": "192.0.2.8/31"},
    {"cmd": "route", "action": "add", "router": "t1", "half": "sr", "prefix": "2001:db8::/127", "via": "2001:db8::1"},
    {"cmd": "route", "action": "add", "router": "t1", "half": "sr", "prefix": "300.0.0.0/8", "via": "x"},
    {"cmd": "cache", "action": "flush"},
    {"cmd": "cache", "action": "disable"},
    {"cmd": "cache", "action": "enable"},
    {"cmd": "cache", "action": "set", "capacity": 5000, "idle_timeout": 30},
    {
        "cmd": "nat",
        "action": "add",
        "router": "t1",
        "kind": "dnat",
        "rule": {
            "name": "web",
            "public": "203.0.113.1",
            "proto": "tcp",
            "port": 8080,
            "to": "172.16.10.11",
            "to_port": 80,
        },
    },  # fmt: skip
    {"cmd": "nat", "action": "del", "router": "t1", "name": "web"},
    {"cmd": "nat", "action": "add", "router": "t1", "kind": "dnat", "rule": {"name": 7}},
    {
        "cmd": "firewall",
        "action": "add",
        "router": "t1",
        "rule": {"name": "x", "action": "drop", "direction": "in", "proto": "tcp", "dport": 22},
    },  # fmt: skip
    {"cmd": "firewall", "action": "del", "router": "t1", "name": "x"},
    {"cmd": "mirror", "action": "add", "name": "m", "port": "trunk", "direction": "both"},
    {"cmd": "mirror", "action": "del", "name": "m"},
    {"cmd": "ha", "action": "takeover", "router": "t1", "ip": "203.0.113.1"},
    {"cmd": "nonsense"},
    {"x": 1},
    ["not", "an", "object"],
]


def test_control_commands_leave_no_cycles_behind():
    """Every command, answered or refused, with packets traced between: a full collection
    afterwards finds nothing (each object it found would be a leak in the daemon)."""
    rig = nat_rig(max_sessions=2000)
    frames = [
        bytes(out_frame(IP(src="172.16.10.11", dst="203.0.113.10") / TCP(sport=sport, dport=80, flags="S")))
        for sport in range(2000, 2050)
    ]
    gc.collect()
    gc.disable()
    try:
        answers = []
        for _ in range(3):
            answers += [rig.handle(req) for req in CONTROL_WORKLOAD]
            for frame in frames:
                rig.send("trunk", frame, trace=True)
            assert len(rig.take("uplink")) == len(frames)
            rig.dp.sweep(time.monotonic() + 1000)
        assert sum(a["ok"] for a in answers) >= 3 * 30 and sum(not a["ok"] for a in answers) >= 3 * 5
        assert gc.collect() == 0
    finally:
        gc.enable()


class Planted:
    pass


def test_the_gc_command_finds_a_cycle_and_frees_it(rig):
    gc.collect()
    gc.disable()
    try:
        a, b = Planted(), Planted()
        a.other, b.other = b, a  # type: ignore[attr-defined]
        gone = weakref.ref(a)
        del a, b
        assert gone() is not None  # (no collection ran: the cycle holds itself)
        answer = rig.handle({"cmd": "gc"})
        assert answer["ok"], answer
        assert answer["result"]["unreachable"] >= 2
        assert answer["result"]["kinds"]["Planted"] == 2
        assert gone() is None
        assert rig.handle({"cmd": "gc"})["result"]["unreachable"] == 0
    finally:
        gc.enable()


def test_what_the_start_left_in_cycles_is_collected_before_the_freeze():
    """The daemon freezes what exists when its loop starts; garbage among it (an import's
    discarded classes) would be kept for good, so a full collection comes first."""
    from gateway import gcpolicy

    a, b = Planted(), Planted()
    a.other, b.other = b, a  # type: ignore[attr-defined]
    gone = weakref.ref(a)
    del a, b
    try:
        gcpolicy.reference_counting_only()
        assert gone() is None
    finally:
        gc.unfreeze()
        gc.enable()
