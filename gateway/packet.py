"""The packet as the pipeline carries it.

Where this sits: ``io.ports`` receives a frame and its VLAN (the kernel hands
802.1Q tags out of band, see ``io/ports.py``); the datapath wraps them in a
:class:`Packet` and the pipeline hands it from stage to stage.  ``buf`` is
always the *untagged* Ethernet frame: ``classify`` reads the tag from
``vlan`` and ``egress`` pushes the tag of each output.

Stages write their decisions into the slots (``instance``, ``router``,
``outputs`` ...) instead of returning objects, so that a forwarded packet
allocates nothing but itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.effects import Effects
    from gateway.model import Instance, Router, RouterPort
    from gateway.port import Port


class Packet:
    __slots__ = (
        "buf",
        "in_port",
        "vlan",
        "instance",
        "router",
        "rport",
        "next_hop",
        "outputs",
        "originated",
        "drop_reason",
        "trace",
        "conn",
        "conn_dir",
        "flow",
        "nat_rule",
        "fx",
        "frag_mtu",
    )

    def __init__(self, buf: bytearray, in_port: Port | None, vlan: int | None) -> None:
        self.buf = buf
        self.in_port = in_port
        self.vlan = vlan
        self.instance: Instance | None = None
        # The router (DR or SR) currently handling the packet and the router
        # port it entered on (source address of ICMP errors).
        self.router: Router | None = None
        self.rport: RouterPort | None = None
        self.next_hop = 0
        self.outputs: list[tuple[Port, int | None]] = []
        # True for packets the gateway built itself (ARP/ICMP replies and
        # errors): routers deliver them without the forwarding checks.
        self.originated = False
        self.drop_reason: str | None = None
        # A list of "stage: what it did" lines when this packet is traced.
        self.trace: list[str] | None = None
        # SR services: the connection this packet belongs to and its direction,
        # or for a new connection its original tuple and the DNAT rule it hit.
        self.conn: Any = None
        self.conn_dir = 0
        self.flow: Any = None
        self.nat_rule: Any = None
        # The cache's effects recorder (gateway/cache.py) on a slow-path packet
        # that may become a cache entry; None otherwise.
        self.fx: Effects | None = None
        # IPv4 past the next link's MTU without DF: egress sends it in fragments of this size.
        self.frag_mtu = 0

    def note(self, stage: str, text: str) -> None:
        """A line of this packet's trace.  Callers build ``text`` only under
        ``if pkt.trace is not None``: formatting addresses cost the slow path more
        than its lookups (a new connection's packets carried eight ``ip_str``s)."""
        if self.trace is not None:
            self.trace.append(f"{stage}: {text}")
