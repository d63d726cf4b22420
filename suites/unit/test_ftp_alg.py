"""The FTP ALG in process: a datapath with the ALG service, the ALG's process logic fed through a
real socket.  Active mode through SNAT, passive mode through a port forward, the sequence offsets
(also on cache hits), related data connections and nobody else's, retransmissions, split
commands, bad input, fail-closed and fail-open, a service that returns garbage."""

from __future__ import annotations

import json
import socket

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

from gateway.alg.ftp import FtpAlg, find
from gateway.io.service import HEADER, NO_VLAN, RESUME, VERSION
from suites.lib.expect import poll
from suites.unit.conftest import Rig
from suites.unit.test_nat import H1, H3, NAT_YAML, UP_GW, WEB_GW, checksums_valid, in_frame, learn_neighbours, out_frame
from suites.unit.test_services_transport import ServiceThread
from suites.unit.test_tables import serving

APP_GW = "02:00:00:00:20:01"
SERVER, CLIENT, PUBLIC, FORWARD = "203.0.113.10", "172.16.10.11", "203.0.113.64", "203.0.113.80"


def alg_yaml(tmp_path, mode: str = "fail-closed") -> str:
    text = NAT_YAML.replace("MAXSESS", "1000").replace(
        "        dnat: [",
        "        dnat: [{name: t3-ftp, public: 203.0.113.80, proto: tcp, port: 21, to: 172.16.20.13, to_port: 21}, ",
    )
    return text + (
        f"services:\n  socket: {tmp_path}/svc.sock\n  list:\n"
        f"    - {{name: ftp, kind: ftp-alg, mode: {mode}, timeout_ms: 300}}\n"
    )


def _neighbours(rig: Rig) -> Rig:
    """test_nat's neighbours, and a third host on the provider segment (203.0.113.11)."""
    learn_neighbours(rig)
    other = "02:00:00:00:00:98"
    arp = ARP(op=2, hwsrc=other, psrc="203.0.113.11", hwdst=UP_GW, pdst="203.0.113.1")
    rig.send("uplink", bytes(Ether(src=other, dst=UP_GW) / arp))
    rig.take("uplink")
    return rig


@pytest.fixture
def running(tmp_path):
    rig = _neighbours(Rig(alg_yaml(tmp_path)))
    with serving(rig.dp.open_services()):
        alg = ServiceThread(FtpAlg(rig.cfg, "ftp"))
        try:
            yield rig
        finally:
            alg.stop()


def frames(rig: Rig, port: str, what: str, n: int = 1, timeout: float = 3.0) -> list:
    got: list = []

    def enough():
        got.extend(Ether(f)[IP] for f in rig.take(port))
        return got if len(got) >= n else None

    poll(enough, timeout=timeout, what=what)
    return got


class Flow:
    """One TCP connection's two ends as the hosts see them: sequence numbers kept per side."""

    def __init__(self, rig: Rig, inside: tuple[str, int], outside: tuple[str, int], inside_mac=H1, vlan=10, gw=WEB_GW):
        self.rig = rig
        self.inside, self.outside = inside, outside
        self.mac, self.vlan, self.gw = inside_mac, vlan, gw
        self.iseq, self.oseq = 1000, 5000  # next sequence number each side sends
        self.public: tuple[str, int] | None = None  # the inside end as the outside sees it

    def from_inside(self, flags: str, data: bytes = b"", seq: int | None = None, ack: int | None = None):
        dst = self.outside
        tcp = TCP(sport=self.inside[1], dport=dst[1], flags=flags, seq=self.iseq if seq is None else seq)
        tcp.ack = self.oseq if ack is None else ack
        self.rig.send(
            "trunk",
            out_frame(IP(src=self.inside[0], dst=dst[0]) / tcp / Raw(data), src=self.mac, vlan=self.vlan, gw=self.gw),
        )
        if seq is None:
            self.iseq += len(data) + (1 if "S" in flags or "F" in flags else 0)

    def from_outside(self, flags: str, data: bytes = b"", seq: int | None = None, ack: int | None = None, dst=None):
        to = dst or self.public
        tcp = TCP(sport=self.outside[1], dport=to[1], flags=flags, seq=self.oseq if seq is None else seq)
        tcp.ack = self.iseq if ack is None else ack
        self.rig.send("uplink", in_frame(IP(src=self.outside[0], dst=to[0]) / tcp / Raw(data)))
        if seq is None:
            self.oseq += len(data) + (1 if "S" in flags or "F" in flags else 0)


def open_active(rig: Rig, sport: int = 40000) -> Flow:
    """t1 -> the server's port 21 through SNAT: the handshake."""
    flow = Flow(rig, (CLIENT, sport), (SERVER, 21))
    flow.from_inside("S")
    (syn,) = frames(rig, "uplink", "the SYN")
    flow.public = (syn.src, syn[TCP].sport)
    flow.from_outside("SA")
    frames(rig, "trunk", "the SYN-ACK")
    flow.from_inside("A")
    frames(rig, "uplink", "the ACK")
    return flow


def occupy(rig: Rig, port: int) -> None:
    """A TCP connection of t3's from ``port``: that public port is taken on the first pool address."""
    rig.send(
        "trunk",
        out_frame(IP(src="172.16.20.13", dst=SERVER) / TCP(sport=port, dport=9, flags="S"), src=H3, vlan=20, gw=APP_GW),
    )
    (syn,) = frames(rig, "uplink", "t3's SYN")
    assert (syn.src, syn[TCP].sport) == (PUBLIC, port)


def test_find_reads_the_four_announcing_lines():
    assert [(e.form, e.addr, e.port) for e in find(b"PORT 10,0,0,1,4,1\r\n", False)] == [("port", 0x0A000001, 1025)]
    assert [(e.form, e.port) for e in find(b"EPRT |1|10.0.0.1|6000|\r\n", False)] == [("eprt", 6000)]
    assert [(e.form, e.port) for e in find(b"227 Entering Passive Mode (10,0,0,1,200,10).\r\n", True)] == [
        ("pasv", 51210)
    ]
    assert [(e.form, e.addr, e.port) for e in find(b"229 Entering Extended Passive Mode (|||6446|)\r\n", True)] == [
        ("epsv", 0, 6446)
    ]
    assert find(b"USER anonymous\r\nPASV\r\n", False) == []
    assert find(b"PORT 10,0,0,1,4,1\r\n", True) == []  # a server does not send PORT
    assert find(b"EPRT |2|::1|6000|\r\n", False) == []  # not IPv4: nothing to translate


def test_active_mode_through_snat_rewrites_port_and_carries_the_offsets(running):
    rig = running
    occupy(rig, 40000)  # the client's port is taken on the public address: the ALG gets another
    flow = open_active(rig, sport=40001)
    cmd = b"PORT 172,16,10,11,156,64\r\n"  # 40000
    start = flow.iseq
    flow.from_inside("PA", cmd)
    (seg,) = frames(rig, "uplink", "the rewritten PORT")
    text = bytes(seg[Raw].load)
    assert text.startswith(b"PORT 203,0,113,64,") and text.endswith(b"\r\n"), text
    nums = [int(x) for x in text[5:-2].split(b",")]
    pport = nums[4] << 8 | nums[5]
    assert pport != 40000 and seg[TCP].seq == start and checksums_valid(seg)
    delta = len(text) - len(cmd)
    assert delta != 0  # (the port is written with fewer digits: the offsets matter below)
    # The server acknowledges the rewritten bytes: the client sees its own count.
    flow.from_outside("A", ack=start + len(text))
    (ack,) = frames(rig, "trunk", "the server's ACK")
    assert ack[TCP].ack == start + len(cmd) and checksums_valid(ack)
    # The same ACK again: now a cache hit, adjusted all the same.
    hits = rig.dp.cache.hits
    flow.from_outside("A", ack=start + len(text))
    (ack,) = frames(rig, "trunk", "the server's ACK, cached")
    assert rig.dp.cache.hits == hits + 1 and ack[TCP].ack == start + len(cmd) and checksums_valid(ack)
    # The client's next bytes are moved by the difference.
    flow.from_inside("PA", b"RETR file\r\n")
    (seg,) = frames(rig, "uplink", "RETR")
    assert seg[TCP].seq == start + len(text) and checksums_valid(seg)
    # The data connection: from the server's port 20 to the announced public port, to the client.
    rig.send("uplink", in_frame(IP(src=SERVER, dst=PUBLIC) / TCP(sport=20, dport=pport, flags="S", seq=77)))
    (syn,) = frames(rig, "trunk", "the data connection's SYN")
    assert (syn.dst, syn[TCP].dport) == (CLIENT, 40000) and checksums_valid(syn)
    ct = rig.handle({"cmd": "show", "what": "conntrack"})["result"]
    (data,) = [c for r in ct.values() for c in r["entries"] if c.get("related_to")]
    assert data["orig"].startswith(f"{SERVER}:20 >")


def test_only_the_announced_peer_gets_the_data_connection(running):
    rig = running
    flow = open_active(rig)
    flow.from_inside("PA", b"PORT 172,16,10,11,156,70\r\n")
    (seg,) = frames(rig, "uplink", "the PORT")
    nums = [int(x) for x in bytes(seg[Raw].load)[5:-2].split(b",")]
    pport = nums[4] << 8 | nums[5]
    # A third host tries the announced port first: dropped, and the expectation stays for the server.
    rig.send("uplink", in_frame(IP(src="203.0.113.11", dst=PUBLIC) / TCP(sport=20, dport=pport, flags="S")))
    assert not rig.take("trunk")
    assert rig.drops().get("sr/nat-no-session") == 1
    rig.send("uplink", in_frame(IP(src=SERVER, dst=PUBLIC) / TCP(sport=20, dport=pport, flags="S")))
    (syn,) = frames(rig, "trunk", "the server's data SYN")
    assert syn[TCP].dport == 40006
    # Used up: a second connection to that port is not related.
    rig.send("uplink", in_frame(IP(src=SERVER, dst=PUBLIC) / TCP(sport=21000, dport=pport, flags="S")))
    assert not rig.take("trunk")


def test_a_retransmitted_port_gets_the_same_rewrite_and_no_second_offset(running):
    rig = running
    occupy(rig, 40000)
    flow = open_active(rig, sport=40002)
    start = flow.iseq
    cmd = b"PORT 172,16,10,11,156,64\r\n"
    flow.from_inside("PA", cmd)
    (first,) = frames(rig, "uplink", "the PORT")
    flow.from_inside("PA", cmd, seq=start)  # the client retransmits it
    (again,) = frames(rig, "uplink", "the retransmitted PORT")
    assert bytes(again[Raw].load) == bytes(first[Raw].load) and again[TCP].seq == first[TCP].seq
    flow.from_inside("PA", b"NOOP\r\n")
    (seg,) = frames(rig, "uplink", "NOOP")
    assert seg[TCP].seq == start + len(first[Raw].load)
    ct = rig.handle({"cmd": "show", "what": "conntrack"})["result"]
    assert sum(len(r["expectations"]) for r in ct.values()) == 1


def test_passive_mode_through_a_port_forward(running):
    rig = running
    flow = Flow(rig, ("172.16.20.13", 21), (SERVER, 50100), inside_mac=H3, vlan=20, gw=APP_GW)
    flow.public = (FORWARD, 21)
    flow.from_outside("S")
    (syn,) = frames(rig, "trunk", "the SYN to the server")
    assert syn.dst == "172.16.20.13"
    flow.from_inside("SA")
    frames(rig, "uplink", "the SYN-ACK")
    flow.from_outside("A")
    frames(rig, "trunk", "the ACK")
    start = flow.iseq
    reply = b"227 Entering Passive Mode (172,16,20,13,195,80).\r\n"  # 50000
    flow.from_inside("PA", reply)
    (seg,) = frames(rig, "uplink", "the 227")
    assert bytes(seg[Raw].load) == b"227 Entering Passive Mode (203,0,113,80,195,80).\r\n"
    assert seg.src == FORWARD and seg[TCP].sport == 21 and seg[TCP].seq == start and checksums_valid(seg)
    rig.send("uplink", in_frame(IP(src=SERVER, dst=FORWARD) / TCP(sport=50101, dport=50000, flags="S")))
    (data,) = frames(rig, "trunk", "the client's data SYN")
    assert (data.dst, data[TCP].dport) == ("172.16.20.13", 50000)
    # EPSV names only a port.
    flow.from_inside("PA", b"229 Entering Extended Passive Mode (|||50002|)\r\n")
    (seg,) = frames(rig, "uplink", "the 229")
    assert bytes(seg[Raw].load) == b"229 Entering Extended Passive Mode (|||50002|)\r\n"
    rig.send("uplink", in_frame(IP(src=SERVER, dst=FORWARD) / TCP(sport=50102, dport=50002, flags="S")))
    (data,) = frames(rig, "trunk", "the EPSV data SYN")
    assert data[TCP].dport == 50002


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"PORT 300,16,10,11,156,64\r\n", "bad-port-command"),
        (b"PORT 172,16,10,12,156,64\r\n", "not-senders-address"),  # another host: FTP bounce
        (b"PORT 172,16,10,11,0,21\r\n", "privileged-port"),
        (b"EPRT |1|172.16.10.11|99999|\r\n", "bad-port-command"),
        (b"PORT " + b"1" * 600 + b"\r\n", "line-too-long"),
        (b"PO", "partial-command"),
    ],
)
def test_bad_announcements_are_refused_by_name(running, payload, reason):
    rig = running
    flow = open_active(rig)
    flow.from_inside("PA", payload)
    poll(lambda: rig.dp.services.counters()["ftp"]["reasons"].get(reason), timeout=3, what=reason)
    assert not rig.take("uplink")
    # The connection goes on: the whole line, sent next, is rewritten.
    flow.from_inside("PA", b"PORT 172,16,10,11,156,80\r\n", seq=flow.iseq - len(payload))
    (seg,) = frames(rig, "uplink", "the PORT after the refusal")
    assert bytes(seg[Raw].load).startswith(b"PORT 203,0,113,64,")


def test_fail_closed_drops_the_payload_and_counts_it(tmp_path):
    rig = _neighbours(Rig(alg_yaml(tmp_path)))
    with serving(rig.dp.open_services()):  # (no ALG connected)
        flow = open_active(rig)
        flow.from_inside("PA", b"USER anonymous\r\n")
        assert not rig.take("uplink")
        assert rig.drops().get("sr/service-unavailable") == 1
        assert rig.dp.services.counters()["ftp"]["failed_closed"] == 1
        flow.from_outside("A")  # a segment without payload still passes
        assert len(rig.take("trunk")) == 1


def test_fail_open_lets_the_payload_go_as_it_came(tmp_path):
    rig = _neighbours(Rig(alg_yaml(tmp_path, "fail-open")))
    with serving(rig.dp.open_services()):
        flow = open_active(rig)
        flow.from_inside("PA", b"PORT 172,16,10,11,156,64\r\n")
        (seg,) = frames(rig, "uplink", "the PORT, unchanged")
        assert bytes(seg[Raw].load) == b"PORT 172,16,10,11,156,64\r\n" and checksums_valid(seg)
        assert rig.dp.services.counters()["ftp"]["failed_open"] == 1


def test_a_service_returning_garbage_or_another_connection_is_refused(tmp_path):
    rig = _neighbours(Rig(alg_yaml(tmp_path)))
    with serving(rig.dp.open_services()):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        sock.connect(f"{tmp_path}/svc.sock")
        sock.send(b'{"type": "register", "service": "ftp", "punts": [{"proto": "tcp", "port": 21}]}')
        names = json.loads(sock.recv(65536))
        sr = names["stages"].index("sr")
        sock.settimeout(3)
        flow = open_active(rig)
        for answer in ("garbage", "other", "segment"):
            flow.from_inside("PA", b"NOOP\r\n")
            punt = sock.recv(65536)
            while punt[:1] == b"{":  # the datapath's answer to the last refusal
                assert json.loads(punt)["type"] == "error"
                punt = sock.recv(65536)
            seq = HEADER.unpack_from(punt)[3]
            ip = IP(punt[HEADER.size :])
            if answer == "garbage":
                body = b"\x45" + b"\x00" * 30
            elif answer == "other":
                ip[TCP].dport = 2121
                del ip[TCP].chksum
                body = bytes(ip)
            else:
                ip[TCP].seq += 1
                del ip[TCP].chksum
                body = bytes(ip)
            sock.send(HEADER.pack(VERSION, RESUME, 0, seq, sr, 0, 0, NO_VLAN, 0) + body)
        want = {"bad-frame": 1, "other-connection": 1, "other-segment": 1}
        poll(lambda: rig.dp.services.counters()["ftp"]["refusals"] == want or None, timeout=3, what="refusals")
        assert not rig.take("uplink") and rig.dp.services.errors == 3
        sock.close()
