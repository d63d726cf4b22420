"""DUT drivers: how a topology hosts one gateway implementation.

A driver (``base.DutDriver``) gives the Mininet node class for the gateway
position, starts and stops the gateway software there, and returns a
``base.GatewayHandle``: the whole contract the suites use (alive, normalized
counters, runtime changes, failure injection, logs, capabilities).  Drivers
are registered as ``edgelab.duts`` entry points (``pyproject.toml``), so
``topologies.start(name, dut="reference")`` finds them without importing
the suites.
"""

from __future__ import annotations

from suites.duts.base import CAPABILITIES, DutDriver


def names() -> list[str]:
    import topologies

    return topologies.dut_names()


def get(name: str) -> type[DutDriver]:
    import topologies

    return topologies.dut_driver(name)


def capabilities(name: str) -> frozenset[str]:
    return frozenset(get(name).capabilities)


__all__ = ["CAPABILITIES", "DutDriver", "capabilities", "get", "names"]
