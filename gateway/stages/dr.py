"""dr: the distributed router of a tenant logical router (TLR).

Where this sits: after ``l2switch`` for frames sent to a DR router port's
MAC, and after ``transit`` for traffic the SR sends back towards tenants.  It
routes east-west between the tenant's logical switches with the TLR's own
FIB, answers ARP and ping for its port addresses, sends ICMP errors, and hands
everything it has no closer route for to the SR over the transit switch (its
default route).  The walk itself is in ``routing.py``.

Exits: ``egress``, ``transit``, ``dr`` (its own ICMP errors re-enter it);
drops: ``RouterStage.DROPS``.
"""

from __future__ import annotations

from gateway.stages.routing import RouterStage


class DistributedRouter(RouterStage):
    name = "dr"
    NEXT = ("egress", "transit", "dr")
