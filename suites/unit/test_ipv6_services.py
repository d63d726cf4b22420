"""The SR's services for IPv6: tracked, not translated; the firewall's rules and default
policy; ICMPv6 errors related to their connection (packet too big above all)."""

from __future__ import annotations

from scapy.layers.inet import TCP, UDP
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6NDOptSrcLLAddr,
    ICMPv6PacketTooBig,
    IPv6,
)
from scapy.layers.l2 import Dot1Q, Ether

from suites.unit.conftest import Rig
from suites.unit.test_ipv6 import DUAL_YAML, EXT, EXT_IP, H1, H1_IP, UP_GW, WEB_GW, _group, _sn, na, parsed

SERVICES = """      nat:
        snat: [{name: tenants, source: 172.16.0.0/16, pool: [203.0.113.64]}]
      firewall:
        rules:
          - {name: no-telnet, action: reject, direction: out, proto: tcp, dport: 23}
          - {name: v4-only, action: drop, direction: out, proto: udp, dst: 198.51.100.0/24}
          - {name: no-dns-to-77, action: drop, direction: out, proto: udp, dst: "2001:db8:77::/48", dport: 53}
"""
FAR = "2001:db8:99::5"


def rig() -> Rig:
    r = Rig(DUAL_YAML.replace('      routes: [{prefix: "::/0", via: "2001:db8:cb::fe"}]\n',
                              '      routes: [{prefix: "::/0", via: "2001:db8:cb::fe"}]\n' + SERVICES))  # fmt: skip
    ns = IPv6(src=H1_IP, dst=_group("2001:db8:10::1"), hlim=255) / ICMPv6ND_NS(tgt="2001:db8:10::1")
    r.send(
        "trunk", bytes(Ether(src=H1, dst=_sn("2001:db8:10::1")) / Dot1Q(vlan=10) / ns / ICMPv6NDOptSrcLLAddr(lladdr=H1))
    )
    r.send("uplink", na(EXT_IP, EXT, "2001:db8:cb::1", UP_GW, None, solicited=True))
    r.take("trunk")
    r.take("uplink")
    return r


def out(r: Rig, pkt) -> None:
    r.send("trunk", bytes(Ether(src=H1, dst=WEB_GW) / Dot1Q(vlan=10) / pkt))


def inbound(r: Rig, pkt) -> None:
    r.send("uplink", bytes(Ether(src=EXT, dst=UP_GW) / pkt))


def test_ipv6_is_tracked_not_translated_and_replies_come_back():
    r = rig()
    out(r, IPv6(src=H1_IP, dst=FAR) / UDP(sport=4000, dport=53))
    (sent,) = parsed(r.take("uplink"))
    assert sent[IPv6].src == H1_IP and sent[UDP].sport == 4000, "no NAT for IPv6"
    (entry,) = r.handle({"cmd": "show", "what": "conntrack", "router": "t1"})["result"]["t1"]["entries"]
    assert entry["orig"] == f"[{H1_IP}]:4000 > [{FAR}]:53" and entry["direction"] == "outbound"
    inbound(r, IPv6(src=FAR, dst=H1_IP) / UDP(sport=53, dport=4000))
    (back,) = parsed(r.take("trunk"))
    assert back[UDP].dport == 4000 and back.dst == H1
    # Unsolicited: another port, or another host of the far side.
    inbound(r, IPv6(src=FAR, dst=H1_IP) / UDP(sport=53, dport=4001))
    inbound(r, IPv6(src=FAR, dst=H1_IP) / TCP(sport=80, dport=4000, flags="A"))
    assert not r.take("trunk")
    assert r.drops() == {"sr/fw-unsolicited": 1, "sr/ct-invalid": 1}


def test_echo_is_tracked_by_its_identifier():
    r = rig()
    out(r, IPv6(src=H1_IP, dst=FAR) / ICMPv6EchoRequest(id=9, seq=1))
    assert len(r.take("uplink")) == 1
    inbound(r, IPv6(src=FAR, dst=H1_IP) / ICMPv6EchoReply(id=9, seq=1))
    inbound(r, IPv6(src=FAR, dst=H1_IP) / ICMPv6EchoReply(id=10, seq=1))
    assert len(r.take("trunk")) == 1
    assert r.drops() == {"sr/ct-invalid": 1}


def test_firewall_rules_apply_by_family():
    r = rig()
    out(r, IPv6(src=H1_IP, dst=FAR) / TCP(sport=4000, dport=23, flags="S"))
    (rej,) = parsed(r.take("trunk"))
    assert rej[ICMPv6DestUnreach].code == 1 and rej[IPv6].dst == H1_IP  # administratively prohibited
    out(r, IPv6(src=H1_IP, dst="2001:db8:77::5") / UDP(sport=4000, dport=53))  # the IPv6 rule
    out(r, IPv6(src=H1_IP, dst="2001:db8:78::5") / UDP(sport=4000, dport=53))  # past its prefix
    assert len(r.take("uplink")) == 1
    assert r.drops() == {"sr/fw-reject": 1, "sr/fw-drop": 1}
    rules = {
        x["name"]: x["hits"]
        for x in r.handle({"cmd": "show", "what": "firewall", "router": "t1"})["result"]["t1"]["rules"]
    }
    assert rules == {"no-telnet": 1, "v4-only": 0, "no-dns-to-77": 1}


def test_packet_too_big_for_a_tracked_flow_reaches_the_sender():
    r = rig()
    big = IPv6(src=H1_IP, dst=FAR) / UDP(sport=4000, dport=9) / (b"x" * 1300)
    out(r, big)
    (sent,) = parsed(r.take("uplink"))
    quote = bytes(sent[IPv6])[:1232]
    inbound(r, IPv6(src=EXT_IP, dst=H1_IP) / ICMPv6PacketTooBig(mtu=1280) / quote)
    (ptb,) = parsed(r.take("trunk"))
    assert ptb[ICMPv6PacketTooBig].mtu == 1280 and ptb.dst == H1
    # One about a flow nobody opened is unsolicited.
    stray = bytes(IPv6(src=H1_IP, dst=FAR) / UDP(sport=4999, dport=9) / (b"x" * 100))
    inbound(r, IPv6(src=EXT_IP, dst=H1_IP) / ICMPv6PacketTooBig(mtu=1280) / stray)
    assert not r.take("trunk")
    assert r.drops() == {"sr/fw-unsolicited": 1}
    assert r.handle({"cmd": "show", "what": "conntrack", "router": "t1"})["result"]["t1"]["related"] == 1


def test_ipv4_still_goes_through_nat_beside_it():
    from scapy.layers.inet import IP
    from scapy.layers.l2 import ARP

    r = rig()
    r.send("uplink", bytes(Ether(src=EXT, dst=UP_GW) / ARP(op=2, hwsrc=EXT, psrc="203.0.113.254", pdst="203.0.113.1")))
    r.send(
        "trunk",
        bytes(
            Ether(src=H1, dst="ff:ff:ff:ff:ff:ff")
            / Dot1Q(vlan=10)
            / ARP(hwsrc=H1, psrc="172.16.10.11", pdst="172.16.10.1")
        ),
    )
    r.take("trunk")
    r.handle(
        {"cmd": "route", "action": "add", "router": "t1", "half": "sr", "prefix": "0.0.0.0/0", "via": "203.0.113.254"}
    )
    out(r, IP(src="172.16.10.11", dst="192.0.2.5") / UDP(sport=4000, dport=53))
    out(r, IPv6(src=H1_IP, dst=FAR) / UDP(sport=4000, dport=53))
    v4, v6 = sorted(parsed(r.take("uplink")), key=lambda f: f.type)
    assert v4[IP].src == "203.0.113.64" and v6[IPv6].src == H1_IP
    assert not [f for f in parsed(r.take("trunk")) if f.haslayer(ICMPv6ND_NA)]
