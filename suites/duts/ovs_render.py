"""Open vSwitch + os-ken as the gateway: the plan's intent rendered into the app's config.

Where this sits: ``ovs.py`` (the driver) writes what :func:`render` returns
as JSON for the os-ken app (``ovsken/``), which turns it into OpenFlow; this
module runs nothing, so it is tested without root.

How the intent maps onto Open vSwitch (userspace datapath, one bridge
``<node>-ovs`` holding every port of the gateway node):

- a (port, VLAN) record is a *record id*; an instance an *instance id*: the
  classifier sets both in registers, so the same VLAN on two ports can be two
  instances, and a frame of no record is dropped (and counted);
- MAC learning per instance is OVS's ``learn`` action (instance, MAC) ->
  record; unknown destinations and broadcasts flood the instance's other
  records, re-tagged per record;
- the logical router is two routers, as the design has it: the DR (the
  tenant segments) and the SR (the uplink, NAT, firewall), joined by the
  transit subnet.  Each router decrements the TTL, so a north-south packet
  crosses two hops; router ARP, ping and ICMP errors are answered by the app
  (packet-in, packet-out), next hops are resolved by ARP from the app;
- NAT and the stateful firewall are OVS's connection tracker on the SR, one
  zone per SR: ``ct(nat)`` translates known connections both ways (ICMP
  errors of them as related), a new one from the tenants is committed with
  ``nat(src=pool)`` (or the 1:1 address), one from the uplink only when a
  port forward or 1:1 rule takes it (``nat(dst=...)``), else dropped.  The
  configured firewall rules run first on every packet, in order;
- no HA (an OVS bridge has no failover of its own: n/a), no EVI, no
  services processes.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from suites.duts.linux_render import publics


def bridge(node: str) -> str:
    return f"{node}-ovs"[:15]


def _net(cidr: str) -> tuple[str, int]:
    iface = ipaddress.IPv4Interface(cidr)
    return str(iface.ip), iface.network.prefixlen


def render(plan: dict[str, Any], gateway: str) -> dict[str, Any]:
    """The os-ken app's config for the gateway on node ``gateway`` (see the module docstring)."""
    gw = plan["gateways"][gateway]
    for router in gw.get("routers", []):
        if router.get("ha"):
            raise ValueError(f"{gateway}: router {router['name']} has HA; the ovs DUT has no HA (ha.* is n/a)")
    if gw.get("evi"):
        raise ValueError(f"{gateway}: the ovs DUT does not extend instances (no EVI)")
    ports = gw["ports"]
    instances = {name: i + 1 for i, name in enumerate(gw["instances"])}
    records = []
    for inst, recs in gw["instances"].items():
        for rec in recs:
            records.append(
                {
                    "id": len(records) + 1,
                    "ifname": ports[rec["port"]]["ifname"],
                    "vlan": rec["vlan"],
                    "instance": instances[inst],
                }
            )
    uplinks = {name for name, p in ports.items() if p.get("role") == "uplink"}
    uplink_instances = {instances[i] for i, recs in gw["instances"].items() if any(r["port"] in uplinks for r in recs)}
    routers: list[dict[str, Any]] = []
    rport_ids = iter(range(1, 10_000))
    for lr in gw.get("routers", []):
        dr_id, sr_id = len(routers) + 1, len(routers) + 2
        transit = lr.get("transit") or {}
        plen = ipaddress.IPv4Network(transit["subnet"]).prefixlen if transit else 30
        dr_ports = [_rport(next(rport_ids), rp, instances) for rp in (lr.get("dr") or {}).get("ports", [])]
        sr_ports = [_rport(next(rport_ids), rp, instances) for rp in (lr.get("sr") or {}).get("ports", [])]
        dr_transit = {"id": next(rport_ids), "instance": None, "ip": transit.get("dr"), "plen": plen, "mac": None}
        sr_transit = {"id": next(rport_ids), "instance": None, "ip": transit.get("sr"), "plen": plen, "mac": None}
        tenant_nets = [f"{p['ip']}/{p['plen']}" for p in dr_ports]
        # IPv4 only: this DUT declares no ipv6.* capability.
        dr_routes = [_route(r) for r in (lr.get("dr") or {}).get("routes", []) if ":" not in r["prefix"]]
        if not any(r["prefix"] == "0.0.0.0/0" for r in dr_routes):
            dr_routes.append({"prefix": "0.0.0.0/0", "peer": sr_id, "via_port": sr_transit["id"]})
        sr_routes = [_route(r) for r in (lr.get("sr") or {}).get("routes", []) if ":" not in r["prefix"]]
        sr_routes += [{"prefix": str(ipaddress.IPv4Network(n, strict=False)), "peer": dr_id, "via_port": dr_transit["id"]}
                      for n in tenant_nets]  # fmt: skip
        nat = lr.get("nat") or {}
        routers.append(
            {"id": dr_id, "name": f"{lr['name']}/dr", "kind": "dr", "ports": dr_ports, "transit": dr_transit,
             "routes": dr_routes}
        )  # fmt: skip
        routers.append(
            {
                "id": sr_id,
                "name": f"{lr['name']}/sr",
                "logical": lr["name"],
                "kind": "sr",
                "zone": sr_id,
                "ports": sr_ports,
                "transit": sr_transit,
                "routes": sr_routes,
                "uplink_instances": sorted(uplink_instances & {p["instance"] for p in sr_ports}),
                "publics": publics(lr),
                "snat": list(nat.get("snat", [])),
                "dnat": list(nat.get("dnat", [])),
                "one_to_one": list(nat.get("one_to_one", [])),
                "firewall": list(lr.get("firewall", [])),
                "ftp_ports": list((gw.get("ftp_alg") or {}).get("ports", [])),
            }
        )
    return {
        "node": gateway,
        "bridge": bridge(gateway),
        "ifnames": [p["ifname"] for p in ports.values()],
        "records": records,
        "instances": instances,
        "routers": routers,
    }


def _rport(rid: int, rp: dict[str, Any], instances: dict[str, int]) -> dict[str, Any]:
    ip, plen = _net(rp["ip"])
    return {"id": rid, "instance": instances[rp["instance"]], "ip": ip, "plen": plen, "mac": rp["mac"]}


def _route(route: dict[str, Any]) -> dict[str, Any]:
    via = route["via"]
    return {"prefix": str(ipaddress.IPv4Network(route["prefix"])), "via": via[0] if isinstance(via, list) else via}
