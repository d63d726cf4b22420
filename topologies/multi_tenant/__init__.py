"""multi-tenant: one edge gateway, two tenant routers with overlapping subnets.

::

    a1 (vlan 10, blue-web) ─┐
    a2 (vlan 11, blue-app) ─┤                              uplink 203.0.113.0/24
    b1 (vlan 20, red-web)  ─┼─ s1 (OVS) ══trunk══ edge1 ── ext1 ── ext2
    b2 (vlan 21, red-app)  ─┘                              (provider router,  198.51.100.0/24
                                                            BGP with each SR)

- Tenants ``blue`` (TLR 1) and ``red`` (TLR 2) use the *same* subnets
  (10.0.1.0/24, 10.0.2.0/24), gateway addresses and transit subnet: a1 and
  b1 are both 10.0.1.11, a2 and b2 both 10.0.2.12.  Only the (port, VLAN)
  record, so the instance, says whose a packet is.
- Each tenant's SR has its own uplink address (203.0.113.2, .3), NAT pool
  (203.0.113.64, .72, with a port forward tcp/8080 to its own 10.0.1.11:80)
  and, in the reference gateway, its own TLR namespace with FRR: each peers
  with ``ext1`` (AS 64500) and announces its pool; ``ext1`` announces
  192.0.2.0/24.  No SR has a static route to the provider: a tenant reaches
  192.0.2.0/24 only by the route its SR learned.
- blue's quota of connections is 2000, red's 10000 (the SYN-flood test).

Files: ``plan.py`` (hosts, switch, the gateway's intent), ``topo.py`` (the
Mininet declaration).
"""

from __future__ import annotations

from topologies.multi_tenant.plan import NAME, PLAN
from topologies.multi_tenant.topo import MultiTenantTopo

TOPO = MultiTenantTopo

__all__ = ["NAME", "PLAN", "TOPO"]
