"""DUT drivers: how a topology hosts one gateway implementation.

A driver (``base.DutDriver``) gives the Mininet node class for the gateway
position, starts and stops the gateway software there, and returns a handle
whose ``show(what)`` reports state.  Suites ask ``handle.capabilities`` before
they test internals (cache counters, traces) that only some gateways expose.
"""

from __future__ import annotations

from suites.duts.base import DutDriver
from suites.duts.reference import ReferenceDriver

_DRIVERS: dict[str, type[DutDriver]] = {ReferenceDriver.name: ReferenceDriver}


def names() -> list[str]:
    return sorted(_DRIVERS)


def get(name: str) -> type[DutDriver]:
    from topologies import TopologyError

    try:
        return _DRIVERS[name]
    except KeyError:
        raise TopologyError(f"no DUT driver {name!r}; drivers: {', '.join(names())}") from None
