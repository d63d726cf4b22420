"""edge-basic: one edge gateway, two tenant VLANs, a provider host.

::

    t1 (vlan 10, web) ─┐
    t2 (vlan 10, web) ─┤                                   uplink 203.0.113.0/24
    t3 (vlan 20, app) ─┼─ s1 (OVS, access ports) ══trunk══ edge1 ── ext1 ── ext2
    probe (trunk)     ─┘                                    │      (provider   198.51.100.0/24
                                                            │       router)
                                                            t4 (access, untagged, web)

- ``s1`` is an OVS userspace bridge: t1..t3 sit on access ports of their
  VLAN; the port towards ``edge1`` and the ``probe`` port are trunks carrying
  every VLAN, so ``probe`` can put any tagged frame on the wire.
- ``edge1`` is the gateway: instance ``web`` = (trunk, VLAN 10), ``app`` =
  (trunk, VLAN 20), ``provider`` = (uplink, untagged); ``t4`` on the
  untagged ``access`` port is also in ``web``, so t1 <-> t4 is switched by
  the gateway itself (VLAN 10 popped one way, pushed the other).  Logical router ``t1``
  (TLR id 1): DR ports 172.16.10.1 and 172.16.20.1, SR uplink 203.0.113.1.
- ``ext1`` is the provider's router (Linux forwarding), ``ext2`` a host
  behind it, so traceroute from a tenant crosses the NAT with ICMP errors
  from a router beyond it.  The provider has no route to the tenant
  prefixes: the SR's NAT is the only way in and out.
- NAT on the SR: tenants (172.16.0.0/16) -> pool 203.0.113.64-65; port
  forward 203.0.113.80 tcp/8080 -> t3:80 and udp/5353 -> t3:5353; 1:1
  203.0.113.90 <-> t2.  Firewall: telnet out is rejected; unsolicited inbound
  is dropped unless NAT forwards it.

Files: ``plan.py`` (hosts, switch, the gateway's intent), ``topo.py`` (the
Mininet declaration), ``<dut>/<node>.*`` (what each DUT driver renders from
the intent, kept for reading; a unit test keeps them in step).
"""

from __future__ import annotations

from topologies.edge_basic.plan import NAME, PLAN
from topologies.edge_basic.topo import EdgeBasicTopo

TOPO = EdgeBasicTopo

__all__ = ["NAME", "PLAN", "TOPO"]
