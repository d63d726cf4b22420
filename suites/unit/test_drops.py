"""Every drop reason that a packet can cause, caused once and counted by name."""

from __future__ import annotations

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.packet import Raw

from gateway.packet import Packet
from suites.unit.conftest import Rig
from suites.unit.test_nat import EXT, H1, H2, H3, UP_GW, WEB_GW, nat_rig


def web(l3, src=H1):
    return bytes(Ether(src=src, dst=WEB_GW) / Dot1Q(vlan=10) / l3)


def test_fragments_that_overlap_through_the_sr_are_dropped():
    rig = nat_rig()
    rig.send("trunk", web(IP(src="172.16.10.11", dst="203.0.113.10", frag=100, flags="MF", proto=17) / Raw(b"x" * 16)))
    rig.send("trunk", web(IP(src="172.16.10.11", dst="203.0.113.10", frag=101, proto=17) / Raw(b"x" * 16)))
    assert rig.drops() == {"sr/frag-overlap": 1}


def test_a_fragment_but_the_last_with_data_no_multiple_of_8_is_dropped():
    rig = nat_rig()
    rig.send("trunk", web(IP(src="172.16.10.11", dst="203.0.113.10", flags="MF", proto=17) / Raw(b"x" * 13)))
    assert rig.drops() == {"sr/frag-bad-length": 1}


def test_a_fragment_past_65535_bytes_is_dropped():
    rig = nat_rig()
    rig.send("trunk", web(IP(src="172.16.10.11", dst="203.0.113.10", frag=8189, proto=17) / Raw(b"x" * 16)))
    assert rig.drops() == {"sr/frag-too-big": 1}


def test_fragments_beyond_the_waiting_bound_are_dropped():
    from gateway.services.reasm import MAX_DATAGRAMS

    rig = nat_rig()
    for ident in range(MAX_DATAGRAMS + 1):
        frag = IP(src="172.16.10.11", dst="203.0.113.10", id=ident, frag=10, flags="MF", proto=17) / Raw(b"x" * 16)
        rig.send("trunk", web(frag))
    assert rig.drops() == {"sr/frag-table-full": 1}


def test_host_to_its_own_one_to_one_address_is_a_clash():
    rig = nat_rig()
    rig.send("trunk", web(IP(src="172.16.10.12", dst="203.0.113.90") / UDP(sport=53, dport=53), src=H2))
    assert rig.drops() == {"sr/ct-clash": 1}


def test_bfd_with_no_agent_connected():
    rig = nat_rig()
    rig.send(
        "uplink",
        bytes(
            Ether(src=EXT, dst=UP_GW)
            / IP(src="203.0.113.10", dst="203.0.113.1", ttl=255)
            / UDP(sport=49152, dport=3784)
            / Raw(b"\x20" * 24)
        ),
    )
    assert rig.drops() == {"sr/no-punt-client": 1}


def test_broadcast_with_no_other_member():
    rig = Rig()
    rig.send("trunk", bytes(Ether(src=H3, dst="ff:ff:ff:ff:ff:ff") / Dot1Q(vlan=20, type=0x88B5) / Raw(b"x" * 40)))
    assert rig.drops() == {"l2switch/no-other-member": 1}


def test_router_drops_limited_broadcast_and_unsupported_local_traffic():
    rig = Rig()
    rig.send("trunk", web(IP(src="172.16.10.11", dst="255.255.255.255") / UDP()))
    rig.send("trunk", web(IP(src="172.16.10.11", dst="172.16.10.1") / UDP(sport=1, dport=53)))
    # An ICMP message of 4 bytes: shorter than any ICMP header.
    icmp = bytes(IP(src="172.16.10.11", dst="172.16.10.1", proto=1, len=24) / Raw(b"\x08\x00\x00\x00"))
    rig.send("trunk", bytes(Ether(src=H1, dst=WEB_GW) / Dot1Q(vlan=10, type=0x0800) / Raw(icmp)))
    # ARP for hardware type 6 (IEEE 802): well formed, but not Ethernet.
    arp = bytearray(bytes(ARP(psrc="172.16.10.11", pdst="172.16.10.1", hwsrc=H1)))
    arp[0:2] = b"\x00\x06"
    rig.send("trunk", bytes(Ether(src=H1, dst="ff:ff:ff:ff:ff:ff") / Dot1Q(vlan=10, type=0x0806) / Raw(bytes(arp))))
    assert rig.drops() == {
        "dr/not-routable": 1,
        "dr/local-unsupported": 1,
        "dr/icmp-truncated": 1,
        "dr/arp-unsupported": 1,
    }


def test_internal_invariants_are_counted_not_crashed():
    """No packet can reach these through a valid config; they still have a name and a counter."""
    rig = Rig()
    transit, egress = rig.dp.pipeline.stages["transit"], rig.dp.pipeline.stages["egress"]
    pkt = Packet(bytearray(64), rig.port("trunk"), 10)
    pkt.next_hop = 0x0A000001
    rig.dp.pipeline.run(pkt, "transit")
    rig.dp.pipeline.run(Packet(bytearray(64), rig.port("trunk"), 10), "egress")
    assert transit.drops["no-transit-peer"] == 1 and egress.drops["no-output"] == 1
    assert rig.dp.pipeline.internal_errors == 0


def test_a_port_socket_error_is_read_counted_and_does_not_spin():
    """A socket error on a port (the interface went down or away) makes epoll report
    EPOLLERR until the error is read.  The loop reads it, counts it, says it once,
    and goes on: here a real socket with a pending error (ECONNREFUSED) stands in
    for the port's socket."""
    import socket

    from suites.unit.conftest import FakeWire
    from suites.unit.test_loop import run_loop

    class ErrorWire(FakeWire):
        def __init__(self) -> None:
            super().__init__()
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind(("127.0.0.1", 0))
            closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            closed.bind(("127.0.0.1", 0))
            self.sock.connect(closed.getsockname())
            closed.close()
            self.sock.send(b"x")  # the ICMP port unreachable leaves ECONNREFUSED pending
            self.polls = 0

        def fileno(self) -> int:
            return self.sock.fileno()

        def filenos(self) -> tuple[int, ...]:
            return (self.sock.fileno(),)

        def recv_batch(self, limit: int, readable: bool = True) -> list:
            self.polls += 1
            return []

        def take_error(self) -> int:
            return self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)

    rig = Rig()
    wire = ErrorWire()
    rig.dp.attach("uplink", wire)
    quiet = []  # epoll needs a real fd for every port: idle sockets for the others
    for name, other in rig.wires.items():
        if name != "uplink":
            quiet.append(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            other.fileno = quiet[-1].fileno  # type: ignore[method-assign]
    try:
        run_loop(rig, 0.3)
    finally:
        wire.sock.close()
        for sock in quiet:
            sock.close()
    port = rig.port("uplink")
    assert port.errors == 1 and port.last_error == 111  # ECONNREFUSED
    assert wire.polls < 10, f"the loop spun on the error ({wire.polls} polls)"
