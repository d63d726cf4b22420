"""EVI helpers for the suites (topology evi-dci): what the core carries, what hosts see.

Where this sits: used by ``suites/e2e/test_evi.py`` and the Robot keywords
(``keywords/evi.py``), so both judge EVI the same way, on the wire.  A
capture on the core router's link to an edge sees what arrives at the core
from that edge (a capture skips what the core itself sends).
"""

from __future__ import annotations

import uuid
from typing import Any

from scapy.layers.inet import GRE, IP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

from suites.lib import traffic
from topologies.nodes import run


def ip(lab: Any, host: str) -> str:
    return str(lab.plan["hosts"][host]["ip"]).split("/")[0]


def mac(lab: Any, host: str) -> str:
    return str(lab.plan["hosts"][host]["mac"])


def NETID_KEY(lab: Any) -> int:  # noqa: N802 - a constant of the plan
    """The GRE key of VLAN 100: its network id in the upper 24 bits, flow id 0."""
    return int(lab.plan["evi"]["network_ids"]["v100"]) << 8


def tunnel_address(site: int) -> str:
    return f"10.255.{site}.1"


def edge_of(lab: Any, address: str) -> str:
    """The edge whose tunnel address ``address`` is."""
    for name, gw in lab.plan["gateways"].items():
        if str(gw["evi"]["address"]).split("/")[0] == address:
            return str(name)
    raise AssertionError(f"no edge has tunnel address {address}")


def forwarder(lab: Any, host: str = "h2a") -> str:
    """The edge that carries ``host``'s broadcasts into the core, seen on the core."""
    sources = {p[IP].src for _iface, p in copies_on_core(lab, host, "ff:ff:ff:ff:ff:ff")}
    if len(sources) != 1:
        raise AssertionError(f"{host}'s broadcast entered the core from {sorted(sources) or 'no edge'}")
    return edge_of(lab, sources.pop())


def received_once(lab: Any, src: str, at: str) -> int:
    """How many copies of one broadcast from ``src`` reach host ``at``."""
    frame, marker = marked_frame(lab, src, "ff:ff:ff:ff:ff:ff")
    with traffic.capture(lab.host(at), seconds=3) as cap:
        traffic.send(lab.host(src), [frame])
    return len([f for f in cap.frames if marker in bytes(f)])


def core_captures(lab: Any, seconds: float = 8.0) -> list[traffic.Capture]:
    """A capture on each of the core router's links to the edges (also an edge no DUT runs on)."""
    core = lab.host("core")
    edges = lab.plan["hosts"]["core"]["core_links"]
    return [traffic.Capture(core, lab.intf_towards("core", edge), seconds, 2000) for edge in edges]


def inner(frame: Ether) -> Ether:
    return Ether(tunnel_payload(frame) or b"")


VXLAN_PORT = 4789


def tunnel_payload(frame: Ether) -> bytes | None:
    """What a tunnel packet carries (MAC-in-GRE, or VXLAN for a DUT that uses it); None for
    anything else."""
    if frame.haslayer(GRE):
        return bytes(frame[GRE].payload)
    if frame.haslayer(UDP) and frame[UDP].dport == VXLAN_PORT:
        return bytes(frame[UDP].payload)[8:]
    return None


def gre_with(frames: list[Ether], marker: bytes) -> list[Ether]:
    """The tunnel packets (GRE, or VXLAN) whose inner frame carries ``marker``."""
    return [f for f in frames if marker in (tunnel_payload(f) or b"")]


def marked_frame(lab: Any, src: str, dst_mac: str) -> tuple[Ether, bytes]:
    marker = b"evi-" + uuid.uuid4().hex.encode()
    frame = Ether(src=mac(lab, src), dst=dst_mac) / IP(src=ip(lab, src), dst="10.100.0.250") / UDP() / Raw(marker)
    return frame, marker


def copies_on_core(lab: Any, src: str, dst_mac: str, seconds: float = 4.0) -> list[tuple[str, Ether]]:
    """Send one marked frame from ``src`` to ``dst_mac``; the GRE packets carrying it that
    arrived at the core, with the core interface each arrived on."""
    caps = core_captures(lab, seconds)
    try:
        frame, marker = marked_frame(lab, src, dst_mac)
        traffic.send(lab.host(src), [frame])
    finally:
        for cap in caps:
            cap.stop()
    return [(cap.iface, p) for cap in caps for p in gre_with(cap.frames, marker)]


def broadcast_destinations(lab: Any) -> list[str]:
    """Where a broadcast from h1a goes: the tunnel destinations of its copies on the core."""
    return sorted(p[IP].dst for _iface, p in copies_on_core(lab, "h1a", "ff:ff:ff:ff:ff:ff"))


def send_from_new_mac(lab: Any, host: str, new_mac: str) -> None:
    """A frame from ``new_mac`` at ``host`` to a MAC nobody has: it stays at its site (unknown
    unicast is not sent across), but the edge learns ``new_mac`` there."""
    frame = Ether(src=new_mac, dst="02:00:0e:77:77:77") / IP(src=ip(lab, host), dst="10.100.0.251") / UDP()
    traffic.send(lab.host(host), [frame])


def unicast_arrives(lab: Any, src: str, dst_mac: str, at: str) -> bool:
    frame, marker = marked_frame(lab, src, dst_mac)
    with traffic.capture(lab.host(at), seconds=3) as cap:
        traffic.send(lab.host(src), [frame])
    return any(marker in bytes(f) for f in cap.frames)


def mesh_up(lab: Any) -> bool:
    """Every site's VLAN 100 host reaches the others.  The hosts' neighbour caches are flushed
    first: a host that still has the MAC of a host behind a restarted edge sends unicast the
    edges do not know yet (and do not flood across) until that host speaks again."""
    pairs = (("h1a", "h2a"), ("h1a", "h3a"), ("h2a", "h3a"))
    for name in ("h1a", "h2a", "h3a"):
        run(lab.host(name), ["ip", "neigh", "flush", "dev", lab.host(name).defaultIntf().name])
    return all(traffic.ping(lab.host(a), ip(lab, b), count=1, wait=0.5).ok for a, b in pairs)


def arp_across(lab: Any, src: str, target: str) -> tuple[list[ARP], list[Ether]]:
    """``src`` asks for ``target``'s MAC once (a broadcast ARP request): the replies it got,
    and the GRE packets carrying an ARP for ``target`` that arrived at the core."""
    request = Ether(src=mac(lab, src), dst="ff:ff:ff:ff:ff:ff") / ARP(
        op=1, hwsrc=mac(lab, src), psrc=ip(lab, src), pdst=ip(lab, target)
    )
    caps = core_captures(lab, seconds=5)
    with traffic.capture(lab.host(src), seconds=4) as cap:
        try:
            traffic.send(lab.host(src), [request])
        finally:
            for c in caps:
                c.stop()
    replies = [f[ARP] for f in cap.frames if f.haslayer(ARP) and f[ARP].op == 2 and f[ARP].psrc == ip(lab, target)]
    tunnelled = [
        f
        for c in caps
        for f in c.frames
        if tunnel_payload(f) is not None and inner(f).haslayer(ARP) and inner(f)[ARP].pdst == ip(lab, target)
    ]
    return replies, tunnelled


def ping_df(lab: Any, src: str, dst: str, size: int, count: int = 2) -> int:
    """Pings with DF set and ``size`` bytes of data; how many were answered."""
    argv = ["ping", "-n", "-c", str(count), "-i", "0.2", "-W", "1", "-M", "do", "-s", str(size), ip(lab, dst)]
    res = run(lab.host(src), argv, check=False)
    return traffic.PingResult(res.stdout, res.returncode).received


def tcpdump_gre(lab: Any, src: str, dst: str, count: int = 2) -> str:
    """What tcpdump (an independent decoder) prints for the first GRE packets on the core's link
    to edge1 while ``src`` pings ``dst``."""
    import subprocess

    core = lab.host("core")
    argv = ["tcpdump", "-nnvve", "-c", str(count), "-i", lab.intf_towards("core", "edge1"), "ip proto 47"]
    proc = core.popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        first = proc.stderr.readline().decode()  # type: ignore[union-attr]
        if "listening on" not in first:  # it printed why it cannot capture, and exits
            raise traffic.TrafficError(f"tcpdump on the core did not start: {first.strip()}")
        run(lab.host(src), ["ip", "neigh", "flush", "dev", lab.host(src).defaultIntf().name])
        traffic.ping(lab.host(src), ip(lab, dst), count=2)
        out, _err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return out.decode(errors="replace")
