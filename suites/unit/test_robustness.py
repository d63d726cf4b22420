"""Inputs that once killed the daemon or were mishandled: each a regression test.

Every handler the loop calls (control socket, IPC socket, timers) must answer
or count a bad input and carry on; nothing may reach the event loop.
"""

from __future__ import annotations

import errno
import json
import math
import socket
import time

import pytest
from scapy.layers.inet import ICMP, IP, UDP, IPerror
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.packet import Raw

from gateway import config
from gateway.l4 import inner_tuple, rewrite
from suites.unit.conftest import EDGE_YAML, Rig
from suites.unit.test_tables import serving

H1, H2 = "02:00:00:00:00:11", "02:00:00:00:00:12"

# web on the trunk (VLAN 10) and on the uplink (VLAN 10): hosts of one instance on two members.
TWO_MEMBERS = EDGE_YAML.replace(
    "web: {records: [{port: trunk, vlan: 10}]}",
    "web: {records: [{port: trunk, vlan: 10}, {port: uplink, vlan: 10}]}",
)


def switched_udp(src=H1, dst=H2, vlan=10, pad=0) -> bytes:
    frame = Ether(src=src, dst=dst) / Dot1Q(vlan=vlan) / IP(src="172.16.10.11", dst="172.16.10.12") / UDP() / b"x"
    return bytes(frame) + b"\x00" * pad


def teach(rig: Rig) -> None:
    """H2 lives behind the uplink (VLAN 10): learned from one frame it sends."""
    rig.send("uplink", bytes(Ether(src=H2, dst="ff:ff:ff:ff:ff:ff") / Dot1Q(vlan=10) / ARP(psrc="172.16.10.12")))
    rig.take("trunk")
    rig.take("uplink")


def internal_errors(rig: Rig) -> int:
    return rig.dp.pipeline.internal_errors


# -- show cache with an IPv4 flow switched at L2 ------------------------------------------
def test_show_cache_with_an_ipv4_flow_switched_at_l2():
    rig = Rig(TWO_MEMBERS)
    teach(rig)
    for _ in range(3):
        rig.send("trunk", switched_udp())
    assert len(rig.take("uplink")) == 3
    assert rig.dp.cache.hits == 2, "the flow is cached (l2 match)"
    resp = rig.handle({"cmd": "show", "what": "cache"})
    assert resp["ok"], resp
    (entry,) = resp["result"]["entries"]
    assert entry["match"] == "l2" and "type 0x0800" in entry["key"]


# -- cache on and off send the same bytes ---------------------------------------------------
@pytest.mark.parametrize("enabled", [True, False])
def test_switched_ipv4_frame_keeps_its_ethernet_padding(enabled):
    rig = Rig(TWO_MEMBERS)
    rig.dp.cache.enabled = enabled
    teach(rig)
    frames = [switched_udp(pad=10) for _ in range(3)]
    for f in frames:
        rig.send("trunk", f)
    out = rig.take("uplink")
    assert out == frames, "switched frames leave byte-identical, padding included, hit or not"
    assert rig.dp.cache.hits == (2 if enabled else 0)


def test_a_14_byte_ipv4_typed_frame_is_switched_without_an_internal_error():
    rig = Rig(TWO_MEMBERS)
    teach(rig)
    runt = bytes(Ether(src=H1, dst=H2, type=0x0800))
    rig.dp.receive(rig.port("trunk"), bytearray(runt), 10)
    assert internal_errors(rig) == 0
    assert len(rig.take("uplink")) == 1
    assert rig.dp.cache.uncacheable.get("ip-truncated") == 1, "never looked up, so never installed"


# -- ICMP errors quoting a cut-short packet --------------------------------------------------
def test_icmp_error_quoting_only_the_ports_is_translated_back():
    from suites.unit.test_nat import in_frame, nat_rig, one, out_frame

    rig = nat_rig()
    rig.send("trunk", out_frame(IP(src="172.16.10.11", dst="198.51.100.10", ttl=3) / UDP(sport=4000, dport=53)))
    out = one(rig.take("uplink"))
    quoted = bytes(out[IP])[:24]  # the IPv4 header and the two ports, nothing more
    rig.send("uplink", in_frame(IP(src="203.0.113.10", dst=out[IP].src) / ICMP(type=11, code=0) / quoted))
    back = one(rig.take("trunk"))
    assert internal_errors(rig) == 0
    assert back[IP].dst == "172.16.10.11" and back[IPerror].src == "172.16.10.11"
    assert bytes(back[IPerror].payload)[:4] == (4000).to_bytes(2, "big") + (53).to_bytes(2, "big"), "ports as sent"


def test_rewrite_never_reads_past_a_truncated_quoted_header():
    # An ICMP error whose quoted ICMP echo is cut after 0..5 bytes of its header.
    for keep in range(6):
        inner = bytes(IP(src="203.0.113.64", dst="198.51.100.10") / ICMP(id=7))[: 20 + keep]
        buf = bytearray(bytes(Ether() / IP(src="198.51.100.1", dst="203.0.113.64") / ICMP(type=3, code=1) / inner))
        before = len(buf)
        rewrite(buf, 14 + 28, True, 0x0A000001, 99)
        assert len(buf) == before
        assert IP(bytes(buf[14 + 28 :])).src == "10.0.0.1"


def test_inner_tuple_refuses_a_quoted_header_longer_than_the_packet():
    inner = bytearray(bytes(IP(src="10.0.0.1", dst="10.0.0.2") / UDP()))[:24]
    inner[0] = 0x4F  # IHL 15: 60 bytes of header, 24 present
    buf = bytearray(bytes(Ether() / IP() / ICMP(type=3)) + bytes(inner))
    assert inner_tuple(buf) is None


# -- ARP consumed by a router is counted ----------------------------------------------------
def test_arp_replies_to_the_router_are_counted_and_claims_of_its_address_refused(rig):
    gw = "02:00:00:00:10:01"
    rig.send(
        "trunk",
        bytes(Ether(src=H1, dst=gw) / Dot1Q(vlan=10) / ARP(op=2, hwsrc=H1, psrc="172.16.10.11", pdst="172.16.10.1")),
    )
    rig.send(
        "trunk",
        bytes(
            Ether(src=H1, dst="ff:ff:ff:ff:ff:ff")
            / Dot1Q(vlan=10)
            / ARP(op=1, hwsrc=H1, psrc="172.16.10.1", pdst="172.16.10.1")
        ),
    )
    dr = rig.dp.pipeline.stages["dr"].counters()
    assert dr["arp_learned"] == 1 and dr["arp_replies"] == 0
    assert rig.drops() == {"l2switch/arp-spoofed": 1}, "a gratuitous ARP claiming the router's address moves nothing"


# -- control requests -------------------------------------------------------------------------
def test_cache_set_refuses_nan_and_infinity(rig):
    for bad in (math.nan, math.inf, -math.inf, 1e12):
        resp = rig.handle({"cmd": "cache", "action": "set", "idle_timeout": bad})
        assert resp["ok"] is False, bad
    assert math.isfinite(rig.dp.cache.idle_timeout)
    assert rig.control.errors == 4


def test_firewall_rule_with_a_list_for_proto_is_refused(rig):
    from suites.unit.test_nat import nat_rig

    rig = nat_rig()
    resp = rig.handle(
        {"cmd": "firewall", "action": "add", "router": "t1", "rule": {"action": "drop", "proto": ["tcp"]}},
    )
    assert resp["ok"] is False and "rule.proto" in resp["error"] and "tcp, udp, icmp, icmpv6 or any" in resp["error"]
    assert rig.control.internal_errors == 0


def test_a_request_that_trips_a_bug_is_answered_and_counted(rig, monkeypatch):
    from gateway.control import commands

    def broken(dp, req):
        raise IndexError("a bug")

    monkeypatch.setitem(commands.COMMANDS, "ping", broken)
    resp = rig.handle({"cmd": "ping"})
    assert resp["ok"] is False and "internal error (IndexError)" in resp["error"]
    assert rig.control.internal_errors == 1 and rig.control.errors == 1


def _ask(sock: socket.socket, line: bytes) -> dict:
    sock.sendall(line)
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection"
        data += chunk
    return json.loads(data)


def test_control_line_nested_too_deep(rig, tmp_path):
    from gateway.control.server import ControlServer

    path = str(tmp_path / "ctl.sock")
    with serving(ControlServer(rig.dp, path)), socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(5)
        sock.connect(path)
        resp = _ask(sock, b"[" * 100000 + b"\n")
        assert resp["ok"] is False and "nests too deep" in resp["error"]
        assert _ask(sock, b'{"cmd": "ping"}\n')["ok"]


def test_overlong_partial_line_is_bounded_and_refused(rig, tmp_path):
    from gateway.control import server as srv

    path = str(tmp_path / "ctl.sock")
    server = srv.ControlServer(rig.dp, path)
    with serving(server), socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(5)
        sock.connect(path)
        resp = _ask(sock, b"x" * (srv.MAX_LINE * 4))
        assert resp["ok"] is False and "longer than" in resp["error"]
        state = next(iter(server._state.values()))
        assert len(state.inbuf) <= srv.MAX_LINE + 65536
        # The rest of the overlong line is skipped up to its newline; then requests work again.
        assert _ask(sock, b"y" * 1000 + b'\n{"cmd": "ping"}\n')["ok"]


def test_a_client_that_never_reads_does_not_stall_others(rig, tmp_path):
    from gateway.control import server as srv

    path = str(tmp_path / "ctl.sock")
    server = srv.ControlServer(rig.dp, path)
    with serving(server), socket.socket(socket.AF_UNIX) as hog, socket.socket(socket.AF_UNIX) as other:
        hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        hog.connect(path)
        hog.setblocking(False)
        request = b'{"cmd": "show", "what": "counters"}\n' * 64
        blocked_since = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                hog.send(request)
                blocked_since = None
            except BlockingIOError:
                blocked_since = blocked_since or time.monotonic()
                if time.monotonic() - blocked_since > 0.5:
                    break  # the server stopped reading the hog: back-pressure, not a pile
                time.sleep(0.01)
        assert blocked_since is not None, "the hog was never held back"
        other.settimeout(2)
        other.connect(path)
        t0 = time.monotonic()
        assert _ask(other, b'{"cmd": "ping"}\n')["ok"]
        assert time.monotonic() - t0 < 1.0, "the other client is served at once"
        pending = max(len(c.outbuf) for c in server._state.values())
        assert pending < 64 * 1024, f"one answer waits for the hog, not a pile ({pending} bytes)"


def test_client_limit(rig, tmp_path):
    from gateway.control.server import ControlServer

    path = str(tmp_path / "ctl.sock")
    server = ControlServer(rig.dp, path)
    socks = []
    try:
        with serving(server):
            for _ in range(server.max_clients):
                s = socket.socket(socket.AF_UNIX)
                s.settimeout(5)
                s.connect(path)
                assert _ask(s, b'{"cmd": "ping"}\n')["ok"]
                socks.append(s)
            extra = socket.socket(socket.AF_UNIX)
            extra.settimeout(5)
            socks.append(extra)
            extra.connect(path)
            assert "too many control clients" in extra.recv(4096).decode()
            assert server.refused == 1
    finally:
        for s in socks:
            s.close()


class _Exhausted:
    """A listening socket whose accept() fails as at the descriptor limit, ``fails`` times."""

    def __init__(self, sock: socket.socket, fails: int) -> None:
        self._sock = sock
        self.fails = fails
        self.calls = 0

    def accept(self):
        self.calls += 1
        if self.fails:
            self.fails -= 1
            raise OSError(errno.EMFILE, "Too many open files")
        return self._sock.accept()

    def __getattr__(self, name):
        return getattr(self._sock, name)


def test_accept_at_the_descriptor_limit_neither_spins_nor_dies(rig, tmp_path):
    from gateway.control.server import ControlServer

    path = str(tmp_path / "ctl.sock")
    server = ControlServer(rig.dp, path)
    fake = _Exhausted(server.sock, fails=1)
    server.sock = fake  # type: ignore[assignment]
    with serving(server), socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(5)
        sock.connect(path)
        time.sleep(0.3)
        assert server.accept_errors == 1 and fake.calls == 1, "stopped listening instead of spinning"
        server.tick()  # the datapath's timer: listen again
        assert _ask(sock, b'{"cmd": "ping"}\n')["ok"]


def test_control_socket_is_owner_only(rig, tmp_path):
    import os
    import stat

    from gateway.control.server import ControlServer

    path = str(tmp_path / "ctl.sock")
    server = ControlServer(rig.dp, path)
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    finally:
        server.close()


# -- IPC messages from the HA agent -----------------------------------------------------------
@pytest.mark.parametrize(
    "meta",
    [
        {"type": "takeover", "router": 5, "ip": "203.0.113.99"},
        {"type": "takeover", "router": ["t1"], "ip": "203.0.113.99"},
        {"type": "takeover", "router": "t1", "ip": 7},
        {"type": "release", "router": "t1", "ip": None},
        {"type": "claim", "router": {"a": 1}, "ip": "203.0.113.1"},
        {"type": "send", "router": "t1"},
        {"type": "status", "status": [1, 2]},
        {"type": "takeover"},
    ],
)
def test_malformed_agent_messages_are_refused_and_counted(tmp_path, meta):
    from gateway.io.ipc import decode, encode
    from suites.unit.test_nat import nat_rig

    rig = nat_rig()
    path = str(tmp_path / "ha.sock")
    server = rig.dp.open_ipc(path)
    with serving(server), socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as sock:
        sock.settimeout(5)
        sock.connect(path)
        sock.send(encode(meta, b"\x45"))
        answer, _ = decode(sock.recv(4096))
        assert answer["type"] == "error", answer
        sock.send(b"[" * 50000 + b"\n")
        answer, _ = decode(sock.recv(4096))
        assert answer["type"] == "error"
        sock.send(encode({"type": "takeover", "router": "t1", "ip": "203.0.113.99"}))
        answer, _ = decode(sock.recv(4096))
        assert answer["type"] == "ok", "the connection and the daemon carry on"
    assert server.errors == 2 and server.internal_errors == 0


# -- config -------------------------------------------------------------------------------------
HA_YAML = EDGE_YAML.replace(
    "    transit: {subnet: 169.254.0.0/28, dr: 169.254.0.1, sr: 169.254.0.2}",
    "    transit: {subnet: 169.254.0.0/28, dr: 169.254.0.1, sr: 169.254.0.2}\n"
    "    ha: {peers: [{transit: 169.254.0.3}], socket: 5}",
)


def test_config_ha_socket_must_be_a_path():
    with pytest.raises(config.ConfigError, match=r"routers\[0\]\.ha\.socket: 5 is not an absolute path"):
        config.parse(HA_YAML, "edge1.yaml")


def test_config_firewall_proto_list_is_a_located_error():
    text = EDGE_YAML.replace(
        '        - {instance: provider, ip: 203.0.113.1/24, mac: "02:00:00:00:cb:01"}',
        '        - {instance: provider, ip: 203.0.113.1/24, mac: "02:00:00:00:cb:01"}\n'
        "      firewall: {rules: [{action: drop, proto: [tcp]}]}",
    )
    with pytest.raises(config.ConfigError, match=r"firewall\.rules\[0\]\.proto: a list is not tcp"):
        config.parse(text, "edge1.yaml")


def test_config_nested_too_deep():
    with pytest.raises(config.ConfigError, match="nests too deep"):
        config.parse("node: " + "[" * 100000, "deep.yaml")


def test_config_numbers_must_be_finite():
    text = EDGE_YAML + "tables: {mac_aging: .nan}\ncache: {idle_timeout: .inf}\n"
    with pytest.raises(config.ConfigError, match=r"tables\.mac_aging: nan is not a number"):
        config.parse(text, "edge1.yaml")


def test_garbage_frames_never_cost_an_internal_error():
    """Short frames of every EtherType the gateway reads, with the cache on."""
    rig = Rig(TWO_MEMBERS)
    teach(rig)
    for ethertype in (0x0800, 0x0806, 0x8100, 0x86DD):
        for n in range(0, 60, 3):
            body = bytes(Ether(src=H1, dst=H2, type=ethertype) / Raw(bytes(range(n))))
            rig.dp.receive(rig.port("trunk"), bytearray(body), 10)
            body = bytes(Ether(src=H1, dst="02:00:00:00:10:01", type=ethertype) / Raw(bytes(range(n))))
            rig.dp.receive(rig.port("trunk"), bytearray(body), 10)
    assert internal_errors(rig) == 0, rig.drops()


def test_config_io_ring_is_refused_with_a_reason():
    with pytest.raises(
        config.ConfigError, match=r"io: 'ring' is not block .* the experimental 'ring' mode was removed"
    ):
        config.parse(EDGE_YAML + "io: ring\n", "edge1.yaml")
