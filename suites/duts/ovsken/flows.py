"""The OpenFlow pipeline of the ovs DUT: the app's config turned into flows.

Where this sits: ``app.py`` (the os-ken app) installs what :func:`pipeline`
returns when the bridge connects and re-installs a table when a runtime
change touches it; packet-ins come back to it by cookie kind.  This module
only builds messages' parts (``Flow``), so it is tested without a switch.

Tables, in a packet's walk (registers: reg0 instance, reg1 output record,
reg2 input record, reg3 next hop, reg5 router, reg6 egress router port,
reg7 ingress router port, reg8 a firewall rule allowed it, reg9 an SNAT commit,
reg10 unsolicited, reg4 the other half of the router a route leads to)::

  0 classify   (port, VLAN) -> instance, record; VLAN tag popped; else drop (no-instance)
  1 l2         learn (instance, source MAC) -> record into table 2; look up; decide (3)
  2 learned    filled by learn: (instance, MAC) -> output record
  3 switch     router MAC -> router (10); ARP for a router address -> app; else deliver (5)
  5 deliver    unknown destination or broadcast -> flood (6); else egress (4)
  6 flood      the instance's other records, each tagged as it needs
  4 egress     record -> tag and port (never back out of the record it came in on)
  10 router    own address (ping) -> app; else dec_ttl (TTL <= 1: to the app, time exceeded)
  11 sr        conntrack zone of the SR: ct (from the tenants), ct(nat) (from the uplink)
  13 firewall  the configured rules in order, on every packet
  14 state     new related (an FTP data connection) -> commit with the expectation's NAT;
               established/related -> route (from the tenants: ct(nat) first, then 19); new -> 15 / 16
  15 snat      new from the tenants: commit with nat(src=pool | 1:1 address); to a port forward
               or 1:1 address (hairpin): commit nat(dst=...) then 21
  21 hairpin   the hairpinned connection SNATed to the pool in the second zone (0x8000 | zone)
  19 hairpin-out  from the tenants to a tenant after NAT: ct(nat) in the second zone, then route
  22 track     a hairpinned reply un-SNATed in the second zone: now tracked in the SR's zone
  16 dnat      new from the uplink: commit with nat(dst=...) for a port forward or 1:1, else drop
  17 commit    after a commit: a packet conntrack could not translate (pool exhausted) -> drop (nat)
  12 route     longest prefix: connected, via a next hop, or to the other half of the router
  18 forward   unsolicited (reg10) -> drop (firewall); to the other half -> its router (10); else 20
  20 neighbour (egress router port, next hop) -> MACs, then deliver in the egress instance;
               unknown -> app (ARP, the packet held until the answer)
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

T_CLASSIFY, T_L2, T_LEARNED, T_SWITCH, T_EGRESS, T_DELIVER, T_FLOOD = 0, 1, 2, 3, 4, 5, 6
T_ROUTER, T_SR, T_ROUTE, T_FW, T_STATE, T_SNAT, T_DNAT, T_COMMIT = 10, 11, 12, 13, 14, 15, 16, 17
T_FORWARD, T_HAIRPIN_OUT, T_NEIGH, T_HAIRPIN, T_SR_TRACK = 18, 19, 20, 21, 22
HAIRPIN_ZONE = 0x8000  # | the SR's zone: the second zone, for the SNAT of hairpinned connections

# Cookie kinds (cookie >> 32): packet-ins are dispatched by them and drops counted by them.
K_NO_INSTANCE = 0x99
K_FIREWALL = 0xF1
K_REJECT = 0xF2
K_NAT = 0xA1
K_TTL = 0x71
K_NO_ROUTE = 0x72
K_ARP = 0x31
K_LOCAL = 0x32
K_ARP_MISS = 0x33
K_ARP_SPOOF = 0x34
K_OTHER = 0x01
K_PIPE = 0x02  # plain pipeline flows
K_LEARNED = 0x03
K_NEIGH = 0x04

# Which normalized drop category each counting kind is (suites/duts/base.py DROP_CATEGORIES).
DROP_KINDS = {
    K_NO_INSTANCE: "no-instance",
    K_FIREWALL: "firewall",
    K_REJECT: "firewall",
    K_NAT: "nat",
    K_TTL: "ttl",
    K_NO_ROUTE: "no-route",
    K_ARP_SPOOF: "arp",
    K_OTHER: "other",
}

NAT_SRC, NAT_DST = 1, 2  # NX_NAT_F_SRC, NX_NAT_F_DST (ovs-ofctl's nat(src=...), nat(dst=...))
CT_NEW, CT_EST, CT_REL, CT_RPL, CT_INV, CT_TRK = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
ETH_IP, ETH_ARP = 0x0800, 0x0806
PROTO = {"icmp": 1, "tcp": 6, "udp": 17}


def cookie(kind: int, detail: int = 0) -> int:
    return kind << 32 | detail


@dataclass
class Flow:
    """One flow: ``match`` as OFPMatch keywords; ``actions`` as (name, args) pairs that
    :func:`actions` turns into os-ken action objects."""

    table: int
    priority: int
    match: dict[str, Any]
    actions: list[tuple[str, Any]] = field(default_factory=list)
    kind: int = K_PIPE
    detail: int = 0

    @property
    def cookie(self) -> int:
        return cookie(self.kind, self.detail)


def _tag(vlan: int | None) -> list[tuple[str, Any]]:
    return [] if vlan is None else [("push_vlan", None), ("set", {"vlan_vid": 0x1000 | vlan})]


def _out(record: dict[str, Any], ofports: dict[str, int]) -> list[tuple[str, Any]]:
    """Send on one record: tagged if it is a VLAN record, the tag removed again after."""
    acts = [*_tag(record["vlan"]), ("output", ofports[record["ifname"]])]
    if record["vlan"] is not None:
        acts.append(("pop_vlan", None))
    return acts


def own_addresses(router: dict[str, Any]) -> list[str]:
    out = [p["ip"] for p in router["ports"]]
    if router["transit"]["ip"]:
        out.append(router["transit"]["ip"])
    return out


def switching(cfg: dict[str, Any], ofports: dict[str, int]) -> list[Flow]:
    flows: list[Flow] = [Flow(T_CLASSIFY, 0, {}, [("drop", None)], K_NO_INSTANCE)]
    learn = (
        "learn",
        {"table": T_LEARNED, "idle": 300, "cookie": cookie(K_LEARNED)},
    )
    for rec in cfg["records"]:
        port = ofports[rec["ifname"]]
        load = [("set", {"reg0": rec["instance"]}), ("set", {"reg2": rec["id"]})]
        if rec["vlan"] is None:
            flows.append(Flow(T_CLASSIFY, 100, {"in_port": port, "vlan_vid": 0}, [*load, ("goto", T_L2)]))
        else:
            flows.append(
                Flow(T_CLASSIFY, 100, {"in_port": port, "vlan_vid": 0x1000 | rec["vlan"]},
                     [("pop_vlan", None), *load, ("goto", T_L2)])
            )  # fmt: skip
        # egress: never back out of the record a frame came in on; OpenFlow needs IN_PORT for
        # the same port (another VLAN of the trunk)
        flows.append(Flow(T_EGRESS, 300, {"reg1": rec["id"], "reg2": rec["id"]}, [("drop", None)]))
        out = _out(rec, ofports)
        flows.append(
            Flow(T_EGRESS, 200, {"reg1": rec["id"], "in_port": port},
                 [a if a[0] != "output" else ("output", "in_port") for a in out])
        )  # fmt: skip
        flows.append(Flow(T_EGRESS, 100, {"reg1": rec["id"]}, out))
    flows.append(Flow(T_L2, 0, {}, [learn, ("resubmit", T_LEARNED), ("resubmit", T_SWITCH)]))
    by_instance: dict[int, list[dict[str, Any]]] = {}
    for rec in cfg["records"]:
        by_instance.setdefault(rec["instance"], []).append(rec)
    for inst, recs in by_instance.items():
        for src in [None, *recs]:
            acts: list[tuple[str, Any]] = []
            for rec in recs:
                if src is not None and rec["id"] == src["id"]:
                    continue
                out = _out(rec, ofports)
                if src is not None and rec["ifname"] == src["ifname"]:
                    out = [a if a[0] != "output" else ("output", "in_port") for a in out]
                acts += out
            match = {"reg0": inst, "reg2": 0 if src is None else src["id"]}
            flows.append(Flow(T_FLOOD, 100, match, acts or [("drop", None)]))
    flows.append(Flow(T_SWITCH, 0, {}, [("resubmit", T_DELIVER)]))
    flows.append(Flow(T_DELIVER, 100, {"reg1": 0}, [("resubmit", T_FLOOD)]))
    flows.append(Flow(T_DELIVER, 0, {}, [("resubmit", T_EGRESS)]))
    return flows


def routers(cfg: dict[str, Any]) -> list[Flow]:
    flows: list[Flow] = []
    for router in cfg["routers"]:
        rid = router["id"]
        for rp in router["ports"]:
            inst = rp["instance"]
            flows.append(
                Flow(T_SWITCH, 300, {"reg0": inst, "eth_dst": rp["mac"]},
                     [("set", {"reg5": rid}), ("set", {"reg7": rp["id"]}), ("resubmit", T_ROUTER)])
            )  # fmt: skip
            answered = [rp["ip"]]
            if router["kind"] == "sr" and inst in router.get("uplink_instances", []):
                answered += router["publics"]
            for ip in answered:
                flows.append(
                    Flow(T_SWITCH, 250, {"reg0": inst, "eth_type": ETH_ARP, "arp_op": 1, "arp_tpa": ip},
                         [("set", {"reg5": rid}), ("set", {"reg7": rp["id"]}), ("controller", None)], K_ARP)
                )  # fmt: skip
                # a host claiming the gateway's address is not believed, nor passed on
                flows.append(
                    Flow(T_SWITCH, 240, {"reg0": inst, "eth_type": ETH_ARP, "arp_spa": ip}, [("drop", None)],
                         K_ARP_SPOOF)
                )  # fmt: skip
            # ARP inspection: a sender address off the segment's subnet is a false claim (only
            # probes from 0.0.0.0 and the subnet's own hosts pass)
            net = ipaddress.IPv4Network(f"{rp['ip']}/{rp['plen']}", strict=False)
            for ok in (_masked(net), "0.0.0.0"):
                flows.append(Flow(T_SWITCH, 230, {"reg0": inst, "eth_type": ETH_ARP, "arp_spa": ok},
                                  [("resubmit", T_DELIVER)]))  # fmt: skip
            if router["kind"] == "dr":
                flows.append(Flow(T_SWITCH, 220, {"reg0": inst, "eth_type": ETH_ARP}, [("drop", None)], K_ARP_SPOOF))
        for ip in own_addresses(router):
            flows.append(
                Flow(T_ROUTER, 300, {"reg5": rid, "eth_type": ETH_IP, "ip_proto": 1, "icmpv4_type": 8, "ipv4_dst": ip},
                     [("controller", None)], K_LOCAL)
            )  # fmt: skip
            flows.append(
                Flow(T_ROUTER, 290, {"reg5": rid, "eth_type": ETH_IP, "ipv4_dst": ip}, [("drop", None)], K_OTHER)
            )
        # TTL <= 1: dec_ttl stops and hands the packet to the app (packet-in reason invalid TTL;
        # a match on nw_ttl is not possible from os-ken: it orders the NXM field before eth_type)
        nxt = T_SR if router["kind"] == "sr" else T_ROUTE
        flows.append(Flow(T_ROUTER, 100, {"reg5": rid, "eth_type": ETH_IP}, [("dec_ttl", None), ("resubmit", nxt)]))
        flows.append(Flow(T_ROUTER, 50, {"reg5": rid, "eth_type": ETH_ARP}, [("controller", None)], K_ARP))
        flows.append(Flow(T_ROUTER, 0, {"reg5": rid}, [("drop", None)], K_OTHER))
        flows += routes(cfg, router)
        flows.append(Flow(T_NEIGH, 0, {"reg5": rid}, [("controller", None)], K_ARP_MISS))
        if router["kind"] == "sr":
            flows += services(router)
    return flows


def routes(cfg: dict[str, Any], router: dict[str, Any]) -> list[Flow]:
    rid = router["id"]
    flows = [
        Flow(T_ROUTE, 0, {"reg5": rid}, [("controller", None)], K_NO_ROUTE),
        # a route found: an unsolicited packet (no NAT rule took it) is dropped now, so that one
        # with no route gets its net unreachable first, as a kernel routes before it filters
        Flow(T_FORWARD, 300, {"reg5": rid, "reg10": 1}, [("drop", None)], K_FIREWALL),
        Flow(T_FORWARD, 0, {"reg5": rid}, [("resubmit", T_NEIGH)]),
    ]
    for peer in {r["peer"] for r in router["routes"] if "peer" in r}:
        flows.append(Flow(T_FORWARD, 200, {"reg5": rid, "reg4": peer},
                          [("set", {"reg5": peer}), ("set", {"reg4": 0}), ("resubmit", T_ROUTER)]))  # fmt: skip
    ports = [*router["ports"], router["transit"]]
    for rp in router["ports"]:
        net = ipaddress.IPv4Network(f"{rp['ip']}/{rp['plen']}", strict=False)
        flows.append(
            Flow(T_ROUTE, 2 * net.prefixlen + 101, {"reg5": rid, "eth_type": ETH_IP, "ipv4_dst": _masked(net)},
                 [("move_dst_to_reg3", None), ("set", {"reg6": rp["id"]}), ("resubmit", T_FORWARD)])
        )  # fmt: skip
    for route in router["routes"]:
        net = ipaddress.IPv4Network(route["prefix"])
        match = {"reg5": rid, "eth_type": ETH_IP, "ipv4_dst": _masked(net)}
        prio = 2 * net.prefixlen + 100
        if "peer" in route:
            acts = [("set", {"reg4": route["peer"]}), ("set", {"reg7": route["via_port"]}), ("resubmit", T_FORWARD)]
        else:
            egress = egress_port(ports, route["via"])
            if egress is None:
                continue  # a next hop on no segment of this router: unusable, as in a kernel
            acts = [("set", {"reg3": int(ipaddress.IPv4Address(route["via"]))}), ("set", {"reg6": egress["id"]}),
                    ("resubmit", T_FORWARD)]  # fmt: skip
        flows.append(Flow(T_ROUTE, prio, match, acts))
    return flows


def egress_port(ports: list[dict[str, Any]], via: str) -> dict[str, Any] | None:
    addr = ipaddress.IPv4Address(via)
    for rp in ports:
        if rp["ip"] and rp["instance"] is not None:
            if addr in ipaddress.IPv4Network(f"{rp['ip']}/{rp['plen']}", strict=False):
                return rp
    return None


def _masked(net: ipaddress.IPv4Network) -> Any:
    return str(net.network_address) if net.prefixlen == 32 else (str(net.network_address), str(net.netmask))


def services(router: dict[str, Any]) -> list[Flow]:
    """Conntrack, firewall and NAT of one SR (tables 11, 13-17, 19, 21, 22)."""
    rid, zone = router["id"], router["zone"]
    tenant_side = router["transit"]["id"]
    hzone = HAIRPIN_ZONE | zone
    ip = {"reg5": rid, "eth_type": ETH_IP}
    flows = [
        # from the tenants: tracked without NAT, so the firewall sees the tenant's own addresses;
        # a hairpinned connection's reply (to a pool address) is un-SNATed in its own zone first
        Flow(T_SR, 100, {**ip, "reg7": tenant_side}, [("ct", {"zone": zone, "table": T_FW})]),
        Flow(T_SR, 90, ip, [("ct", {"zone": zone, "nat": {}, "table": T_FW})]),
        Flow(T_SR_TRACK, 0, ip, [("ct", {"zone": zone, "table": T_FW})]),
        Flow(T_FW, 0, {"reg5": rid}, [("resubmit", T_STATE)]),
    ]
    for rule in router["snat"]:
        for addr in rule["pool"]:
            flows.append(Flow(T_SR, 110, {**ip, "reg7": tenant_side, "ipv4_dst": addr},
                              [("ct", {"zone": hzone, "nat": {}, "table": T_SR_TRACK})]))  # fmt: skip
    # a tenant's packet after its own zone's NAT: to a tenant again (hairpin), SNAT it in the
    # second zone (established there) -- or route it
    for net in tenant_nets(router):
        flows.append(
            Flow(T_HAIRPIN_OUT, 100, {**ip, "ipv4_dst": net}, [("ct", {"zone": hzone, "nat": {}, "table": T_ROUTE})])
        )
    flows.append(Flow(T_HAIRPIN_OUT, 0, {"reg5": rid}, [("resubmit", T_ROUTE)]))
    flows += firewall(router)
    # a new connection related to a known one (an FTP data connection the helper expects):
    # committed, with the NAT the expectation carries
    rel_new = (CT_TRK | CT_NEW | CT_REL, CT_TRK | CT_NEW | CT_REL | CT_INV)
    flows.append(
        Flow(
            T_STATE,
            110,
            {**ip, "ct_state": rel_new},
            [("ct", {"zone": zone, "commit": True, "nat": {}, "table": T_ROUTE})],
        )
    )
    for state in (CT_EST, CT_REL):
        flows.append(
            Flow(T_STATE, 100, {**ip, "reg7": tenant_side, "ct_state": (CT_TRK | state, CT_TRK | state | CT_INV)},
                 [("ct", {"zone": zone, "nat": {}, "table": T_HAIRPIN_OUT})])
        )  # fmt: skip
        flows.append(
            Flow(T_STATE, 90, {"reg5": rid, "ct_state": (CT_TRK | state, CT_TRK | state | CT_INV)},
                 [("resubmit", T_ROUTE)])
        )  # fmt: skip
    flows.append(
        Flow(T_STATE, 80, {"reg5": rid, "ct_state": (CT_TRK | CT_INV, CT_TRK | CT_INV)}, [("drop", None)], K_FIREWALL)
    )
    new = (CT_TRK | CT_NEW, CT_TRK | CT_NEW)
    flows.append(Flow(T_STATE, 70, {"reg5": rid, "reg7": tenant_side, "ct_state": new}, [("resubmit", T_SNAT)]))
    flows.append(Flow(T_STATE, 60, {"reg5": rid, "ct_state": new}, [("resubmit", T_DNAT)]))
    flows.append(Flow(T_STATE, 0, {"reg5": rid}, [("drop", None)], K_FIREWALL))
    flows += nat(router)
    flows.append(
        Flow(T_COMMIT, 100, {"reg5": rid, "ct_state": (CT_TRK | CT_INV, CT_TRK | CT_INV)}, [("drop", None)], K_NAT)
    )
    flows.append(Flow(T_COMMIT, 0, {"reg5": rid}, [("resubmit", T_ROUTE)]))
    return flows


def tenant_nets(router: dict[str, Any]) -> list[Any]:
    """The SR's tenant subnets (what it routes to its DR)."""
    return [_masked(ipaddress.IPv4Network(r["prefix"])) for r in router["routes"] if "peer" in r]


FTP = 21  # ct(alg=ftp): Open vSwitch's conntrack names its helper by the protocol's port


def _commit(zone: int, nat: dict[str, Any] | None, table: int = T_COMMIT, alg: bool = False) -> tuple[str, Any]:
    args: dict[str, Any] = {"zone": zone, "commit": True, "table": table}
    if alg:
        args["alg"] = FTP
    if nat is not None:
        args["nat"] = nat
    return ("ct", args)


def _l4(proto: str | None, port: int | None, field_: str) -> dict[str, Any]:
    if proto in (None, "any"):
        return {}
    out: dict[str, Any] = {"ip_proto": PROTO[proto]}
    if port not in (None, "any") and proto in ("tcp", "udp"):
        out[f"{proto}_{field_}"] = int(port)  # type: ignore[arg-type]
    return out


def nat(router: dict[str, Any]) -> list[Flow]:
    rid, zone = router["id"], router["zone"]
    flows = [
        Flow(T_SNAT, 0, {"reg5": rid, "eth_type": ETH_IP}, [_commit(zone, None)]),
        Flow(T_DNAT, 10, {"reg5": rid, "reg8": 1, "eth_type": ETH_IP}, [_commit(zone, None)]),
        # unsolicited from the uplink: nothing forwards it (dropped once its route is known: 18)
        Flow(T_DNAT, 0, {"reg5": rid}, [("set", {"reg10": 1}), ("resubmit", T_ROUTE)]),
    ]
    base = {"reg5": rid, "eth_type": ETH_IP}
    hzone = HAIRPIN_ZONE | zone
    # hairpin: a tenant to a port forward or 1:1 address is DNATed in the SR's zone, then SNATed
    # to its pool in the second zone, so the server answers through the gateway
    ftp_ports = set(router.get("ftp_ports", []))
    for i, rule in enumerate(router["dnat"]):
        match = {**base, "ipv4_dst": rule["public"], **_l4(rule["proto"], rule["port"], "dst")}
        to = {"dst": rule["to"], "port": int(rule.get("to_port", rule["port"]))}
        alg = rule["proto"] == "tcp" and to["port"] in ftp_ports
        flows.append(Flow(T_SNAT, 3000, match, [_commit(zone, to, T_HAIRPIN)], detail=i))
        flows.append(Flow(T_DNAT, 300, match, [_commit(zone, to, alg=alg)], detail=i))
    for i, rule in enumerate(router["one_to_one"]):
        flows.append(Flow(T_SNAT, 2900, {**base, "ipv4_dst": rule["public"]},
                          [_commit(zone, {"dst": rule["private"]}, T_HAIRPIN)], detail=i))  # fmt: skip
    flows.append(Flow(T_HAIRPIN, 0, {"reg5": rid}, [("resubmit", T_COMMIT)]))
    for i, rule in enumerate(router["snat"]):
        net = ipaddress.IPv4Network(rule["source"], strict=False)
        pool = sorted(rule["pool"], key=ipaddress.IPv4Address)
        flows.append(Flow(T_HAIRPIN, 1000 - 10 * i, {**base, "ipv4_src": _masked(net)},
                          [("set", {"reg9": 1}), _commit(hzone, {"src": pool[0], "src_max": pool[-1]})], detail=i))  # fmt: skip
    for i, rule in enumerate(router["one_to_one"]):
        flows.append(Flow(T_SNAT, 2000, {**base, "ipv4_src": rule["private"]},
                          [_commit(zone, {"src": rule["public"]})], detail=i))  # fmt: skip
        flows.append(Flow(T_DNAT, 200, {**base, "ipv4_dst": rule["public"]},
                          [_commit(zone, {"dst": rule["private"]})], detail=i))  # fmt: skip
    for i, rule in enumerate(router["snat"]):
        net = ipaddress.IPv4Network(rule["source"], strict=False)
        pool = sorted(rule["pool"], key=ipaddress.IPv4Address)
        to: dict[str, Any] = {"src": pool[0], "src_max": pool[-1]}
        prio = 1000 - 10 * i  # in their order; added ones first (the app inserts them at the front)
        src = {**base, "ipv4_src": _masked(net)}
        # a control connection to an FTP port gets Open vSwitch's FTP helper
        for port in sorted(ftp_ports):
            flows.append(Flow(T_SNAT, prio + 5, {**src, "ip_proto": PROTO["tcp"], "tcp_dst": port},
                              [("set", {"reg9": 1}), _commit(zone, to, alg=True)], detail=i))  # fmt: skip
        if rule.get("ports"):
            lo, _, hi = str(rule["ports"]).partition("-")
            ported = {**to, "port": int(lo), "port_max": int(hi or lo)}
            for proto in ("tcp", "udp"):
                flows.append(Flow(T_SNAT, prio, {**src, "ip_proto": PROTO[proto]},
                                  [("set", {"reg9": 1}), _commit(zone, ported)], detail=i))  # fmt: skip
        flows.append(Flow(T_SNAT, prio - 1, src, [("set", {"reg9": 1}), _commit(zone, to)], detail=i))
        # Open vSwitch's conntrack lets a packet it could not translate (the pool exhausted) go
        # on untranslated, still +new: one that still has its tenant source after the commit
        # is dropped here, and counted.
        flows.append(Flow(T_COMMIT, 200, {**src, "reg9": 1}, [("drop", None)], K_NAT, i))
    return flows


def firewall(router: dict[str, Any]) -> list[Flow]:
    """The configured rules in order (priority falls with the position), on every packet."""
    rid = router["id"]
    tenant_side = router["transit"]["id"]
    flows = []
    rules = router["firewall"]
    for i, rule in enumerate(rules):
        prio = 1000 + len(rules) - i
        match: dict[str, Any] = {"reg5": rid, "eth_type": ETH_IP}
        direction = rule.get("direction", "any")
        for key, fld in (("src", "ipv4_src"), ("dst", "ipv4_dst")):
            if rule.get(key) not in (None, "any"):
                match[fld] = _masked(ipaddress.IPv4Network(rule[key], strict=False))
        match.update(_l4(rule.get("proto"), rule.get("dport"), "dst"))
        matches = [match]
        if direction == "out":
            matches = [{**match, "reg7": tenant_side}]
        elif direction == "in":
            matches = [{**match, "reg7": rp["id"]} for rp in router["ports"]]
        action = rule["action"]
        for m in matches:
            if action == "allow":
                flows.append(Flow(T_FW, prio, m, [("set", {"reg8": 1}), ("resubmit", T_STATE)], detail=i))
            elif action == "reject":
                flows.append(Flow(T_FW, prio, m, [("controller", None)], K_REJECT, i))
            else:
                flows.append(Flow(T_FW, prio, m, [("drop", None)], K_FIREWALL, i))
    return flows


def pipeline(cfg: dict[str, Any], ofports: dict[str, int]) -> list[Flow]:
    return switching(cfg, ofports) + routers(cfg)


def neighbour(router: dict[str, Any], rp: dict[str, Any], ip: str, mac: str) -> Flow:
    """A resolved next hop: the router's MAC as source, the neighbour's as destination, then
    switched in the egress instance as if it came from the router (record 0)."""
    return Flow(
        T_NEIGH,
        100,
        {"reg5": router["id"], "reg6": rp["id"], "reg3": int(ipaddress.IPv4Address(ip))},
        [("set", {"eth_src": rp["mac"]}), ("set", {"eth_dst": mac}), ("set", {"reg0": rp["instance"]}),
         ("set", {"reg1": 0}), ("set", {"reg2": 0}), ("resubmit", T_LEARNED), ("resubmit", T_DELIVER)],
        K_NEIGH,
    )  # fmt: skip


def actions(parser: Any, acts: list[tuple[str, Any]]) -> tuple[list[Any], int | None]:
    """(apply-actions, goto table) of a flow's actions as os-ken objects."""
    from os_ken.ofproto import nicira_ext, ofproto_v1_3

    out: list[Any] = []
    goto = None
    for name, arg in acts:
        if name == "drop":
            continue
        if name == "goto":
            goto = arg
        elif name == "set":
            ((key, value),) = arg.items()
            if key.startswith("reg"):
                out.append(parser.NXActionRegLoad2(dst=key, value=value))
            else:
                out.append(parser.OFPActionSetField(**arg))
        elif name == "push_vlan":
            out.append(parser.OFPActionPushVlan(0x8100))
        elif name == "pop_vlan":
            out.append(parser.OFPActionPopVlan())
        elif name == "output":
            port = ofproto_v1_3.OFPP_IN_PORT if arg == "in_port" else arg
            out.append(parser.OFPActionOutput(port))
        elif name == "controller":
            out.append(parser.OFPActionOutput(ofproto_v1_3.OFPP_CONTROLLER, ofproto_v1_3.OFPCML_NO_BUFFER))
        elif name == "resubmit":
            out.append(parser.NXActionResubmitTable(table_id=arg))
        elif name == "dec_ttl":
            out.append(parser.OFPActionDecNwTtl())
        elif name == "move_dst_to_reg3":
            out.append(parser.NXActionRegMove(src_field="ipv4_dst", dst_field="reg3", n_bits=32))
        elif name == "learn":
            specs = [
                parser.NXFlowSpecMatch(src=("reg0", 0), dst=("reg0", 0), n_bits=32),
                parser.NXFlowSpecMatch(src=("eth_src_nxm", 0), dst=("eth_dst_nxm", 0), n_bits=48),
                parser.NXFlowSpecLoad(src=("reg2", 0), dst=("reg1", 0), n_bits=32),
            ]
            out.append(parser.NXActionLearn(table_id=arg["table"], specs=specs, idle_timeout=arg["idle"],
                                            priority=100, cookie=arg["cookie"]))  # fmt: skip
        elif name == "ct":
            out.append(_ct(parser, nicira_ext, arg))
        else:
            raise ValueError(f"unknown action {name!r}")
    return out, goto


def _ct(parser: Any, nx: Any, arg: dict[str, Any]) -> Any:
    nested = []
    if "nat" in arg:
        spec = arg["nat"]
        flags = 0
        kw: dict[str, Any] = {}
        if "src" in spec:
            flags |= NAT_SRC
            kw["range_ipv4_min"], kw["range_ipv4_max"] = spec["src"], spec.get("src_max", spec["src"])
        elif "dst" in spec:
            flags |= NAT_DST
            kw["range_ipv4_min"] = kw["range_ipv4_max"] = spec["dst"]
        if "port" in spec:
            kw["range_proto_min"], kw["range_proto_max"] = spec["port"], spec.get("port_max", spec["port"])
        nested.append(parser.NXActionNAT(flags=flags, **kw))
    return parser.NXActionCT(
        flags=nx.NX_CT_F_COMMIT if arg.get("commit") else 0,
        zone_src="",
        zone_ofs_nbits=arg["zone"],
        recirc_table=arg.get("table", nx.NX_CT_RECIRC_NONE),
        alg=arg.get("alg", 0),
        actions=nested,
    )
