"""Mininet topologies of the testbed, one address plan each.

Public contract (DESIGN 2)::

    import topologies
    topologies.names()                  # ['edge-basic', ...]
    topologies.plan("edge-basic")       # the address plan, a dict
    with topologies.start("edge-basic", dut="reference") as lab:
        lab.net, lab.host("t1"), lab.gateway("edge1").show("fib")

Leaving the ``with`` block tears everything down, also on error.  Each
topology module declares ``NAME``, ``PLAN`` and ``TOPO`` (a Mininet ``Topo``
whose ``build`` only declares).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from topologies import bench, edge_basic, edge_ha

_MODULES: dict[str, ModuleType] = {m.NAME: m for m in (edge_basic, edge_ha, bench)}


class TopologyError(Exception):
    """A topology that cannot be named, started or torn down; the message is for the user."""


def names() -> list[str]:
    return sorted(_MODULES)


def module(name: str) -> ModuleType:
    try:
        return _MODULES[name]
    except KeyError:
        raise TopologyError(f"no topology {name!r}; topologies: {', '.join(names())}") from None


def plan(name: str) -> dict[str, Any]:
    """A copy of the topology's address plan (safe to modify)."""
    return copy.deepcopy(module(name).PLAN)


@contextmanager
def start(name: str, dut: str = "reference", **options: Any) -> Iterator[Any]:
    """Start topology ``name`` with gateway implementation ``dut``; tear down on exit."""
    from topologies.lab import Lab

    lab = Lab(module(name), dut, **options)
    try:
        lab.start()
        yield lab
    finally:
        lab.stop()
