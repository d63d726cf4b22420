"""edge-ha: a DR node, a transit switch, two SR edges, a provider router.

::

    t1 (web) ──┐                              ┌── edge1 (SR, active) ──┐
               hv1 (DR) ══ st (transit) ══════┤                        ├══ sp ── pr ── ext1
    t2 (app) ──┘         169.254.0.0/28       └── edge2 (SR, standby) ─┘  203.0.113.0/24   198.51.100.0/24

- ``hv1`` runs the DR of logical router ``t1``: tenants on two logical
  switches, default route to the SR transit address 169.254.0.2.
- ``edge1`` (169.254.0.2, uplink 203.0.113.1) and ``edge2`` (169.254.0.3,
  uplink 203.0.113.2) run the SRs; each runs an HA agent with a BFD session
  to the other (100 ms x 3) over the transit switch, through its datapath.
- ``pr`` is the provider router: Linux forwarding, FRR (zebra + staticd)
  holding the route to the tenant prefixes via 203.0.113.1.
  When edge1 fails, edge2 takes over 169.254.0.2 and 203.0.113.1 with
  gratuitous ARPs: no route changes anywhere.
- ``st`` and ``sp`` are OVS userspace bridges (plain learning switches).
"""

from __future__ import annotations

from topologies.edge_ha.plan import NAME, PLAN
from topologies.edge_ha.topo import EdgeHaTopo

TOPO = EdgeHaTopo

__all__ = ["NAME", "PLAN", "TOPO"]
