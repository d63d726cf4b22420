"""What a tenant cannot do to the edge or its neighbours, with real frames from tenant hosts:
VLAN hopping, claiming the gateway's address or another host's, spoofing a source, flooding
source MACs.  Each check raises AssertionError when the attack got through; the e2e tests
(``suites/e2e/test_security.py``) and the Robot suite (``suites/robot/security.robot``) both
run them."""

from __future__ import annotations

from typing import Any

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.packet import Raw

from suites.lib import traffic
from suites.lib.expect import poll
from suites.lib.plans import addr, router_port

MARK_TYPE = 0x88B5


def _capture(lab: Any, names: tuple[str, ...], seconds: float = 3) -> dict[str, traffic.Capture]:
    return {
        n: traffic.Capture(lab.host(n), lab.host(n).defaultIntf().name, seconds=seconds, max_frames=500) for n in names
    }


def double_tagged_frames_do_not_hop_vlans(lab: Any, plan: dict[str, Any], gw: Any) -> None:
    """Outer tag 10 (web), inner tag 20 (app): the frame stays in web; app's host never sees it."""
    marker = b"edgelab-vlan-hop"
    frame = (
        Ether(src=plan["probes"]["probe"]["mac"], dst="ff:ff:ff:ff:ff:ff")
        / Dot1Q(vlan=10)
        / Dot1Q(vlan=20, type=MARK_TYPE)
        / Raw(marker)
    )
    caps = _capture(lab, ("t3", "ext1"))
    traffic.send(lab.host("probe"), [frame] * 3, gap_ms=20)
    for name, cap in caps.items():
        assert not [f for f in cap.stop() if marker in bytes(f)], f"a double-tagged frame hopped to {name}"


def a_tenant_claiming_the_gateway_address_moves_nobody(lab: Any, plan: dict[str, Any], gw: Any) -> None:
    """t1 sends gratuitous ARPs for 172.16.10.1: t4 (behind the gateway) keeps the gateway's MAC."""
    gw_ip, gw_mac = router_port(plan, "web")["ip"], router_port(plan, "web")["mac"]
    t1, t4 = lab.host("t1"), lab.host("t4")
    assert traffic.ping(t4, gw_ip, count=1).ok
    before = gw.counters()["dropped"]["arp"]
    t1_mac = plan["hosts"]["t1"]["mac"]
    garp = Ether(src=t1_mac, dst="ff:ff:ff:ff:ff:ff") / ARP(
        op=2, hwsrc=t1_mac, psrc=gw_ip, hwdst="ff:ff:ff:ff:ff:ff", pdst=gw_ip
    )
    cap = _capture(lab, ("t4",))["t4"]
    traffic.send(t1, [garp] * 3, gap_ms=20)
    seen = [f for f in cap.stop() if ARP in f and f[ARP].psrc == gw_ip and f[ARP].hwsrc == t1_mac]
    assert not seen, "the claim was flooded to t4"
    assert traffic.neighbour_mac(t4, gw_ip) == gw_mac
    assert traffic.ping(t4, addr(plan, "t3"), count=1).ok, "t4 still routes through its gateway"
    poll(lambda: gw.counters()["dropped"]["arp"] - before >= 3, what="the claims counted")


def a_tenant_claiming_another_segments_host_moves_nobody(lab: Any, plan: dict[str, Any], gw: Any) -> None:
    """t1 (web) sends gratuitous ARPs claiming t3's address (app, another segment): the gateway's
    traffic to t3 still goes to t3, none of it to t1, and the claims are counted."""
    t1, t4 = lab.host("t1"), lab.host("t4")
    t3_ip = addr(plan, "t3")
    assert traffic.ping(t4, t3_ip, count=1).ok  # the DR knows t3
    before = gw.counters()["dropped"]["arp"]
    t1_mac = plan["hosts"]["t1"]["mac"]
    garp = Ether(src=t1_mac, dst="ff:ff:ff:ff:ff:ff") / ARP(
        op=2, hwsrc=t1_mac, psrc=t3_ip, hwdst="ff:ff:ff:ff:ff:ff", pdst=t3_ip
    )
    traffic.send(t1, [garp] * 3, gap_ms=20)
    caps = _capture(lab, ("t1", "t3"))
    assert traffic.ping(t4, t3_ip, count=3).ok, "t4 no longer reaches t3"
    to_t1 = [f for f in caps["t1"].stop() if IP in f and f[IP].dst == t3_ip]
    to_t3 = [f for f in caps["t3"].stop() if IP in f and f[IP].dst == t3_ip]
    assert not to_t1 and to_t3, f"traffic for t3 went to t1 ({len(to_t1)} packets) or not to t3 ({len(to_t3)})"
    poll(lambda: gw.counters()["dropped"]["arp"] - before >= 3, what="the claims counted")


def a_spoofed_source_does_not_leave_the_tenant_segment(lab: Any, plan: dict[str, Any], gw: Any) -> None:
    t1 = lab.host("t1")
    traffic.ping(t1, addr(plan, "ext1"), count=1)  # neighbours resolved
    marker = b"edgelab-urpf-"
    head = Ether(src=plan["hosts"]["t1"]["mac"], dst=router_port(plan, "web")["mac"])
    spoofed = (
        head / IP(src="172.16.20.99", dst=addr(plan, "ext1")) / UDP(sport=3333, dport=3333) / Raw(marker + b"spoofed")
    )
    honest = (
        head / IP(src=addr(plan, "t1"), dst=addr(plan, "ext1")) / UDP(sport=3334, dport=3333) / Raw(marker + b"honest")
    )
    before = gw.counters()["dropped"]["firewall"]
    cap = _capture(lab, ("ext1",))["ext1"]
    traffic.send(t1, [spoofed, spoofed, honest], gap_ms=20)
    got = [bytes(f[Raw]) for f in cap.stop() if Raw in f and marker in bytes(f[Raw])]
    assert got == [marker + b"honest"], f"only the honest datagram may arrive: {got}"
    poll(lambda: gw.counters()["dropped"]["firewall"] - before >= 2, what="the spoofed ones counted")


def a_mac_flood_leaves_the_other_hosts_working(lab: Any, plan: dict[str, Any], gw: Any) -> None:
    """2000 frames from as many source MACs on VLAN 10: t1-t4 and t3-ext1 still work."""
    frames = [
        Ether(src=f"02:bb:00:00:{i // 256:02x}:{i % 256:02x}", dst="ff:ff:ff:ff:ff:ff")
        / Dot1Q(vlan=10, type=MARK_TYPE)
        / Raw(b"flood")
        for i in range(2000)
    ]
    traffic.send(lab.host("probe"), frames, gap_ms=1)
    assert traffic.ping(lab.host("t1"), addr(plan, "t4"), count=2).ok
    assert traffic.ping(lab.host("t3"), addr(plan, "ext1"), count=2).ok
    if "internals.show" in gw.capabilities:
        mac = gw.show("counters")["mac"]
        assert mac["per_instance"]["web"] <= 256 and mac["refused"].get("web", 0) > 0, mac
