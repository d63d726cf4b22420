"""Helpers for the multi-tenant topology: the provider router's BGP view, who the provider sees,
and a SYN flood from a tenant host.

Where this sits: used by ``suites/e2e/test_multi_tenant.py`` and the Robot keywords
(``keywords/tenancy.py``).  Everything is judged from the hosts: the provider router's FRR, a
capture on its interface, the hosts' own sockets.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

from scapy.layers.inet import ICMP, IP

from suites.lib import traffic
from suites.lib.expect import poll
from topologies.nodes import run

PROVIDER = "192.0.2.1"  # on ext1's lo, announced by BGP: no SR has a static route to it


def vtysh(node: Any, command: str) -> Any:
    return json.loads(run(node, ["vtysh", "--vty_socket", node.frr_dir, "-c", command]).stdout or "{}")


def established(ext1: Any) -> list[str]:
    """The BGP neighbours of the provider router whose session is Established."""
    peers = vtysh(ext1, "show bgp summary json").get("ipv4Unicast", {}).get("peers", {})
    return [addr for addr, p in peers.items() if p.get("state") == "Established"]


def next_hops(ext1: Any, prefix: str) -> list[str]:
    """Where the provider router routes ``prefix`` by BGP."""
    routes = vtysh(ext1, "show ip route bgp json").get(prefix, [])
    return [nh["ip"] for route in routes for nh in route.get("nexthops", [])]


def sources_seen(lab: Any, hosts: list[str], dst: str = PROVIDER) -> set[str]:
    """The source addresses the provider router sees on its link to the edge while ``hosts``
    ping ``dst`` (each must get its answers)."""
    ext1 = lab.host("ext1")
    for host in hosts:  # (the route to dst may still be on its way: learned by BGP)
        poll(lambda h=host: traffic.ping(lab.host(h), dst, count=1).ok, timeout=30, what=f"{host} reaching {dst}")
    with traffic.capture(ext1, lab.intf_towards("ext1", "edge1"), seconds=8) as cap:
        for host in hosts:
            result = traffic.ping(lab.host(host), dst, count=2)
            if not result.ok:
                raise AssertionError(f"{host} did not reach {dst}: {result.text}")
        cap.stop()
    return {f[IP].src for f in cap.frames if IP in f and ICMP in f and f[ICMP].type == 8 and f[IP].dst == dst}


_FLOOD = r"""
import socket, struct, sys, time
iface, src_mac, dst_mac, src, dst, seconds, rate = sys.argv[1:8]
def csum(data):
    if len(data) % 2: data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data)); s = (s & 0xFFFF) + (s >> 16)
    return ~(s + (s >> 16)) & 0xFFFF
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind((iface, 0))
sa, da = socket.inet_aton(src), socket.inet_aton(dst)
eth = bytes.fromhex(dst_mac.replace(":", "")) + bytes.fromhex(src_mac.replace(":", "")) + b"\x08\x00"
end = time.monotonic() + float(seconds); gap = 1 / float(rate); n = 0
while time.monotonic() < end:
    sport = 20000 + n % 40000
    tcp = struct.pack("!HHIIBBHHH", sport, 9, n, 0, 5 << 4, 0x02, 64240, 0, 0)
    tcp = tcp[:16] + struct.pack("!H", csum(sa + da + struct.pack("!BBH", 0, 6, 20) + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, n & 0xFFFF, 0, 64, 6, 0, sa, da)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    s.send(eth + ip + tcp); n += 1
    time.sleep(gap)
print(n)
"""


def syn_flood(lab: Any, host: str, seconds: float = 12, rate: int = 600, dst: str = PROVIDER) -> Any:
    """SYNs from ``host`` to ``dst`` port 9, each from another source port, at ``rate`` a second
    for ``seconds`` (raw frames to its gateway's MAC: no connection of its own); the process."""
    node = lab.host(host)
    h = lab.plan["hosts"][host]
    gw_ip = h["gw"]
    dr_mac = next(
        p["mac"]
        for r in lab.plan["gateways"]["edge1"]["routers"]
        for p in r["dr"]["ports"]
        if p["instance"] == h["instance"] and p["ip"].split("/")[0] == gw_ip
    )
    argv = ["python3", "-c", _FLOOD, node.defaultIntf().name, h["mac"], dr_mac, h["ip"].split("/")[0], dst,
            str(seconds), str(rate)]  # fmt: skip
    return node.popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def reaches(lab: Any, host: str, dst: str = PROVIDER, port: int = 5999) -> bool:
    """Whether ``host``'s SYN reaches ``dst`` (its closed ``port`` answers with a reset)."""
    return "refused" in (traffic.tcp_connect(lab.host(host), dst, port).get("error") or "").lower()
