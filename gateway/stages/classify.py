"""classify: (port, VLAN) -> EVI service instance.

Where this sits: the first stage; every received frame starts here.  The
record table maps (port, VLAN) to an instance; an untagged frame matches the
record with VLAN ``null``.  No record: the frame belongs to no instance and is
dropped (``no-service-instance``), so a VLAN that is not configured on a port
never leaks into another instance.

Exits and drops: ``NEXT`` and ``DROPS`` below.
"""

from __future__ import annotations

from gateway.headers import ETH_LEN
from gateway.packet import Packet
from gateway.stages.base import Stage


class Classify(Stage):
    name = "classify"
    DROPS = ("runt", "no-service-instance")
    NEXT = ("l2switch",)

    def process(self, pkt: Packet) -> str:
        if len(pkt.buf) < ETH_LEN:
            return self.drop(pkt, "runt", f"{len(pkt.buf)} bytes")
        inst = self.ctx.model.records.get((pkt.in_port.name, pkt.vlan))  # type: ignore[union-attr]
        if inst is None:
            tag = "untagged" if pkt.vlan is None else f"vlan {pkt.vlan}"
            return self.drop(pkt, "no-service-instance", f"port {pkt.in_port.name} {tag}")  # type: ignore[union-attr]
        pkt.instance = inst
        if pkt.trace is not None:
            tag = "untagged" if pkt.vlan is None else f"vlan {pkt.vlan}"
            if pkt.trace is not None:
                pkt.note(self.name, f"port {pkt.in_port.name} {tag} -> instance {inst.name}")  # type: ignore[union-attr]
        return "l2switch"
