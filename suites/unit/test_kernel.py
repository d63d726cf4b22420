"""The user-kernel transport without a kernel: a fake TAP, real frames.

Down: what a router does not consume itself goes to the TAP, tagged with the
namespace's tag; management admits only its prefixes and ports.  Up: ARP is
answered by the datapath, IPv4 is routed as the SR's own, anything else is
dropped and counted.  The same for IPv6 on a dual-stack SR (neighbour
solicitations answered, the rest of the namespace's link kept there).
"""

from __future__ import annotations

import ipaddress
import os

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Dot1Q, Ether

from gateway import config
from gateway.config.kernel import MANAGEMENT_TAG
from suites.unit.conftest import EDGE_YAML, Rig

KERNEL_YAML = (
    EDGE_YAML
    + """kernel:
  tlrs: [t1]
  management:
    router: t1
    address: 203.0.113.5/24
    allow: [198.51.100.0/24]
    ports: [{proto: tcp, port: 8080}, {proto: icmp}]
"""
)
EXT, UP_GW = "02:00:00:00:00:99", "02:00:00:00:cb:01"


class FakeTap:
    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.ifname = "edge1-kni"
        self.gone = False

    def send(self, frame: bytes) -> None:
        self.sent.append(bytes(frame))

    def recv_batch(self, limit: int, readable: bool = True) -> list[bytearray]:
        return []

    def fileno(self) -> int:
        return -1

    def close(self) -> None:
        pass


@pytest.fixture
def krig() -> Rig:
    rig = Rig(KERNEL_YAML)
    rig.dp.kernel.tap = FakeTap()
    # The SR knows where 198.51.100.10's next hop (ext1, 203.0.113.10) is.
    rig.send(
        "uplink",
        bytes(Ether(src=EXT, dst=UP_GW) / ARP(op=2, hwsrc=EXT, psrc="203.0.113.10", hwdst=UP_GW, pdst="203.0.113.1")),
    )
    # The unit config has no default route on the SR: add one.
    rig.handle(
        {"cmd": "route", "action": "add", "router": "t1", "half": "sr", "prefix": "0.0.0.0/0", "via": "203.0.113.10"}
    )
    return rig


def from_provider(l3) -> bytes:
    return bytes(Ether(src=EXT, dst=UP_GW) / l3)


def test_management_admitted_goes_to_the_tap_with_the_management_tag(krig):
    krig.send(
        "uplink", from_provider(IP(src="198.51.100.10", dst="203.0.113.5") / TCP(sport=40000, dport=8080, flags="S"))
    )
    (frame,) = [Ether(f) for f in krig.dp.kernel.tap.sent]
    assert frame[Dot1Q].vlan == MANAGEMENT_TAG and frame[IP].dst == "203.0.113.5" and frame[TCP].dport == 8080
    assert frame.dst == krig.dp.kernel.namespace_mac(MANAGEMENT_TAG).hex(":") and frame.src == krig.dp.kernel.mac.hex(
        ":"
    )


def test_management_refuses_other_sources_and_ports(krig):
    krig.send(
        "uplink", from_provider(IP(src="203.0.113.10", dst="203.0.113.5") / TCP(sport=40000, dport=8080, flags="S"))
    )
    krig.send(
        "uplink", from_provider(IP(src="198.51.100.10", dst="203.0.113.5") / TCP(sport=40000, dport=22, flags="S"))
    )
    krig.send("uplink", from_provider(IP(src="198.51.100.10", dst="203.0.113.5") / UDP(sport=1, dport=8080)))
    assert krig.dp.kernel.tap.sent == []
    assert krig.drops() == {"sr/mgmt-refused": 3}


def test_the_uplink_answers_arp_for_the_management_address(krig):
    krig.take("uplink")
    krig.send(
        "uplink",
        bytes(Ether(src=EXT, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=EXT, psrc="203.0.113.10", pdst="203.0.113.5")),
    )
    (reply,) = [Ether(f) for f in krig.take("uplink")]
    assert reply[ARP].op == 2 and reply[ARP].psrc == "203.0.113.5" and reply[ARP].hwsrc == UP_GW


def test_what_the_sr_does_not_consume_goes_to_its_tlr_namespace(krig):
    krig.send(
        "uplink", from_provider(IP(src="203.0.113.10", dst="203.0.113.1") / TCP(sport=40000, dport=179, flags="S"))
    )
    (frame,) = [Ether(f) for f in krig.dp.kernel.tap.sent]
    assert frame[Dot1Q].vlan == 1 and frame[TCP].dport == 179
    # An echo request is still the datapath's to answer.
    krig.send("uplink", from_provider(IP(src="203.0.113.10", dst="203.0.113.1") / ICMP()))
    assert len(krig.dp.kernel.tap.sent) == 1


def test_arp_from_a_namespace_is_answered_by_the_datapath(krig):
    k = krig.dp.kernel
    ns_mac = k.namespace_mac(1).hex(":")
    k.receive(
        bytearray(
            bytes(
                Ether(src=ns_mac, dst="ff:ff:ff:ff:ff:ff")
                / Dot1Q(vlan=1)
                / ARP(op=1, hwsrc=ns_mac, psrc="203.0.113.1", pdst="203.0.113.10")
            )
        )
    )
    (reply,) = [Ether(f) for f in k.tap.sent]
    assert reply[Dot1Q].vlan == 1 and reply[ARP].op == 2 and reply[ARP].hwsrc == k.mac.hex(":")
    assert reply[ARP].psrc == "203.0.113.10" and reply.dst == ns_mac
    assert krig.take("uplink") == [], "nothing on the wire: the datapath owns ARP there"


def test_ip_from_a_namespace_is_routed_as_the_srs_own(krig):
    k = krig.dp.kernel
    krig.take("uplink")
    ns_mac = k.namespace_mac(MANAGEMENT_TAG).hex(":")
    reply = IP(src="203.0.113.5", dst="198.51.100.10") / TCP(sport=8080, dport=40000, flags="SA")
    k.receive(bytearray(bytes(Ether(src=ns_mac, dst=k.mac.hex(":")) / Dot1Q(vlan=MANAGEMENT_TAG) / reply)))
    (out,) = [Ether(f) for f in krig.take("uplink")]
    assert out.dst == EXT and out.src == UP_GW and out[IP].src == "203.0.113.5" and out[TCP].sport == 8080
    assert k.up == 1


def test_garbage_from_the_kernel_is_dropped_and_counted(krig):
    k = krig.dp.kernel
    k.receive(bytearray(bytes(Ether() / IP())))  # no tag
    k.receive(bytearray(bytes(Ether() / Dot1Q(vlan=77) / IP())))  # no namespace has tag 77
    k.receive(bytearray(bytes(Ether() / Dot1Q(vlan=1, type=0x88CC) / (b"x" * 40))))  # LLDP
    k.receive(bytearray(bytes(Ether() / Dot1Q(vlan=1, type=0x86DD) / (b"x" * 40))))  # t1 has no IPv6
    bad = bytearray(bytes(IP(src="203.0.113.1", dst="198.51.100.10") / ICMP()))
    bad[10] ^= 0xFF
    k.receive(bytearray(bytes(Ether() / Dot1Q(vlan=1, type=0x0800)) + bad))
    k.receive(bytearray(bytes(Ether() / Dot1Q(vlan=1))[:-2] + b"\x08\x06\x00\x01"))
    assert k.drops == {
        "no-tag": 1, "unknown-tag": 1, "not-ip": 1, "malformed": 2, "link-scoped": 0, "ip6-not-enabled": 1,
    }  # fmt: skip
    assert krig.dp.pipeline.internal_errors == 0


def test_without_a_tap_the_punt_is_dropped_and_counted():
    rig = Rig(KERNEL_YAML)  # the TAP is opened by open_ports, which a unit test does not call
    rig.send("uplink", from_provider(IP(src="198.51.100.10", dst="203.0.113.5") / TCP(sport=1, dport=8080, flags="S")))
    assert rig.drops() == {"sr/no-punt-client": 1}


def test_a_tap_deleted_under_the_daemon_leaves_the_loop_and_its_punts_are_counted(krig, capsys):
    """A deleted TAP's descriptor reports an error for ever: the kernel transport leaves the loop
    once (it would spin), says so once, and what is for the kernel is dropped by name."""
    import select

    kernel = krig.dp.kernel
    ep = select.epoll()
    r, w = os.pipe()  # a descriptor the loop holds, standing in for the TAP's
    kernel.tap.fileno = lambda: r
    kernel.attach(ep, {})
    kernel.tap.gone = True  # as io/tap.py sets it on EBADFD
    kernel.readable()
    kernel.tick()
    assert ep.poll(0) == [] and kernel.counters()["tap"] == "gone"
    assert capsys.readouterr().out.count("is gone") == 1
    syn = IP(src="203.0.113.10", dst="203.0.113.1") / TCP(sport=40000, dport=179, flags="S")
    krig.send("uplink", from_provider(syn))
    assert krig.dp.kernel.tap.sent == [] and krig.drops() == {"sr/no-punt-client": 1}
    krig.send("uplink", from_provider(IP(src="203.0.113.10", dst="203.0.113.1") / ICMP()))
    assert len(krig.take("uplink")) == 1  # the datapath's own work goes on
    os.close(r), os.close(w), ep.close()


def test_a_deleted_namespace_is_said_once_and_shown(krig, capsys, monkeypatch):
    kernel = krig.dp.kernel
    # (a unit test builds no namespace; a topology running beside it may have ones of these names)
    monkeypatch.setattr("gateway.kernel.os.path.exists", lambda path: False)
    kernel.tick()
    assert set(kernel.counters()["namespaces_missing"]) == {"edge1-tlr1", "edge1-mgmt"}
    kernel.tick()
    assert capsys.readouterr().out.count("was deleted under the daemon") == 2  # once each


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("kernel: {tlrs: [t9]}", r"kernel.tlrs\[0\]: 't9' is not a router with an SR"),
        ("kernel: {tap: a-very-long-tap-name}", "longer than the kernel's 15-character"),
        (
            "kernel: {management: {router: t1, address: 10.9.9.9/24, allow: [10.0.0.0/8]}}",
            "kernel.management.address: 10.9.9.9/24 is on no segment of t1's SR",
        ),
        (
            "kernel: {management: {router: t1, address: 203.0.113.5/24, allow: [10.0.0.0/8], ports: [{proto: icmp, port: 3}]}}",
            "ICMP has no ports",
        ),
    ],
)
def test_kernel_config_errors(text, error):
    with pytest.raises(config.ConfigError, match=error):
        config.parse(EDGE_YAML + text + "\n", "edge1.yaml")


# -- IPv6 over the transport: a dual-stack SR ------------------------------------------------
def krig6() -> Rig:
    from suites.unit.test_ipv6 import DUAL_YAML

    rig = Rig(DUAL_YAML + "kernel:\n  tlrs: [t1]\n")
    rig.dp.kernel.tap = FakeTap()
    # The SR knows the provider router (2001:db8:cb::fe) as a neighbour.
    sr = rig.dp.model.router("t1", "sr")
    pr = int(ipaddress.IPv6Address("2001:db8:cb::fe"))
    sr.nd.learn(sr.connected_port6(pr), pr, bytes.fromhex("02000000cbfe"), 0.0)
    return rig


def test_the_tlr_namespace_of_a_dual_stack_sr_gets_its_ipv6_addresses():
    rig = krig6()
    (ns,) = rig.dp.kernel.namespaces()
    assert ns["addresses"] == ["203.0.113.1/24", "2001:db8:cb::1/64"]


def test_ipv6_for_an_sr_address_goes_down_to_its_namespace_tagged():
    from scapy.layers.inet6 import IPv6

    rig = krig6()
    k = rig.dp.kernel
    syn = IPv6(src="2001:db8:cb::fe", dst="2001:db8:cb::1") / TCP(sport=40000, dport=179, flags="S")
    rig.send("uplink", bytes(Ether(src="02:00:00:00:cb:fe", dst=UP_GW) / syn))
    (down,) = [Ether(f) for f in k.tap.sent]
    assert down[Dot1Q].vlan == 1 and down[Dot1Q].type == 0x86DD and down.dst == k.namespace_mac(1).hex(":")
    assert down[IPv6].dst == "2001:db8:cb::1" and down[TCP].dport == 179
    assert k.down == 1 and rig.drops() == {}


def test_a_namespace_neighbour_solicitation_is_answered_with_the_datapaths_mac():
    from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6NDOptSrcLLAddr, IPv6

    rig = krig6()
    k = rig.dp.kernel
    ns_mac = k.namespace_mac(1).hex(":")
    ask = (
        Ether(src=ns_mac, dst="33:33:ff:00:00:fe")
        / Dot1Q(vlan=1)
        / IPv6(src="2001:db8:cb::1", dst="ff02::1:ff00:fe", hlim=255)
        / ICMPv6ND_NS(tgt="2001:db8:cb::fe")
        / ICMPv6NDOptSrcLLAddr(lladdr=ns_mac)
    )
    k.receive(bytearray(bytes(ask)))
    (reply,) = [Ether(f) for f in k.tap.sent]
    assert reply[Dot1Q].vlan == 1 and reply.dst == ns_mac and reply.src == k.mac.hex(":")
    na = reply[ICMPv6ND_NA]
    assert na.tgt == "2001:db8:cb::fe" and na.S == 1 and na.R == 1 and reply[IPv6].dst == "2001:db8:cb::1"
    assert k.nd_answered == 1 and rig.take("uplink") == [], "nothing on the wire: the datapath owns ND there"


def test_ipv6_from_a_namespace_is_routed_as_the_srs_own_and_its_link_stays_there():
    from scapy.layers.inet6 import ICMPv6MLReport2, ICMPv6ND_RS, IPv6

    rig = krig6()
    k = rig.dp.kernel
    ns_mac = k.namespace_mac(1).hex(":")
    up = IPv6(src="2001:db8:cb::1", dst="2001:db8:cb::fe") / TCP(sport=179, dport=40000, flags="SA")
    k.receive(bytearray(bytes(Ether(src=ns_mac, dst=k.mac.hex(":")) / Dot1Q(vlan=1) / up)))
    (out,) = [Ether(f) for f in rig.take("uplink")]
    assert out.dst == "02:00:00:00:cb:fe" and out.src == UP_GW and out[IPv6].src == "2001:db8:cb::1"
    assert out[IPv6].hlim == 64, "the SR's own packet: no hop spent"
    for link in (
        IPv6(src="fe80::1", dst="ff02::16", hlim=1) / ICMPv6MLReport2(),
        IPv6(src="fe80::1", dst="ff02::2", hlim=255) / ICMPv6ND_RS(),
        IPv6(src="2001:db8:cb::1", dst="fe80::ff:fe00:cbfe") / TCP(),
    ):
        k.receive(bytearray(bytes(Ether(src=ns_mac, dst="33:33:00:00:00:16") / Dot1Q(vlan=1) / link)))
    assert k.drops["link-scoped"] == 3 and rig.take("uplink") == [] and k.up == 1
    truncated = bytes(Ether(src=ns_mac) / Dot1Q(vlan=1) / up)[:-10]
    k.receive(bytearray(truncated))
    assert k.drops["malformed"] == 1 and rig.dp.pipeline.internal_errors == 0
