"""evi-dci: three data-centre sites joined by EVI over an IP core.

::

    h1a (v100) ─┐                                ┌─ edge2  ══┐       ┌─ h2a (v100)
    h1b (v200) ─┴ sw1 ══ edge1 ── core ──────────┤           sw2 ─┴─ h2b (v200)
    x1 ── sw1x ══════════╯        │  10.255.N.0/24└─ edge2b ══┘
                                  edge3 ══ sw3 ─┬─ h3a (v100)
                            (MTU 1400; 1600 elsewhere)   └─ h3b (v200)

- VLAN 100 (instance ``v100``, 10.100.0.0/24) is extended between the sites:
  each edge encapsulates its frames in MAC-in-GRE (network id 5100) to the
  other two edges; the hosts share one L2 domain.
- VLAN 200 (``v200``, 10.200.0.0/24 at every site) stays local to each site.
- ``x1`` is on VLAN 100 too, but on another port of edge1: another instance,
  never extended.
- Site 2 has two edges (``edge2``, 10.255.2.1, and ``edge2b``, 10.255.22.1):
  one is the appointed forwarder of VLAN 100, the other learns and stands by,
  and takes it over when the first fails.
- ``core`` is the IP core: Linux forwarding between the three edge subnets
  10.255.1-3.0/24, MTU 1600 to sites 1 and 2 (a full tenant frame
  and the tunnel's 28 bytes fit), 1400 to site 3.
- ``sw1``-``sw3`` and ``sw1x`` are OVS userspace bridges: access ports for the
  hosts, a trunk to the edge.
"""

from __future__ import annotations

from topologies.evi_dci.plan import NAME, PLAN
from topologies.evi_dci.topo import EviDciTopo

TOPO = EviDciTopo

__all__ = ["NAME", "PLAN", "TOPO"]
