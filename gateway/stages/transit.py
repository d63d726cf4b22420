"""transit: the switch between a logical router's DR and its SR(s).

Where this sits: between ``dr`` and ``sr`` in both directions.  A router that
routes over the transit switch sets ``pkt.next_hop`` to the peer's transit
address; this stage finds who owns that address on that logical router's
transit switch (each has its own: two tenant routers may use one subnet).  When the owner runs in this
process (a single edge holding DR and SR), the packet goes straight to its
stage with no frame on any wire.

Drops: ``no-transit-peer``.
"""

from __future__ import annotations

from gateway.headers import ip_str
from gateway.packet import Packet
from gateway.stages.base import Stage


class Transit(Stage):
    name = "transit"
    DROPS = ("no-transit-peer",)
    NEXT = ("dr", "sr")

    def process(self, pkt: Packet) -> str:
        router = pkt.router
        owner = self.ctx.model.transit.get((router.name, pkt.next_hop)) if router is not None else None
        if owner is None:
            return self.drop(pkt, "no-transit-peer", ip_str(pkt.next_hop))
        pkt.router = owner.router
        pkt.rport = owner
        # From here on the packet is transit traffic for the peer, even if we built it.
        pkt.originated = False
        if pkt.trace is not None:
            pkt.note(self.name, f"to {owner.router.label} at {ip_str(owner.ip)} (local)")
        return owner.router.kind
