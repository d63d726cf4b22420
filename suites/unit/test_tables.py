"""FIB longest-prefix match and control commands."""

from __future__ import annotations

import json
import select
import socket
import threading
from contextlib import contextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.epoch import Epoch
from gateway.headers import ip_int
from gateway.tables.fib import Fib, Route


@contextmanager
def serving(listener):
    """Run ``listener`` (a UnixListener) in a thread with its own epoll loop, as the datapath would."""
    ep = select.epoll()
    handlers: dict = {}
    listener.attach(ep, handlers)
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            for fd, _ in ep.poll(0.05):
                handlers[fd]()

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        yield listener
    finally:
        stop.set()
        thread.join()
        listener.close()
        ep.close()


def test_fib_longest_prefix_wins():
    fib = Fib(Epoch())
    for prefix, plen, via in (("0.0.0.0", 0, 1), ("10.0.0.0", 8, 2), ("10.1.0.0", 16, 3), ("10.1.2.0", 24, 4)):
        fib.add(Route(ip_int(prefix), plen, via, None))
    assert fib.lookup(ip_int("10.1.2.3")).via == 4
    assert fib.lookup(ip_int("10.1.3.3")).via == 3
    assert fib.lookup(ip_int("10.200.0.1")).via == 2
    assert fib.lookup(ip_int("192.0.2.1")).via == 1
    fib.remove(ip_int("10.1.0.0"), 16)
    assert fib.lookup(ip_int("10.1.3.3")).via == 2
    assert fib.remove(ip_int("10.1.0.0"), 16) is None


def test_fib_host_bits_masked_on_add():
    fib = Fib(Epoch())
    fib.add(Route(ip_int("10.1.2.3"), 24, 9, None))
    assert fib.lookup(ip_int("10.1.2.200")).via == 9


def test_fib_ipv6_longest_prefix_from_0_to_128_bits():
    from gateway.headers6 import ip6_int

    fib = Fib(Epoch(), bits=128)
    for prefix, plen, via in (("::", 0, 1), ("2001:db8::", 32, 2), ("2001:db8:10::", 48, 3),
                              ("2001:db8:10::11", 128, 4), ("2001:db8:10::ff", 127, 5)):  # fmt: skip
        fib.add(Route(ip6_int(prefix) | 0xFFFF if plen < 64 else ip6_int(prefix), plen, via, None))
    assert fib.lookup(ip6_int("2001:db8:10::11")).via == 4
    assert fib.lookup(ip6_int("2001:db8:10::fe")).via == 5
    assert fib.lookup(ip6_int("2001:db8:10::12")).via == 3
    assert fib.lookup(ip6_int("2001:db8:99::1")).via == 2
    assert fib.lookup(ip6_int("2001:db9::1")).via == 1
    assert fib.get(ip6_int("2001:db8:10::"), 48).to_dict()["prefix"] == "2001:db8:10::/48", "host bits masked"
    with pytest.raises(ValueError, match="129"):
        fib.add(Route(0, 129, 1, None))
    assert fib.remove(ip6_int("2001:db8:10::11"), 128).via == 4
    assert fib.lookup(ip6_int("2001:db8:10::11")).via == 3


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, (1 << 128) - 1), st.integers(0, 128)), max_size=20),
       st.lists(st.integers(0, (1 << 128) - 1), min_size=1, max_size=10))  # fmt: skip
def test_fib_ipv6_lookup_is_the_longest_matching_prefix(routes, dsts):
    from gateway.tables.fib import mask

    fib = Fib(Epoch(), bits=128)
    table = {}
    for i, (prefix, plen) in enumerate(routes):
        fib.add(Route(prefix, plen, i, None))
        table[(prefix & mask(plen, 128), plen)] = i
    for dst in dsts:
        best = max(((plen, via) for (p, plen), via in table.items() if dst & mask(plen, 128) == p), default=None)
        got = fib.lookup(dst)
        assert (got.via if got else None) == (best[1] if best else None)


# Prefixes drawn near each other so that they nest: a few /8s, the lengths at the trie's
# level boundaries (8, 16, 24 and one past each) among them.
_V4_PREFIX = st.tuples(
    st.sampled_from([0x0A000000, 0x0A010000, 0x0A010200, 0x0A0102F0, 0xC0000000]),
    st.integers(0, 0x3F),
    st.sampled_from([0, 1, 7, 8, 9, 12, 15, 16, 17, 20, 23, 24, 25, 28, 31, 32]),
).map(lambda t: ((t[0] | (t[1] << 4 if t[2] > 24 else t[1] << 12)) & 0xFFFFFFFF, t[2]))


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.booleans(), _V4_PREFIX), min_size=1, max_size=40),
    st.lists(st.integers(0, 0xFFFFFFFF), min_size=1, max_size=8),
)
def test_fib_ipv4_lookup_is_the_longest_matching_prefix_through_adds_and_removes(ops, dsts):
    """The trie against the definition, after every add and remove (a re-add replaces)."""
    from gateway.tables.fib import mask

    fib = Fib(Epoch())
    table: dict[tuple[int, int], int] = {}
    probes = dsts + [p | 0x55 for (_add, (p, _plen)) in ops]
    for n, (add, (prefix, plen)) in enumerate(ops):
        key = (prefix & mask(plen), plen)
        if add:
            fib.add(Route(prefix, plen, n, None))
            table[key] = n
        else:
            got = fib.remove(prefix, plen)
            assert (got.via if got else None) == table.pop(key, None)
        for dst in probes:
            best = max(((pl, via) for (p, pl), via in table.items() if dst & mask(pl) == p), default=None)
            got = fib.lookup(dst)
            assert (got.via if got else None) == (best[1] if best else None), (hex(dst), table)
    for prefix, plen in list(table):
        fib.remove(prefix, plen)
    assert fib.lookup(0x0A010203) is None
    assert not any(isinstance(slot, list) for slot in fib._root), "a level below the root outlived its prefixes"
    assert not fib._below


def test_fib_ipv4_a_short_prefix_under_a_million_longer_ones_fills_only_what_they_leave():
    fib = Fib(Epoch())
    for i in range(4096):  # /24s under 10.0.0.0/12 .. and a /28 in one of them
        fib.add(Route(0x0A000000 + (i << 8), 24, 1, None))
    fib.add(Route(ip_int("10.0.5.16"), 28, 2, None))
    fib.add(Route(ip_int("10.0.0.0"), 8, 3, None))
    fib.add(Route(0, 0, 4, None))
    assert fib.lookup(ip_int("10.0.5.17")).via == 2
    assert fib.lookup(ip_int("10.0.5.33")).via == 1
    assert fib.lookup(ip_int("10.16.0.1")).via == 3  # past the /24s, inside the /8
    assert fib.lookup(ip_int("11.0.0.1")).via == 4
    fib.remove(ip_int("10.0.5.0"), 24)
    assert fib.lookup(ip_int("10.0.5.33")).via == 3
    assert fib.lookup(ip_int("10.0.5.17")).via == 2
    fib.remove(ip_int("10.0.0.0"), 8)
    assert fib.lookup(ip_int("10.0.5.33")).via == 4
    assert fib.lookup(ip_int("10.0.6.1")).via == 1


def test_fib_ipv4_a_level_given_back_keeps_the_routes_of_its_parents_length():
    fib = Fib(Epoch())
    for prefix, plen, via in (("10.0.0.0", 8, 0), ("10.0.0.0", 16, 1), ("10.0.5.0", 24, 2), ("10.0.5.128", 25, 3)):
        fib.add(Route(ip_int(prefix), plen, via, None))
    fib.remove(ip_int("10.0.5.128"), 25)  # the /24's level below goes: its slot is the /24 again
    assert fib.lookup(ip_int("10.0.5.200")).via == 2
    assert not isinstance(fib._root[10][0][5], list)
    fib.remove(ip_int("10.0.5.0"), 24)  # the /16's level below goes: the slot is the /16 again
    assert fib.lookup(ip_int("10.0.5.200")).via == 1
    assert not isinstance(fib._root[10][0], list)
    fib.remove(ip_int("10.0.0.0"), 16)  # the /8's: the root slot is the /8
    assert fib.lookup(ip_int("10.0.5.200")).via == 0
    assert not isinstance(fib._root[10], list) and not fib._below


def test_show_everything(rig):
    for what in ("ports", "instances", "mac", "arp", "fib", "counters", "drops", "traces", "summary"):
        resp = rig.handle({"cmd": "show", "what": what})
        assert resp["ok"], resp
        json.dumps(resp)
    fib = rig.handle({"cmd": "show", "what": "fib"})["result"]
    assert {"prefix": "0.0.0.0/0", "via": "169.254.0.2", "port": "transit", "router": "t1-dr"}.items() <= next(
        r for r in fib if r["router"] == "t1-dr" and r["prefix"] == "0.0.0.0/0"
    ).items()
    assert any(r["router"] == "t1-sr" and r["prefix"] == "172.16.10.0/24" and r["via"] == "169.254.0.1" for r in fib)


def test_bad_requests_are_answered_and_counted(rig):
    bad = [
        [],
        {"nocmd": 1},
        {"cmd": "explode"},
        {"cmd": "show", "what": "everything"},
        {"cmd": "trace", "action": "inject", "port": "nope", "frame": "00"},
        {"cmd": "trace", "action": "inject", "port": "trunk", "frame": "zz"},
        {"cmd": "trace", "action": "start", "count": 0},
        {"cmd": "route", "action": "add", "router": "t1", "half": "dr", "prefix": "10.0.0.0/8", "via": "8.8.8.8"},
        {"cmd": "route", "action": "add", "router": "t1", "half": "dr", "prefix": "10.0.0.0/33", "via": "172.16.10.5"},
        {"cmd": "route", "action": "del", "router": "t9", "prefix": "10.0.0.0/8"},
    ]
    for req in bad:
        resp = rig.handle(req)
        assert resp["ok"] is False and resp["error"], req
    assert rig.control.errors == len(bad)


def test_route_add_and_del_take_effect(rig):
    resp = rig.handle(
        {
            "cmd": "route",
            "action": "add",
            "router": "t1",
            "half": "dr",
            "prefix": "10.50.0.0/16",
            "via": "172.16.20.254",
        },
    )
    assert resp["ok"], resp
    router = next(r for r in rig.dp.model.routers if r.label == "t1-dr")
    assert router.fib.lookup(ip_int("10.50.1.1")).via == ip_int("172.16.20.254")
    assert rig.handle({"cmd": "route", "action": "del", "router": "t1", "half": "dr", "prefix": "10.50.0.0/16"})["ok"]
    assert router.fib.lookup(ip_int("10.50.1.1")).transit


def test_control_server_survives_garbage(rig, tmp_path):
    """Real unix socket: garbage lines get an error line, the next request still works."""

    from gateway.control.server import ControlServer

    path = str(tmp_path / "ctl.sock")
    server = ControlServer(rig.dp, path)
    with serving(server):
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(path)
            sock.sendall(b'this is not json\n{"cmd": "ping"}\n')
            data = b""
            while data.count(b"\n") < 2:
                data += sock.recv(4096)
        first, second = (json.loads(line) for line in data.splitlines())
        assert first["ok"] is False and "not valid JSON" in first["error"]
        assert second["ok"] is True and second["result"]["node"] == "edge1"
        assert server.control.errors == 1


def test_ipc_transport_takeover_and_bad_messages(tmp_path):
    """The HA agent's socket: a takeover sends a gratuitous ARP; garbage gets an error and is counted."""

    from scapy.layers.l2 import ARP, Ether

    from gateway.io.ipc import decode, encode
    from suites.unit.test_nat import nat_rig

    rig = nat_rig()
    path = str(tmp_path / "ha.sock")
    server = rig.dp.open_ipc(path)
    with serving(server):
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as sock:
            sock.settimeout(5)
            sock.connect(path)
            sock.send(b"not json at all")
            meta, _ = decode(sock.recv(4096))
            assert meta["type"] == "error"
            sock.send(encode({"type": "takeover", "router": "t1", "ip": "203.0.113.99"}))
            meta, _ = decode(sock.recv(4096))
            assert meta["type"] == "ok" and meta["result"]["new"] is True
            generation = rig.dp.model.ownership_generation
            sock.send(encode({"type": "takeover", "router": "t1", "ip": "203.0.113.99"}))
            meta, _ = decode(sock.recv(4096))
            assert meta["result"]["new"] is False, "a second takeover of the same address changes nothing"
            assert rig.dp.model.ownership_generation == generation
            sock.send(encode({"type": "takeover", "router": "t1", "ip": "10.9.9.9"}))
            meta, _ = decode(sock.recv(4096))
            assert meta["type"] == "error" and "no segment" in meta["error"]
        garp = [Ether(f) for f in rig.take("uplink") if ARP in Ether(f)]
        assert len(garp) == 2, "each takeover (also a repeated one) re-announces the address"
        assert garp[0][ARP].psrc == garp[0][ARP].pdst == "203.0.113.99" and garp[0].dst == "ff:ff:ff:ff:ff:ff"
        assert rig.dp.ha()["owned"]["t1-sr"] == ["203.0.113.99"] and server.errors == 2
        # ARP for the taken-over address is now answered by the SR.
        rig.send(
            "uplink",
            bytes(
                Ether(src="02:00:00:00:00:99", dst="ff:ff:ff:ff:ff:ff")
                / ARP(op=1, hwsrc="02:00:00:00:00:99", psrc="203.0.113.10", pdst="203.0.113.99")
            ),
        )
        (reply,) = [Ether(f) for f in rig.take("uplink")]
        assert reply[ARP].op == 2 and reply[ARP].psrc == "203.0.113.99"
