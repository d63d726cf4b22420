"""Questions the suites ask of a topology's address plan."""

from __future__ import annotations

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
