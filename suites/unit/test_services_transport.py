"""The service transport and the DHCP relay in process: a datapath with a relay service,
the relay's process logic fed through a real socket, fail-closed and fail-open, bad input."""

from __future__ import annotations

import socket
import threading

import pytest
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import ARP, Dot1Q, Ether

from gateway import config
from gateway.io.service import DROP, HEADER, NO_VLAN, RESUME, VERSION
from gateway.io.service_process import ServiceProcess
from gateway.relay.dhcp import Relay
from suites.lib.expect import poll
from suites.unit.conftest import EDGE_YAML, Rig
from suites.unit.test_tables import serving

CLIENT = "02:00:00:00:10:77"


def relay_yaml(tmp_path, mode: str = "fail-closed") -> str:
    return EDGE_YAML + (
        f"services:\n  socket: {tmp_path}/svc.sock\n  list:\n"
        f"    - {{name: relay, kind: dhcp-relay, mode: {mode}, timeout_ms: 300, dhcp: {{server: 172.16.20.13}}}}\n"
    )


def discover(options=None) -> bytes:
    opts = options if options is not None else [("message-type", "discover"), "end"]
    return bytes(
        Ether(src=CLIENT, dst="ff:ff:ff:ff:ff:ff")
        / Dot1Q(vlan=10)
        / IP(src="0.0.0.0", dst="255.255.255.255")
        / UDP(sport=68, dport=67)
        / BOOTP(chaddr=bytes.fromhex(CLIENT.replace(":", "")), xid=0x1234, flags=0x8000)
        / DHCP(options=opts)
    )


def offer(circuit: bytes | None, giaddr: str = "172.16.10.1") -> bytes:
    opts = [("message-type", "offer")]
    if circuit is not None:
        opts.append(("relay_agent_information", b"\x01" + bytes([len(circuit)]) + circuit + b"\x02\x05edge1"))
    opts.append("end")
    return bytes(
        Ether(src="02:00:00:20:00:13", dst="02:00:00:00:20:01")
        / Dot1Q(vlan=20)
        / IP(src="172.16.20.13", dst=giaddr)
        / UDP(sport=67, dport=67)
        / BOOTP(op=2, yiaddr="172.16.10.100", giaddr=giaddr, chaddr=bytes.fromhex(CLIENT.replace(":", "")), xid=0x1234)
        / DHCP(options=opts)
    )


class ServiceThread:
    """A service process's logic (``io/service_process.py``) on a thread, on the datapath's real
    service socket."""

    def __init__(self, proc: ServiceProcess) -> None:
        self.proc = proc
        proc.connect(timeout=5)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.proc.run()
        except (ConnectionError, OSError):
            pass

    def stop(self) -> None:
        if self.proc.sock is not None:
            self.proc.sock.shutdown(socket.SHUT_RDWR)
            self.proc.sock.close()


@pytest.fixture
def relayed(tmp_path):
    rig = Rig(relay_yaml(tmp_path))
    with serving(rig.dp.open_services()):
        relay = ServiceThread(Relay(rig.cfg, "relay"))
        try:
            yield rig
        finally:
            relay.stop()


def test_a_discover_is_relayed_with_option_82_and_the_offer_comes_back_without_it(relayed):
    rig = relayed
    # The server's segment: t3's MAC known, so the relayed request goes straight to it.
    arp = ARP(op=1, hwsrc="02:00:00:20:00:13", psrc="172.16.20.13", pdst="172.16.20.1")
    rig.send("trunk", bytes(Ether(src="02:00:00:20:00:13", dst="ff:ff:ff:ff:ff:ff") / Dot1Q(vlan=20) / arp))
    rig.take("trunk")
    rig.send("trunk", discover())
    out = poll(
        lambda: [Ether(f) for f in rig.take("trunk") if BOOTP in Ether(f)], timeout=3, what="the relayed discover"
    )
    (relayed_req,) = [f for f in out if f[IP].dst == "172.16.20.13"]
    assert relayed_req[Dot1Q].vlan == 20 and relayed_req[IP].src == "172.16.10.1"
    assert relayed_req[BOOTP].giaddr == "172.16.10.1" and relayed_req[BOOTP].hops == 1
    opt82 = dict(o for o in relayed_req[DHCP].options if isinstance(o, tuple))["relay_agent_information"]
    assert opt82 == b"\x01\x08trunk:10" + b"\x02\x05edge1"
    rig.send("trunk", offer(b"trunk:10"))
    out = poll(lambda: [Ether(f) for f in rig.take("trunk") if BOOTP in Ether(f)], timeout=3, what="the offer")
    (back,) = out
    assert back[Dot1Q].vlan == 10 and back.dst == "ff:ff:ff:ff:ff:ff" and back[UDP].dport == 68
    assert not [o for o in back[DHCP].options if isinstance(o, tuple) and o[0] == "relay_agent_information"]
    counts = rig.dp.services.counters()["relay"]
    assert counts["sent"] == 2 and counts["returned"] == 2


def test_bad_dhcp_is_refused_by_name_and_the_relay_keeps_going(relayed):
    rig = relayed
    rig.send("trunk", discover([("message-type", "discover"), ("relay_agent_information", b"\x01\x01x"), "end"]))
    rig.send("trunk", offer(b"access:0"))  # a circuit with no record on the giaddr's segment
    rig.send("trunk", offer(None))
    overrun = bytes(
        Ether(src=CLIENT, dst="ff:ff:ff:ff:ff:ff")
        / Dot1Q(vlan=10)
        / IP(src="0.0.0.0", dst="255.255.255.255")
        / UDP(sport=68, dport=67)
        / BOOTP(chaddr=bytes.fromhex(CLIENT.replace(":", "")), options=b"\x63\x82\x53\x63\x35\x05\x01")
    )
    rig.send("trunk", overrun)  # an option longer than what is left
    poll(lambda: rig.dp.services.counters()["relay"]["dropped"] >= 4, timeout=3, what="four refusals")
    reasons = rig.dp.services.counters()["relay"]["reasons"]
    assert reasons == {"client-option-82": 1, "circuit-id-mismatch": 2, "bad-options": 1}, reasons
    rig.send("trunk", discover())
    poll(lambda: rig.dp.services.counters()["relay"]["returned"] >= 1, timeout=3, what="a good one after")


@pytest.mark.parametrize("mode", ["fail-closed", "fail-open"])
def test_a_gone_service_gets_its_failure_mode(tmp_path, mode):
    rig = Rig(relay_yaml(tmp_path, mode))
    rig.dp.open_services()
    rig.send("trunk", discover())
    counts = rig.dp.services.counters()["relay"]
    assert counts["failed_closed" if mode == "fail-closed" else "failed_open"] == 1
    assert counts["sent"] == 0
    assert rig.drops().get("dr/service-unavailable", 0) == (1 if mode == "fail-closed" else 0)


def test_garbage_from_a_service_is_refused_and_counted(tmp_path):
    rig = Rig(relay_yaml(tmp_path))
    path = str(tmp_path / "svc.sock")
    with serving(rig.dp.open_services()):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.settimeout(3)
        s.connect(path)
        s.send(b'{"type": "hello"}')
        assert b"register first" in s.recv(4096)
        s.send(b'{"type": "register", "service": "relay", "punts": [{"proto": "udp", "port": 67}]}')
        assert b"registered" in s.recv(4096)
        for bad in (
            b"\x07" + b"\x00" * 20,  # another header version
            HEADER.pack(VERSION, RESUME, 0, 0, 99, 0, 0, NO_VLAN, 0) + b"x" * 40,  # no such stage
            HEADER.pack(VERSION, RESUME, 0, 0, 0, 0, 0, NO_VLAN, 0) + b"\x45",  # not an IPv4 packet
            HEADER.pack(VERSION, 9, 0, 0, 0, 0, 0, NO_VLAN, 0),  # no such kind
            b"\x01\x02",  # short
        ):
            s.send(bad)
            assert b"error" in s.recv(4096)
        s.send(HEADER.pack(VERSION, DROP, 0, 4242, 0, 0, 0, NO_VLAN, 0) + b"late")  # answers no punt
        poll(lambda: rig.dp.services.counters()["relay"]["late"] == 1, timeout=3, what="the late answer counted")
        s.close()
    assert rig.dp.services.counters()["errors"] >= 5


def test_relay_config_errors_are_clear():
    with pytest.raises(config.ConfigError, match="services.list\\[0\\].kind"):
        config.parse(EDGE_YAML + "services:\n  list:\n    - {name: x, kind: telnet}\n", "u.yaml")
    with pytest.raises(config.ConfigError, match="dhcp.server"):
        config.parse(
            EDGE_YAML + "services:\n  list:\n    - {name: x, kind: dhcp-relay, dhcp: {server: 300.1.1.1}}\n", "u.yaml"
        )


@pytest.mark.parametrize(
    ("service", "error"),
    [
        ("{name: f, kind: ftp-alg, ftp: {ports: []}}", r"services.list\[0\].ftp.ports: at least one control port"),
        ("{name: f, kind: ftp-alg, ftp: {ports: [70000]}}", r"services.list\[0\].ftp.ports\[0\]: 70000 is not"),
        ("{name: f, kind: ftp-alg, dhcp: {server: 1.2.3.4}}", r"services.list\[0\].dhcp: a ftp-alg service takes no"),
    ],
)
def test_alg_config_errors_are_clear(service, error):
    with pytest.raises(config.ConfigError, match=error):
        config.parse(EDGE_YAML + f"services:\n  list:\n    - {service}\n", "u.yaml")


def test_bgp_med_is_checked():
    text = EDGE_YAML + "kernel: {tlrs: [t1], bgp: [{router: t1, asn: 1, neighbors: [], med: -1}]}\n"
    with pytest.raises(config.ConfigError, match=r"kernel.bgp\[0\].med: -1 is not an integer"):
        config.parse(text, "u.yaml")
