"""Connection quotas: one tenant router filling its own cannot refuse another its new
connections; together they stay within the node's bound."""

from __future__ import annotations

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import ARP, Dot1Q, Ether

from suites.unit.conftest import Rig

TWO_TENANTS = """
node: edge1
control_socket: /tmp/edgelab-unit.sock
ports:
  trunk: {ifname: edge1-eth0, role: tenant}
  uplink: {ifname: edge1-eth1, role: uplink}
instances:
  a: {records: [{port: trunk, vlan: 10}]}
  b: {records: [{port: trunk, vlan: 20}]}
  up-a: {records: [{port: uplink, vlan: 100}]}
  up-b: {records: [{port: uplink, vlan: 200}]}
routers:
  - name: ta
    tlr_id: 1
    dr: {ports: [{instance: a, ip: 10.0.1.1/24, mac: "02:00:00:00:0a:01"}]}
    sr:
      ports: [{instance: up-a, ip: 203.0.113.1/24, mac: "02:00:00:00:aa:01"}]
      routes: [{prefix: 0.0.0.0/0, via: 203.0.113.254}]
      nat: {snat: [{source: 10.0.1.0/24, pool: [203.0.113.64]}], max_sessions: QUOTA}
    transit: {subnet: 169.254.0.0/28, dr: 169.254.0.1, sr: 169.254.0.2}
  - name: tb
    tlr_id: 2
    dr: {ports: [{instance: b, ip: 10.0.1.1/24, mac: "02:00:00:00:0b:01"}]}
    sr:
      ports: [{instance: up-b, ip: 198.51.100.1/24, mac: "02:00:00:00:bb:01"}]
      routes: [{prefix: 0.0.0.0/0, via: 198.51.100.254}]
      nat: {snat: [{source: 10.0.1.0/24, pool: [198.51.100.64]}], max_sessions: QUOTA}
    transit: {subnet: 169.254.0.0/28, dr: 169.254.0.1, sr: 169.254.0.2}
tables: {sessions_max: BOUND}
"""
HOST = "02:00:00:00:00:11"


def rig(quota: int, bound: int) -> Rig:
    r = Rig(TWO_TENANTS.replace("QUOTA", str(quota)).replace("BOUND", str(bound)))
    for vlan, up, gw_ip, gw_mac, nh in (
        (100, "02:00:00:00:aa:01", "203.0.113.1", "02:00:00:00:aa:ff", "203.0.113.254"),
        (200, "02:00:00:00:bb:01", "198.51.100.1", "02:00:00:00:bb:ff", "198.51.100.254"),
    ):
        r.send(
            "uplink",
            bytes(
                Ether(src=gw_mac, dst=up) / Dot1Q(vlan=vlan) / ARP(op=2, hwsrc=gw_mac, psrc=nh, hwdst=up, pdst=gw_ip)
            ),
        )
    return r


def syn(vlan: int, gw: str, sport: int) -> bytes:
    # Both tenants use the same private addresses: their routers are separate (overlapping TLRs).
    return bytes(
        Ether(src=HOST, dst=gw)
        / Dot1Q(vlan=vlan)
        / IP(src="10.0.1.11", dst="192.0.2.9")
        / TCP(sport=sport, dport=80, flags="S")
    )


def opened(r: Rig) -> int:
    return len(r.take("uplink"))


def test_a_tenant_filling_its_quota_leaves_the_other_its_connections():
    r = rig(quota=5, bound=1000)
    for port in range(1000, 1020):  # tenant a floods SYNs
        r.send("trunk", syn(10, "02:00:00:00:0a:01", port))
    assert opened(r) == 5
    assert r.drops() == {"sr/nat-table-full": 15}
    for port in range(2000, 2003):  # tenant b still opens its connections
        r.send("trunk", syn(20, "02:00:00:00:0b:01", port))
    assert opened(r) == 3


def test_together_they_stay_within_the_nodes_bound():
    r = rig(quota=100, bound=8)
    for port in range(1000, 1006):
        r.send("trunk", syn(10, "02:00:00:00:0a:01", port))
    for port in range(2000, 2006):
        r.send("trunk", syn(20, "02:00:00:00:0b:01", port))
    assert opened(r) == 8
    nat = r.handle({"cmd": "show", "what": "nat", "router": "tb"})["result"]["tb"]["table"]
    assert nat["node_bound"] == {"used": 8, "limit": 8}
    # A connection that ends gives its place back.
    sa = r.dp.model.router("ta", "sr").services
    sa.ct.remove(sa.ct.conns()[0])
    r.send("trunk", syn(20, "02:00:00:00:0b:01", 2100))
    assert opened(r) == 1
