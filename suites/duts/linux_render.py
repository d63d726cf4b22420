"""The Linux kernel as the gateway: the plan's intent rendered into Linux's own terms.

Where this sits: ``linux.py`` (the driver) applies what :func:`render` returns;
this module runs nothing, so it is tested without root.

How the intent maps onto this kernel:

- an EVI instance is a Linux bridge ``br-<instance>`` in the gateway node's
  namespace; its router port's address and MAC are the bridge's;
- a port whose records carry VLANs is a trunk: this kernel has no 802.1Q
  sub-interfaces, so the trunk interface is handed to an Open vSwitch
  userspace bridge ``<node>-vl`` in the root namespace, with one access port
  (``tag=<vlan>``) per record, a veth into the node that joins the instance's
  bridge; OpenFlow rules admit only the recorded VLANs on the trunk and count
  what they refuse (a frame of no instance);
- the logical router (DR and SR) is the node's one routing table: the DR/SR
  split and the transit subnet have no Linux counterpart (a routed packet
  crosses one hop, not two);
- NAT is nftables: DNAT and 1:1 in prerouting, SNAT to the pool, 1:1 and
  hairpin in postrouting; public addresses are /32s on the uplink bridge so
  the kernel answers ARP for them (and an input rule drops what reaches them
  without a connection);
- the firewall is an nftables forward chain: the configured rules in order on
  every packet (so a rule added at run time stops a running flow, as the
  intent says), then established/related, then tenant-initiated traffic, then
  DNAT'd inbound traffic; the rest is dropped.  Drops and rejects are counted
  in named counters (``fw``, ``nat``).
"""

from __future__ import annotations

import ipaddress
from typing import Any

TABLE = "edgelab"
PROTO = {"tcp": "tcp", "udp": "udp", "icmp": "icmp"}


def bridge(instance: str) -> str:
    return f"br-{instance}"[:15]


def ovs_bridge(node: str) -> str:
    return f"{node}-vl"[:15]


def vlan_pair(node: str, port: str, vlan: int) -> tuple[str, str]:
    """(root-side OVS access port, node-side bridge member) of one VLAN record."""
    return f"{node}-{port[0]}{vlan}"[:15], f"v{port[0]}{vlan}"[:15]


def _routers(gw: dict[str, Any]) -> list[dict[str, Any]]:
    return list(gw.get("routers", []))


def uplink_instance(gw: dict[str, Any]) -> str:
    """The instance of the provider side: the one whose port's role is uplink."""
    uplinks = {name for name, p in gw["ports"].items() if p.get("role") == "uplink"}
    for instance, records in gw["instances"].items():
        if any(r["port"] in uplinks for r in records):
            return instance
    raise ValueError("the intent has no uplink port")


def publics(router: dict[str, Any]) -> list[str]:
    nat = router.get("nat") or {}
    out: list[str] = []
    for rule in nat.get("snat", []):
        out += list(rule["pool"])
    out += [r["public"] for r in nat.get("dnat", [])]
    out += [r["public"] for r in nat.get("one_to_one", [])]
    return sorted(set(out), key=lambda a: ipaddress.IPv4Address(a))


def fw_rule(rule: dict[str, Any], uplink: str) -> str:
    """One firewall rule of the intent as an nftables rule (with its name as the comment)."""
    parts: list[str] = []
    direction = rule.get("direction", "any")
    if direction == "out":
        parts.append(f'iifname != "{uplink}" oifname "{uplink}"')
    elif direction == "in":
        parts.append(f'iifname "{uplink}"')
    for field, key in (("saddr", "src"), ("daddr", "dst")):
        if rule.get(key) not in (None, "any"):
            parts.append(f"ip {field} {rule[key]}")
    proto = rule.get("proto", "any")
    dport = rule.get("dport")
    if proto in ("tcp", "udp") and dport not in (None, "any"):
        parts.append(f"{proto} dport {dport}")
    elif proto != "any":
        parts.append(f"ip protocol {PROTO[proto]}")
    action = rule["action"]
    if action == "allow":
        verdict = "accept"
    elif action == "reject":
        verdict = 'counter name "fw" reject with icmp type admin-prohibited'
    else:
        verdict = 'counter name "fw" drop'
    name = rule.get("name", "rule")
    return f'{" ".join(parts)} {verdict} comment "{name}"'.strip()


def snat_rules(rule: dict[str, Any], uplink: str) -> list[str]:
    """An SNAT rule of the intent: a port range applies to TCP and UDP (nftables maps ports
    only after a transport match); other protocols get the pool's addresses alone."""
    pool = list(rule["pool"])
    to = pool[0] if len(pool) == 1 else f"{pool[0]}-{pool[-1]}"
    head = f'ip saddr {rule["source"]} oifname "{uplink}"'
    comment = f'comment "{rule.get("name", "snat")}"'
    ports = rule.get("ports")
    if not ports:
        return [f"{head} snat to {to} {comment}"]
    return [f"{head} meta l4proto {{ tcp, udp }} snat to {to}:{ports} {comment}", f"{head} snat to {to} {comment}"]


def dnat_rule(rule: dict[str, Any]) -> str:
    proto = rule["proto"]
    to_port = rule.get("to_port", rule["port"])
    return (
        f"ip daddr {rule['public']} {proto} dport {rule['port']} dnat to {rule['to']}:{to_port}"
        f' comment "{rule.get("name", "dnat")}"'
    )


def one_to_one_rules(rule: dict[str, Any], uplink: str) -> tuple[str, str]:
    """(prerouting DNAT, postrouting SNAT) of a 1:1 rule."""
    name = rule.get("name", "one-to-one")
    return (
        f'ip daddr {rule["public"]} dnat to {rule["private"]} comment "{name}"',
        f'ip saddr {rule["private"]} oifname "{uplink}" snat to {rule["public"]} comment "{name}"',
    )


def render(plan: dict[str, Any], gateway: str) -> dict[str, Any]:
    """What the Linux gateway on node ``gateway`` is made of (see the module docstring)."""
    gw = plan["gateways"][gateway]
    ports = gw["ports"]
    up_instance = uplink_instance(gw)
    uplink = bridge(up_instance)
    bridges: dict[str, dict[str, Any]] = {
        inst: {"name": bridge(inst), "members": [], "addresses": [], "mac": None} for inst in gw["instances"]
    }
    trunks: dict[str, dict[str, Any]] = {}
    for inst, records in gw["instances"].items():
        for rec in records:
            port = ports[rec["port"]]
            if rec["vlan"] is None:
                bridges[inst]["members"].append(port["ifname"])
                continue
            trunk = trunks.setdefault(rec["port"], {"ifname": port["ifname"], "vlans": {}})
            root_side, node_side = vlan_pair(gateway, rec["port"], rec["vlan"])
            trunk["vlans"][rec["vlan"]] = {"instance": inst, "root": root_side, "node": node_side}
            bridges[inst]["members"].append(node_side)
    routes: list[tuple[str, str]] = []
    for router in _routers(gw):
        for half in ("dr", "sr"):
            for rp in (router.get(half) or {}).get("ports", []):
                bridges[rp["instance"]]["addresses"].append(rp["ip"])
                bridges[rp["instance"]]["mac"] = rp["mac"]
            for route in (router.get(half) or {}).get("routes", []):
                routes.append((route["prefix"], route["via"]))
    router_publics = sorted({a for r in _routers(gw) for a in publics(r)})
    bridges[up_instance]["addresses"] += [f"{a}/32" for a in router_publics]
    return {
        "node": gateway,
        "bridges": bridges,
        "trunks": trunks,
        "ovs_bridge": ovs_bridge(gateway),
        "routes": routes,
        "uplink": uplink,
        "publics": router_publics,
        "nft": nftables(gw, uplink, router_publics),
    }


def nftables(gw: dict[str, Any], uplink: str, router_publics: list[str]) -> str:
    pre: list[str] = []
    post: list[str] = []
    fw: list[str] = []
    tenants: list[str] = []
    for router in _routers(gw):
        nat = router.get("nat") or {}
        for rule in nat.get("dnat", []):
            pre.append(dnat_rule(rule))
        for rule in nat.get("one_to_one", []):
            dnat, snat = one_to_one_rules(rule, uplink)
            pre.append(dnat)
            post.append(snat)
        for rule in nat.get("snat", []):
            post += snat_rules(rule, uplink)
            tenants.append(rule["source"])
            # Hairpin: a tenant reaching a forwarded port through its public address
            # leaves through the SR again, so it is SNAT'd to the pool as well.
            pool = list(rule["pool"])
            to = pool[0] if len(pool) == 1 else f"{pool[0]}-{pool[-1]}"
            post.append(
                f'ct status dnat ip saddr {rule["source"]} oifname != "{uplink}" snat to {to} comment "hairpin"'
            )
        for rule in router.get("firewall", []):
            fw.append(fw_rule(rule, uplink))
    publics_set = "{ " + ", ".join(router_publics) + " }" if router_publics else ""
    lines = [
        f"table ip {TABLE} {{",
        '  counter fw { comment "firewall drops and rejects" }',
        '  counter nat { comment "to a public address with no session" }',
        "  chain prerouting {",
        "    type nat hook prerouting priority dstnat; policy accept;",
        *(f"    {r}" for r in pre),
        "  }",
        "  chain postrouting {",
        "    type nat hook postrouting priority srcnat; policy accept;",
        *(f"    {r}" for r in post),
        "  }",
        "  chain input {",
        "    type filter hook input priority filter; policy accept;",
        *(
            [f'    iifname "{uplink}" ip daddr {publics_set} ct state new counter name "nat" drop']
            if publics_set
            else []
        ),
        "  }",
        "  chain fw_rules {",
        *(f"    {r}" for r in fw),
        "  }",
        "  chain forward {",
        "    type filter hook forward priority filter; policy drop;",
        "    jump fw_rules",
        "    ct state established,related accept",
        '    ct state invalid counter name "fw" drop',
        f'    iifname != "{uplink}" accept',
        "    ct status dnat accept",
        '    counter name "fw" drop',
        "  }",
        "}",
    ]
    return "\n".join(lines) + "\n"
