"""How ``show cache`` describes an entry: its match key and its composed action.

Where this sits: beside the cache (``cache/__init__.py``), off the per-packet
path: ``compose`` describes an entry once, at install; ``Cache.dump`` its key.
"""

from __future__ import annotations

from typing import Any

from gateway.effects import L2, L3, L3_6, L4_6, TUN
from gateway.headers import ETH_P_IP, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, ip_str, mac_str
from gateway.headers6 import ip6_str


def describe_key(entry: Any, port_index: dict[Any, int]) -> str:
    names = {i: p.name for p, i in port_index.items()}
    key = entry.key
    port, vlan, eth = key[0], key[1], key[2]
    text = f"in {names.get(port, port)} {'untagged' if vlan is None else f'vlan {vlan}'} {mac_str(eth[6:12])} > {mac_str(eth[0:6])}"
    ethertype = (eth[12] << 8) | eth[13]
    if entry.mask == TUN:
        addrs, gre, inner = key[3], key[4], key[5]
        return (
            f"{text} gre {ip_str(addrs[0:4])} > {ip_str(addrs[4:8])} network id {int.from_bytes(gre[4:7], 'big')}"
            f" inner {mac_str(inner[6:12])} > {mac_str(inner[0:6])} type {int.from_bytes(inner[12:14], 'big'):#06x}"
        )
    if entry.mask in (L3_6, L4_6):
        text += f" ip6 {ip6_str(int.from_bytes(key[-2 if entry.mask == L4_6 else 3][0:16], 'big'))}"
        text += f" > {ip6_str(int.from_bytes(key[-2 if entry.mask == L4_6 else 3][16:32], 'big'))}"
        if entry.mask == L4_6:
            proto, ports = key[3][0], key[5]
            text += f" proto {proto}"
            if proto in (IPPROTO_TCP, IPPROTO_UDP):
                text += f" {int.from_bytes(ports[0:2], 'big')} > {int.from_bytes(ports[2:4], 'big')}"
            elif ports:
                text += f" id {int.from_bytes(ports[0:2], 'big')}"
        return text
    if ethertype != ETH_P_IP or entry.mask == L2:  # an IPv4 frame switched at L2 matches on L2 only
        return f"{text} type {ethertype:#06x}"
    if entry.mask == L3:
        return f"{text} ip {ip_str(key[3][0:4])} > {ip_str(key[3][4:8])}"
    proto = key[3][0]
    ports = key[5]
    text += f" ip {ip_str(key[4][0:4])} > {ip_str(key[4][4:8])} proto {proto}"
    if proto in (IPPROTO_TCP, IPPROTO_UDP):
        text += f" {int.from_bytes(ports[0:2], 'big')} > {int.from_bytes(ports[2:4], 'big')}"
    elif proto == IPPROTO_ICMP and ports:
        text += f" id {int.from_bytes(ports[0:2], 'big')}"
    return text


def describe_action(entry: Any, port: Any, vlan: int | None) -> str:
    parts = []
    if entry.strip:
        parts.append(f"decap {entry.strip} bytes")
    if entry.eth is not None:
        parts.append(f"eth {mac_str(entry.eth[6:12])} > {mac_str(entry.eth[0:6])}")
    if entry.ttl_dec:
        parts.append(f"{'hop limit' if entry.ttl_at == 21 else 'ttl'} -{entry.ttl_dec}")
    if entry.ip6 is not None:
        parts.append(
            f"ip6 {ip6_str(int.from_bytes(entry.ip6[:16], 'big'))} > {ip6_str(int.from_bytes(entry.ip6[16:], 'big'))}"
        )
    if entry.ip_src is not None:
        parts.append(f"ip src {ip_str(entry.ip_src)}")
    if entry.ip_dst is not None:
        parts.append(f"ip dst {ip_str(entry.ip_dst)}")
    if entry.l4_src is not None:
        parts.append(f"{'id' if entry.l4_off_src == 4 else 'sport'} {int.from_bytes(entry.l4_src, 'big')}")
    if entry.l4_dst is not None:
        parts.append(f"dport {int.from_bytes(entry.l4_dst, 'big')}")
    if entry.conn is not None:
        parts.append(f"conntrack #{entry.conn[1].id}")
    if entry.push is not None:
        p = entry.push
        netid = int.from_bytes(p[38:41], "big")
        parts.append(f"encap gre {ip_str(p[26:30])} > {ip_str(p[30:34])} network id {netid}")
        parts.append(f"eth {mac_str(p[6:12])} > {mac_str(p[0:6])}")
    parts.append(f"out {port.name} {'untagged' if vlan is None else f'vlan {vlan}'}")
    return ", ".join(parts)
