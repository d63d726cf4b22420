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

``dut`` is a driver class or the name of one.  Names are looked up among the
drivers registered with :func:`register_dut` and the ``edgelab.duts`` entry
points of installed packages (edgelab's own drivers live in ``suites/duts``
and are registered that way): topologies never import the suites.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

from topologies import bench, bench_evi, edge_basic, edge_ha, evi_dci, multi_tenant, scale

_MODULES: dict[str, ModuleType] = {
    m.NAME: m for m in (edge_basic, edge_ha, evi_dci, multi_tenant, scale, bench, bench_evi)
}


class TopologyError(Exception):
    """A topology that cannot be named, started or torn down; the message is for the user."""


_DUTS: dict[str, type] = {}


def names() -> list[str]:
    return sorted(_MODULES)


def register_dut(name: str, driver: type) -> None:
    """Make ``driver`` (a DUT driver class, see ``suites/duts/base.py``) known as ``name``."""
    _DUTS[name] = driver


def dut_names() -> list[str]:
    return sorted({*_DUTS, *(ep.name for ep in entry_points(group="edgelab.duts"))})


def dut_driver(dut: str | type) -> type:
    """The driver class for ``dut`` (a class is returned as it is)."""
    if not isinstance(dut, str):
        return dut
    if dut in _DUTS:
        return _DUTS[dut]
    for ep in entry_points(group="edgelab.duts"):
        if ep.name == dut:
            driver: type = ep.load()
            _DUTS[dut] = driver
            return driver
    raise TopologyError(
        f"no DUT driver {dut!r}; drivers: {', '.join(dut_names()) or 'none'}"
        " (is edgelab installed? run 'make bootstrap')"
    )


def module(name: str) -> ModuleType:
    try:
        return _MODULES[name]
    except KeyError:
        raise TopologyError(f"no topology {name!r}; topologies: {', '.join(names())}") from None


def plan(name: str) -> dict[str, Any]:
    """A copy of the topology's address plan (safe to modify)."""
    return copy.deepcopy(module(name).PLAN)


@contextmanager
def start(name: str, dut: str | type = "reference", **options: Any) -> Iterator[Any]:
    """Start topology ``name`` with gateway implementation ``dut``; tear down on exit."""
    from topologies.lab import Lab

    lab = Lab(module(name), dut, **options)
    try:
        lab.start()
        yield lab
    finally:
        lab.stop()
