"""scale: many tenants, each a logical router of its own, on one or more edges.

::

    h0x0 .. h0x{H-1}   (VLAN 100, tenant t0) ─┐
    ...                                       ├─ s1 (OVS) ══trunks══ edge1..edgeE ── s2 (OVS) ── ext1
    h{T-1}x0 ..        (VLAN 100+T-1)        ─┘

- Parameters: ``tenants`` (T), ``hosts`` per tenant (H), ``edges`` (E);
  ``topologies.start("scale", plan=plan_for(64, 4))`` or
  ``edgelab bench topology --tenants 64 --hosts 4``.  The default plan is
  4 tenants x 2 hosts on one edge (the Robot suite's).
- Tenant i: segment 10.<i//256>.<i%256>.0/24 on VLAN 100+i, its own DR and SR,
  SNAT to an address of its own on the provider segment 100.64.0.0/16, where
  ext1 (100.64.0.1) answers.  Tenant i lives on edge i % E.

Files: ``plan.py`` (``plan_for``: hosts, switches, the gateways' intent),
``topo.py`` (the Mininet declaration).
"""

from __future__ import annotations

from topologies.scale.plan import NAME, PLAN, plan_for
from topologies.scale.topo import ScaleTopo

TOPO = ScaleTopo

__all__ = ["NAME", "PLAN", "TOPO", "plan_for"]
