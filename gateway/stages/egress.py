"""egress: VLAN push per output and transmit.

Where this sits: the last stage.  ``pkt.outputs`` lists (port, VLAN) members
chosen by ``l2switch`` or a router; the frame goes out each one, tagged with
that member's VLAN (untagged when it is ``null``).  A member that is an EVI
link (another site) gets its own copy through ``evi_encap``.  The ingress tag was popped
on receive, so pop/push/swap are all "write the output's tag".

The last stage: no exit but ``done``; drops: ``no-output``.
"""

from __future__ import annotations

import struct
from typing import Any, Final

from gateway.headers import ETH_P_8021Q
from gateway.l3 import fragments
from gateway.packet import Packet
from gateway.stages.base import DONE, Context, Stage

_TAG: Final = struct.Struct("!HH")


class Egress(Stage):
    name = "egress"
    DROPS = ("no-output",)

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.fragmented = 0  # IPv4 datagrams sent in fragments (l3.fragments)
        self.fragments_sent = 0

    def process(self, pkt: Packet) -> str:
        outputs = pkt.outputs
        if not outputs:
            return self.drop(pkt, "no-output")
        buf = pkt.buf
        trace = pkt.trace
        if pkt.frag_mtu and len(buf) - 14 > pkt.frag_mtu:
            return self._fragmented(pkt, outputs)
        for port, vlan in outputs:
            if port.role == "evi":
                # A remote site: its own copy, encapsulated (head-end replication).
                if pkt.fx is not None:
                    pkt.fx.no_cache("flood")
                copy = Packet(bytearray(buf), pkt.in_port, pkt.vlan)
                copy.instance = pkt.instance
                copy.outputs = [(port, None)]
                copy.trace = trace
                self.ctx.emit(copy, "evi_encap")
                continue
            if vlan is None:
                port.send(buf)
            else:
                port.send(buf[:12] + _TAG.pack(ETH_P_8021Q, vlan) + buf[12:])
            if trace is not None:
                trace.append(f"egress: out {port.name} {'untagged' if vlan is None else f'vlan {vlan}'}")
        return DONE

    def _fragmented(self, pkt: Packet, outputs: list[Any]) -> str:
        """An IPv4 datagram too big for its next link, DF clear, or one the SR put together from
        fragments: its fragments go out instead."""
        frames = fragments(pkt.buf, pkt.frag_mtu)
        self.fragmented += 1
        self.fragments_sent += len(frames)
        for frame in frames:
            one = Packet(frame, pkt.in_port, pkt.vlan)
            one.instance, one.outputs, one.trace = pkt.instance, outputs, pkt.trace
            self.process(one)
        if pkt.trace is not None:
            pkt.note(self.name, f"{len(frames)} fragments of at most {pkt.frag_mtu} bytes")
        return DONE

    def counters(self) -> dict[str, Any]:
        return {**super().counters(), "fragmented": self.fragmented, "fragments_sent": self.fragments_sent}
