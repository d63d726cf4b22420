"""The Linux kernel as the gateway: the plan's intent rendered into Linux's own terms.

Where this sits: ``linux.py`` (the driver) applies what :func:`render` returns;
this module runs nothing, so it is tested without root.

How the intent maps onto this kernel:

- an EVI instance is a Linux bridge ``br-<instance>`` in the gateway node's
  namespace; its router port's address and MAC are the bridge's;
- a port whose records carry VLANs is a trunk: this kernel has no 802.1Q
  sub-interfaces, so the trunk interface is handed to an Open vSwitch
  userspace bridge ``<node>-vl<i>`` (one per trunk, so the same VLAN on two
  trunks stays two instances) in the root namespace, with one access port
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
- an SR with ``ha`` runs keepalived (VRRPv3): each SR's own transit and
  uplink addresses are one VRRP instance, priority 200 on their owner and
  100 on its peer (preempting when the intent preempts), adverts every BFD
  ``tx_ms``; keepalived sends the gratuitous ARPs.  VRRP needs an address of
  the node's own on each segment: the highest free addresses of the subnet
  are taken for that (``base``), outside everything the plan names;
  conntrackd runs beside it (FTFW over the transit segment, between the two
  nodes' base addresses), so the peer knows every connection before it takes
  over;
- EVI (``evi``): Linux has no MAC-in-GRE here (this kernel has no GRE) and no
  EVI control plane, so an extended instance is a VXLAN device (VNI = the
  network id, DF set, TTL 64) in the instance's bridge, with head-end
  replication to the other sites' edges listed from the plan (a static full
  mesh: no discovery), unknown unicast and multicast not flooded to it, MACs
  learned from the data plane; its MTU is the core's minus VXLAN's 50 bytes.
  A site's second edge stays idle (Linux has no appointed forwarder: two
  would loop the site);
- a DHCP relay (``dhcp_relay``) is ISC's dhcrelay with agent options: its
  circuit-id is the interface a request came in on, the instance's bridge;
- an FTP ALG (``ftp_alg``) is the kernel's FTP helper (nf_conntrack_ftp and
  nf_nat_ftp), attached explicitly with an nftables ``ct helper`` object to
  the control ports: it rewrites PORT/EPRT/227/229 and expects the data
  connection, which the forward chain admits as related;
- IPv6 (a dual-stack intent) is ``linux_ipv6.py``'s: addresses on the same
  bridges, radvd on the DR's tenant segments, an ``ip6`` table, no NAT;
- the firewall is an nftables forward chain: the configured rules in order on
  every packet (so a rule added at run time stops a running flow, as the
  intent says), then established/related, then tenant-initiated traffic, then
  DNAT'd inbound traffic; the rest is dropped.  Drops and rejects are counted
  in named counters (``fw``, ``nat``).
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any

from suites.duts.linux_fw import fw_chains, fw_rule
from suites.duts.linux_ipv6 import render6

TABLE = "edgelab"


def bridge(instance: str) -> str:
    return f"br-{instance}"[:15]


def ovs_bridge(node: str, index: int) -> str:
    """The OVS bridge of the node's ``index``-th trunk port."""
    return f"{node}-vl{index}"[:15]


def vlan_pair(node: str, port: str, vlan: int) -> tuple[str, str]:
    """(root-side OVS access port, node-side bridge member) of one VLAN record."""
    return f"{node}-{port[0]}{vlan}"[:15], f"v{port[0]}{vlan}"[:15]


def _routers(gw: dict[str, Any]) -> list[dict[str, Any]]:
    return list(gw.get("routers", []))


def uplink_instance(gw: dict[str, Any]) -> str | None:
    """The instance of the provider side: the one whose port's role is uplink (None on a DR node)."""
    uplinks = {name for name, p in gw["ports"].items() if p.get("role") == "uplink"}
    for instance, records in gw["instances"].items():
        if any(r["port"] in uplinks for r in records):
            return instance
    return None


def publics(router: dict[str, Any]) -> list[str]:
    nat = router.get("nat") or {}
    out: list[str] = []
    for rule in nat.get("snat", []):
        out += list(rule["pool"])
    out += [r["public"] for r in nat.get("dnat", [])]
    out += [r["public"] for r in nat.get("one_to_one", [])]
    return sorted(set(out), key=lambda a: ipaddress.IPv4Address(a))


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
    uplink = bridge(up_instance) if up_instance is not None else None
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
            trunk = trunks.setdefault(
                rec["port"], {"ifname": port["ifname"], "vlans": {}, "bridge": ovs_bridge(gateway, len(trunks))}
            )
            root_side, node_side = vlan_pair(gateway, rec["port"], rec["vlan"])
            trunk["vlans"][rec["vlan"]] = {"instance": inst, "root": root_side, "node": node_side}
            bridges[inst]["members"].append(node_side)
    routes: list[tuple[str, str]] = []
    vips: dict[str, list[str]] = {}  # instance -> the SR's own addresses keepalived manages
    for router in _routers(gw):
        ha = router.get("ha")
        for half in ("dr", "sr"):
            for rp in (router.get(half) or {}).get("ports", []):
                target = vips if (ha and half == "sr") else None
                _address(bridges, rp["instance"], rp["ip"], rp["mac"], target)
            for route in (router.get(half) or {}).get("routes", []):
                if ":" not in route["prefix"]:  # (IPv6 routes: linux_ipv6.render6)
                    routes.append((route["prefix"], route["via"]))
        transit = router.get("transit") or {}
        if transit.get("instance"):
            # A real transit segment: this node's half gets its address on it.
            plen = ipaddress.IPv4Network(transit["subnet"]).prefixlen
            if "sr" in router and transit.get("sr"):
                _address(bridges, transit["instance"], f"{transit['sr']}/{plen}", transit.get("sr_mac"),
                         vips if ha else None)  # fmt: skip
            elif "dr" in router:
                _address(bridges, transit["instance"], f"{transit['dr']}/{plen}", transit.get("dr_mac"), None)
                peers = transit.get("peers") or [transit.get("sr")]
                if not any(prefix == "0.0.0.0/0" for prefix, _ in routes):
                    routes.append(("0.0.0.0/0", peers[0]))  # the DR sends the rest to its SR
    router_publics = sorted({a for r in _routers(gw) for a in publics(r)})
    static = router_publics
    ha_router = next((r for r in _routers(gw) if r.get("ha")), None)
    if ha_router is not None and up_instance is not None:
        # With HA a public NAT address follows its SR like the SR's own: a VIP of the SR that
        # answers for it (a peer's ``publics``: the peer's, taken over with its addresses).
        theirs = {a for p in ha_router["ha"]["peers"] for a in p.get("publics", [])}
        vips.setdefault(up_instance, []).extend(f"{a}/32" for a in router_publics if a not in theirs)
        static = []
    if up_instance is not None:
        bridges[up_instance]["addresses"] += [f"{a}/32" for a in static]
    return {
        "dhcp_relay": dhcp_relay(gw),
        "evi": evi(plan, gateway),
        "vrrp": (vr := vrrp(plan, gateway, bridges, vips, (v6 := render6(gw, uplink)))),
        "conntrackd": conntrackd(plan, gateway, bridges, vr),
        "node": gateway,
        "bridges": bridges,
        "trunks": trunks,
        "routes": routes,
        "uplink": uplink,
        "publics": router_publics,
        "nft": nftables(gw, uplink, router_publics),
        "ipv6": v6,
    }


def dhcp_relay(gw: dict[str, Any]) -> dict[str, Any] | None:
    """ISC dhcrelay with agent options (-a) between the DR's bridges: clients on every DR
    segment but the server's, the server's bridge upstream."""
    intent = gw.get("dhcp_relay")
    if intent is None:
        return None
    server = ipaddress.IPv4Address(intent["server"])
    segments = {
        rp["instance"]: ipaddress.IPv4Interface(rp["ip"]).network
        for router in _routers(gw)
        for rp in (router.get("dr") or {}).get("ports", [])
    }
    up = [bridge(inst) for inst, net in segments.items() if server in net]
    down = [bridge(inst) for inst, net in segments.items() if server not in net]
    return {"server": str(server), "up": up, "down": down}


VXLAN_OVERHEAD = 50  # outer IPv4 20 + UDP 8 + VXLAN 8 + the inner Ethernet header 14


def evi(plan: dict[str, Any], gateway: str) -> dict[str, Any] | None:
    """The VXLAN side of an edge with ``evi`` intent (see the module docstring)."""
    gw = plan["gateways"][gateway]
    ev = gw.get("evi")
    if ev is None:
        return None
    me = ev["address"].split("/")[0]
    edges = {name: g["evi"] for name, g in plan["gateways"].items() if g.get("evi")}
    first: dict[int, str] = {}  # site -> the address of the edge that carries it (the lowest)
    for other in edges.values():
        addr = other["address"].split("/")[0]
        if other["site"] not in first or ipaddress.IPv4Address(addr) < ipaddress.IPv4Address(first[other["site"]]):
            first[other["site"]] = addr
    remotes = [addr for site, addr in first.items() if site != ev["site"]]
    remotes += [link["address"] for link in ev.get("links", []) if link["address"] not in remotes]
    return {
        "port": gw["ports"][ev["port"]]["ifname"],
        "address": ev["address"],
        "gateway": ev.get("gateway"),
        "idle": first[ev["site"]] != me,
        "remotes": sorted(remotes, key=ipaddress.IPv4Address),
        "vxlans": [
            {
                "name": f"vx{netid}"[:15],
                "vni": netid,
                "bridge": bridge(inst),
                "mtu": ev.get("mtu", 1500) - VXLAN_OVERHEAD,
            }
            for inst, netid in sorted(ev["instances"].items())
        ],
    }


def _address(
    bridges: dict[str, dict[str, Any]], instance: str, ip: str, mac: str | None, vips: dict[str, list[str]] | None
) -> None:
    if vips is not None:
        vips.setdefault(instance, []).append(ip)
    else:
        bridges[instance]["addresses"].append(ip)
    if mac:
        bridges[instance]["mac"] = mac


def _used_addresses(plan: dict[str, Any]) -> set[str]:
    """Every address the plan names (hosts, router ports, transit, NAT): base addresses avoid them."""
    text = json.dumps(plan)
    return set(re.findall(r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b", text))


def base_address(plan: dict[str, Any], gateway: str, cidr: str) -> str:
    """An address of the node's own on the segment of ``cidr`` (VRRP sends from it): the k-th
    highest free host address, k the node's rank among the plan's gateways."""
    net = ipaddress.IPv4Interface(cidr).network
    used = _used_addresses(plan)
    rank = sorted(plan["gateways"]).index(gateway)
    free = [a for a in reversed(list(net.hosts())) if str(a) not in used]
    return f"{free[rank]}/{net.prefixlen}"


def vrrp(
    plan: dict[str, Any],
    gateway: str,
    bridges: dict[str, dict[str, Any]],
    vips: dict[str, list[str]],
    v6: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """keepalived's configuration for an SR with ``ha`` (None without).  A dual-stack SR's IPv6
    addresses (``v6["vips6"]``) move with its IPv4 ones: the same VRRP instance (IPv4, VRRP v3)
    holds them as ``virtual_ipaddress_excluded`` (keepalived announces them with unsolicited
    neighbour advertisements); its peer's are in the peer's instance."""
    gw = plan["gateways"][gateway]
    router = next((r for r in _routers(gw) if r.get("ha")), None)
    if router is None:
        return None
    ha = router["ha"]
    transit = router["transit"]
    tr_bridge = bridges[transit["instance"]]["name"]
    advert = max(ha.get("bfd", {}).get("tx_ms", 100), 10) / 1000
    # The SR pair: who owns which addresses (by transit address), in one stable order.
    owners = sorted([transit["sr"], *(p["transit"] for p in ha["peers"])], key=ipaddress.IPv4Address)
    peer_addrs = {p["transit"]: p.get("addresses", []) for p in ha["peers"]}
    peer_publics = {p["transit"]: p.get("publics", []) for p in ha["peers"]}
    own6 = [(a, br) for br, addrs in ((v6 or {}).get("vips6") or {}).items() for a in addrs]
    instances = []
    for vrid, owner in enumerate(owners, start=1):
        mine = owner == transit["sr"]
        addrs6 = []
        if mine:
            addrs = [(a, bridges[inst]["name"]) for inst, ips in vips.items() for a in ips]
            addrs6 = own6
        else:
            plen = ipaddress.IPv4Network(transit["subnet"]).prefixlen
            addrs = [(f"{owner}/{plen}", tr_bridge)]
            for a in peer_addrs.get(owner, []):
                if ":" in a:  # on the bridge of our own address in its subnet, with its length
                    ours = [(i, br) for i, br in own6 if ipaddress.IPv6Address(a) in ipaddress.IPv6Interface(i).network]
                    if ours:
                        addrs6.append((f"{a}/{ipaddress.IPv6Interface(ours[0][0]).network.prefixlen}", ours[0][1]))
                    continue
                inst = next(i for i, ips in vips.items() if any(_same_net(a, ip) for ip in ips))
                plen_up = ipaddress.IPv4Interface(vips[inst][0]).network.prefixlen
                addrs.append((f"{a}/{plen_up}", bridges[inst]["name"]))
            for a in peer_publics.get(owner, []):  # its public NAT addresses, as it has them: /32
                inst = next(i for i, ips in vips.items() if any(_same_net(a, ip) for ip in ips))
                addrs.append((f"{a}/32", bridges[inst]["name"]))
        instances.append(
            {
                "name": f"sr_{owner.replace('.', '_')}",
                "vrid": vrid,
                "interface": tr_bridge,
                "priority": 200 if mine else 100,
                "addresses": addrs,
                "addresses6": addrs6,
            }
        )
    base = {bridges[inst]["name"]: base_address(plan, gateway, ips[0]) for inst, ips in vips.items()}
    track = sorted({b for inst in vips for b in [bridges[inst]["name"]]})
    lines = [
        "global_defs {",
        f"  router_id {gateway}",
        "  vrrp_version 3",
        "  vrrp_garp_master_refresh 0",
        "}",
    ]
    for inst in instances:
        lines += [
            f"vrrp_instance {inst['name']} {{",
            "  state BACKUP",
            f"  interface {inst['interface']}",
            f"  virtual_router_id {inst['vrid']}",
            f"  priority {inst['priority']}",
            f"  advert_int {advert:g}",
            *([] if ha.get("preempt", True) else ["  nopreempt"]),
            "  track_interface {",
            *(f"    {b}" for b in track),
            "  }",
            "  virtual_ipaddress {",
            *(f"    {addr} dev {dev}" for addr, dev in inst["addresses"]),
            "  }",
            *(["  virtual_ipaddress_excluded {"] if inst["addresses6"] else []),
            *(f"    {addr} dev {dev}" for addr, dev in inst["addresses6"]),
            *(["  }"] if inst["addresses6"] else []),
            "}",
        ]
    return {"base": base, "config": "\n".join(lines) + "\n", "instances": instances}


CONNTRACKD_PORT = 3780


def conntrackd(
    plan: dict[str, Any], gateway: str, bridges: dict[str, dict[str, Any]], vr: dict[str, Any] | None
) -> dict[str, Any] | None:
    """conntrackd beside keepalived (None without HA): the connection table replicated to the
    peer SR over the transit segment, between the two nodes' own (VRRP base) addresses, in
    FTFW mode (acknowledged, resent on loss); with the external cache off, what the peer
    sends goes straight into this node's kernel table, so a takeover needs no commit step;
    a node that starts asks its peer for the whole table (StartupResync)."""
    if vr is None:
        return None
    router = next(r for r in _routers(plan["gateways"][gateway]) if r.get("ha"))
    transit = router["transit"]
    tr_bridge = bridges[transit["instance"]]["name"]
    peers = {p["transit"] for p in router["ha"]["peers"]}
    peer_gw = next(
        name
        for name, g in plan["gateways"].items()
        for r in _routers(g)
        if r.get("ha") and (r.get("transit") or {}).get("sr") in peers
    )
    cidr = f"{transit['sr']}/{ipaddress.IPv4Network(transit['subnet']).prefixlen}"
    mine = base_address(plan, gateway, cidr).split("/")[0]
    theirs = base_address(plan, peer_gw, cidr).split("/")[0]
    own = sorted({a.split("/")[0] for a in vr["base"].values()} | {mine, theirs, "127.0.0.1"})
    lines = [
        "Sync {",
        "  Mode FTFW {",
        "    DisableExternalCache On",
        "    StartupResync On",  # a node that (re)starts asks its peer for the whole table
        "  }",
        "  UDP {",
        f"    IPv4_address {mine}",
        f"    IPv4_Destination_Address {theirs}",
        f"    Port {CONNTRACKD_PORT}",
        f"    Interface {tr_bridge}",
        "    Checksum on",
        "  }",
        "}",
        "General {",
        "  HashSize 8192",
        "  HashLimit 65536",
        "  Syslog off",
        "  LogFile @LOG@",
        "  LockFile @LOCK@",
        "  UNIX {",
        "    Path @CTL@",
        "  }",
        "  NetlinkBufferSize 2097152",
        "  NetlinkBufferSizeMaxGrowth 8388608",
        "  Filter From Kernelspace {",
        "    Protocol Accept {",
        "      TCP",
        "      UDP",
        "      ICMP",
        "    }",
        "    Address Ignore {",
        *(f"      IPv4_address {a}" for a in own),
        "    }",
        "  }",
        "}",
    ]
    return {"config": "\n".join(lines) + "\n", "address": mine, "peer": theirs, "interface": tr_bridge}


def _same_net(a: str, cidr: str) -> bool:
    return ipaddress.IPv4Address(a) in ipaddress.IPv4Interface(cidr).network


def nftables(gw: dict[str, Any], uplink: str | None, router_publics: list[str]) -> str:
    if uplink is None:
        # No provider side here (a DR node): no NAT, no firewall; the table only counts.
        return (
            f"table ip {TABLE} {{\n  counter fw {{ }}\n  counter nat {{ }}\n"
            "  chain forward { type filter hook forward priority filter; policy accept; }\n}\n"
        )
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
            text = fw_rule(rule, uplink)
            if text is not None:  # (an IPv6 rule is the ip6 table's: linux_ipv6.py)
                fw.append(text)
    publics_set = "{ " + ", ".join(router_publics) + " }" if router_publics else ""
    ftp = (gw.get("ftp_alg") or {}).get("ports", [])
    helpers = [
        '  ct helper ftp-standard { type "ftp" protocol tcp; }',
        "  chain helpers {",
        "    type filter hook prerouting priority filter; policy accept;",
        f'    tcp dport {{ {", ".join(str(p) for p in ftp)} }} ct helper set "ftp-standard"',
        "  }",
    ]
    lines = [
        f"table ip {TABLE} {{",
        '  counter fw { comment "firewall drops and rejects" }',
        '  counter nat { comment "to a public address with no session" }',
        *(helpers if ftp else []),
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
        *fw_chains(fw, uplink, dnat=True),
        "}",
    ]
    return "\n".join(lines) + "\n"
