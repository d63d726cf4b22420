"""Questions the suites ask of a topology's address plan."""

from __future__ import annotations

import ipaddress
from typing import Any


def addr(plan: dict[str, Any], host: str) -> str:
    """A host's address without the prefix length."""
    return str(plan["hosts"][host]["ip"].split("/")[0])


def router_port(plan: dict[str, Any], instance: str, gateway: str = "edge1") -> dict[str, Any]:
    """The router port (ip, mac) on ``instance`` in the intent of ``gateway``."""
    for router in plan["gateways"][gateway].get("routers", []):
        for half in ("dr", "sr"):
            for port in (router.get(half) or {}).get("ports", []):
                if port["instance"] == instance:
                    return {"ip": port["ip"].split("/")[0], "mac": port["mac"], "router": router["name"], "half": half}
    raise KeyError(f"no router port on instance {instance!r} of {gateway}")


def addr6(plan: dict[str, Any], host: str) -> str:
    """A dual-stack host's IPv6 address without the prefix length."""
    return str(plan["hosts"][host]["ip6"].split("/")[0])


def link_local(mac: str) -> str:
    """The link-local address a router port (or host) has from its MAC (modified EUI-64)."""
    b = [int(x, 16) for x in mac.split(":")]
    b[0] ^= 0x02
    iid = bytes([b[0], b[1], b[2], 0xFF, 0xFE, b[3], b[4], b[5]])
    return str(ipaddress.IPv6Address((0xFE80 << 112) | int.from_bytes(iid, "big")))
