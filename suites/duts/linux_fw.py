"""The Linux DUT's firewall rules: one rule of the intent in nftables' terms, for the ``ip``
table (``linux_render.py``) or the ``ip6`` one (``linux_ipv6.py``)."""

from __future__ import annotations

import ipaddress
from typing import Any

PROTO = {"tcp": "tcp", "udp": "udp", "icmp": "icmp", "icmpv6": "ipv6-icmp"}


def rule_family(rule: dict[str, Any]) -> int | None:
    """4 or 6 for a rule that names addresses or an ICMP of one family, None for one of both."""
    for key in ("src", "dst"):
        if rule.get(key) not in (None, "any"):
            return ipaddress.ip_network(rule[key]).version
    return {"icmp": 4, "icmpv6": 6}.get(rule.get("proto", "any"))


def fw_rule(rule: dict[str, Any], uplink: str, family: int = 4) -> str | None:
    """One firewall rule of the intent as an nftables rule of the ``family`` table (``ip`` or
    ``ip6``) with its name as the comment; None for a rule of the other family only."""
    if rule_family(rule) not in (None, family):
        return None
    ip = "ip" if family == 4 else "ip6"
    parts: list[str] = []
    direction = rule.get("direction", "any")
    if direction == "out":
        parts.append(f'iifname != "{uplink}" oifname "{uplink}"')
    elif direction == "in":
        parts.append(f'iifname "{uplink}"')
    for field, key in (("saddr", "src"), ("daddr", "dst")):
        if rule.get(key) not in (None, "any"):
            parts.append(f"{ip} {field} {rule[key]}")
    proto = rule.get("proto", "any")
    dport = rule.get("dport")
    if proto in ("tcp", "udp") and dport not in (None, "any"):
        parts.append(f"{proto} dport {dport}")
    elif proto != "any":
        parts.append(f"meta l4proto {PROTO[proto]}")
    action = rule["action"]
    if action == "allow":
        verdict = "accept"
    elif action == "reject":
        icmp = "icmp" if family == 4 else "icmpv6"
        verdict = f'counter name "fw" reject with {icmp} type admin-prohibited'
    else:
        verdict = 'counter name "fw" drop'
    name = rule.get("name", "rule")
    return f'{" ".join(parts)} {verdict} comment "{name}"'.strip()


def fw_chains(rules: list[str], uplink: str, dnat: bool) -> list[str]:
    """The firewall's two chains: the configured rules, then the stateful forward chain
    (established and related in, tenant-initiated out, with ``dnat`` what NAT forwards in;
    the rest dropped and counted)."""
    return [
        "  chain fw_rules {",
        *(f"    {r}" for r in rules),
        "  }",
        "  chain forward {",
        "    type filter hook forward priority filter; policy drop;",
        "    jump fw_rules",
        "    ct state established,related accept",
        '    ct state invalid counter name "fw" drop',
        f'    iifname != "{uplink}" accept',
        *(["    ct status dnat accept"] if dnat else []),
        '    counter name "fw" drop',
        "  }",
    ]
