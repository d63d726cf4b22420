"""sr: the service router of a tenant logical router.

Where this sits: on the edge, between the transit switch and the uplink.
Outbound (from ``transit``): route to the provider next hop, then the
services that work on the routed packet.  Inbound (from ``l2switch``, frames
to the uplink router port's MAC): the services that must run before routing,
then route towards the tenant subnets through ``transit``.

Service order (DESIGN 1.2) is fixed by the hooks of ``routing.RouterStage``:
``before_route`` is where inbound DNAT goes (so the FIB sees the translated
destination), ``after_route`` is where the firewall and outbound SNAT go (so
the route was chosen on the tenant's own source).  Both are empty until the
NAT and firewall services are configured.

Exits: ``egress``, ``transit``, ``sr`` (its own ICMP errors); drops: see
``RouterStage.DROPS``.
"""

from __future__ import annotations

from gateway.stages.routing import RouterStage


class ServiceRouter(RouterStage):
    name = "sr"
