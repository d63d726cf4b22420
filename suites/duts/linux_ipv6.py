"""IPv6 on the Linux gateway: the plan's dual-stack intent in Linux's own terms.

Where this sits: ``linux_render.render`` puts :func:`render6`'s result under
``ipv6``; the driver (``linux.py``) calls :func:`start6` after the IPv4 part
is up and :func:`stop6` when it stops.  As for IPv4, the logical router is the
node's one routing table.

- a router port's ``ip6`` is an address of its instance's bridge (no duplicate
  address detection: the plan's addresses are unique), and the kernel forwards
  IPv6 (``net.ipv6.conf.all.forwarding``); the kernel answers neighbour
  discovery for them; an HA SR's own addresses are keepalived's instead
  (``vips6``: moved with its IPv4 ones, ``linux_render.vrrp``), and routes name
  their bridge (``onlink``: the next hop's segment may hold no address of this
  node just now);
- router advertisements on the DR's tenant segments are radvd's: every 10 s
  at most, router lifetime 1800 s, the segment's prefix on-link, no
  autoconfiguration (the plan gives the addresses), as the intent says;
- IPv6 is not translated: the firewall is an nftables ``ip6`` table beside the
  ``ip`` one, its forward chain the same as IPv4's without NAT: the
  configured rules that apply to IPv6 (those naming no IPv4 address or
  protocol), then established/related (ICMPv6 errors about a connection are
  related: packet too big reaches the sender), then tenant-initiated traffic;
  the rest is dropped and counted (``fw``).
"""

from __future__ import annotations

import ipaddress
import subprocess
from pathlib import Path
from typing import Any

from suites.duts.linux_fw import fw_chains, fw_rule
from topologies.nodes import stop_process

TABLE6 = "edgelab6"
RA_INTERVAL = 10  # seconds, at most, between unsolicited router advertisements
RA_LIFETIME = 1800


def _bridge(instance: str) -> str:
    return f"br-{instance}"[:15]


def render6(gw: dict[str, Any], uplink: str | None) -> dict[str, Any] | None:
    """The IPv6 part of the Linux gateway on one node, None where the intent has no IPv6."""
    addresses: dict[str, list[str]] = {}
    vips6: dict[str, list[str]] = {}  # an HA SR's own addresses: keepalived's (linux_render.vrrp)
    ra: dict[str, str] = {}
    routes: list[tuple[str, str]] = []
    for router in gw.get("routers", []):
        transit = (router.get("transit") or {}).get("instance")
        for half in ("dr", "sr"):
            for rp in (router.get(half) or {}).get("ports", []):
                if rp.get("ip6"):
                    br = _bridge(rp["instance"])
                    addresses.setdefault(br, [])
                    (vips6 if half == "sr" and router.get("ha") else addresses).setdefault(br, []).append(rp["ip6"])
                    if half == "dr" and rp["instance"] != transit:
                        ra[br] = str(ipaddress.IPv6Interface(rp["ip6"]).network)
            for route in (router.get(half) or {}).get("routes", []):
                if ":" in route["prefix"]:
                    routes.append((route["prefix"], route["via"]))
        tr = router.get("transit") or {}
        if transit and tr.get("subnet6"):
            # A real transit segment with IPv6: this node's half has its address on it, and a DR
            # sends the rest to its SR there (the first peer).
            plen = ipaddress.IPv6Network(tr["subnet6"]).prefixlen
            half_addr = tr.get("sr6") if "sr" in router else tr.get("dr6")
            if half_addr:
                ha_sr = "sr" in router and router.get("ha")
                addresses.setdefault(_bridge(transit), [])
                (vips6 if ha_sr else addresses).setdefault(_bridge(transit), []).append(f"{half_addr}/{plen}")
            if "sr" not in router and "dr" in router and not any(p == "::/0" for p, _ in routes):
                peers = tr.get("peers6") or [tr.get("sr6")]
                if peers and peers[0]:
                    routes.append(("::/0", peers[0]))
    if not addresses:
        return None
    rules = [r for router in gw.get("routers", []) for r in router.get("firewall", [])]
    # Each route out the bridge whose segment holds its next hop ("onlink": an HA SR's own
    # address there may be on its peer just now).
    nets = {br: ipaddress.IPv6Interface(a).network for br, addrs in (*addresses.items(), *vips6.items()) for a in addrs}
    routed = [
        (p, via, next((br for br, n in nets.items() if ipaddress.IPv6Address(via) in n), None)) for p, via in routes
    ]
    return {"addresses": addresses, "vips6": vips6, "routes": routed, "ra": ra, "nft": _nft6(rules, uplink)}


def _nft6(rules: list[dict[str, Any]], uplink: str | None) -> str:
    if uplink is None:
        return f"table ip6 {TABLE6} {{\n  counter fw {{ }}\n}}\n"
    fw = [r for r in (fw_rule(rule, uplink, 6) for rule in rules) if r is not None]
    return (
        "\n".join(
            [
                f"table ip6 {TABLE6} {{",
                '  counter fw { comment "firewall drops and rejects (IPv6)" }',
                *fw_chains(fw, uplink, dnat=False),
                "}",
            ]
        )
        + "\n"
    )


def radvd_conf(ra: dict[str, str]) -> str:
    out = []
    for br, prefix in sorted(ra.items()):
        out += [
            f"interface {br} {{",
            "  AdvSendAdvert on;",
            f"  MinRtrAdvInterval {RA_INTERVAL // 3};",
            f"  MaxRtrAdvInterval {RA_INTERVAL};",
            f"  AdvDefaultLifetime {RA_LIFETIME};",
            f"  prefix {prefix} {{ AdvOnLink on; AdvAutonomous off; }};",
            "};",
        ]
    return "\n".join(out) + "\n"


def start6(node: Any, spec6: dict[str, Any], rundir: Path, name: str, run: Any) -> subprocess.Popen[bytes] | None:
    """Addresses, forwarding, routes, the ip6 table; radvd where the DR advertises (its process)."""
    run(node, ["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=0", "net.ipv6.conf.all.forwarding=1"])
    for br, addrs in spec6["addresses"].items():
        # (accept_dad first: the link-local address made when IPv6 comes on is then no tentative
        # one for a second, which held neighbour discovery, and the node's IPv6, up that long)
        run(node, ["sysctl", "-qw", f"net.ipv6.conf.{br}.accept_dad=0", f"net.ipv6.conf.{br}.disable_ipv6=0"])
        for addr in addrs:
            run(node, ["ip", "-6", "addr", "add", addr, "dev", br, "nodad"])
    for prefix, via, br in spec6["routes"]:
        run(node, ["ip", "-6", "route", "replace", prefix, "via", via, *(["dev", br, "onlink"] if br else [])])
    path = rundir / f"{name}-linux6.nft"
    path.write_text(spec6["nft"])
    run(node, ["nft", "-f", str(path)])
    if not spec6["ra"]:
        return None
    conf = rundir / f"{name}-radvd.conf"
    conf.write_text(radvd_conf(spec6["ra"]))
    log = open(rundir / f"{name}-radvd.log", "ab")  # noqa: SIM115 - the process writes it until it stops
    return node.popen(  # type: ignore[no-any-return]
        ["radvd", "-n", "-C", str(conf), "-p", str(rundir / f"{name}-radvd.pid"), "-m", "stderr", "-u", "root"],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def stop6(node: Any, radvd: subprocess.Popen[bytes] | None, run: Any) -> None:
    stop_process(radvd)
    run(node, ["nft", "delete", "table", "ip6", TABLE6], check=False)
    run(node, ["sysctl", "-qw", "net.ipv6.conf.all.forwarding=0"], check=False)
