"""A port of the gateway: a NIC with a transport (``io.Transport``) behind it.

Where this sits: the model (``model.py``) holds the node's ports by name; a member
(port, VLAN) of a service instance, a MAC entry and a packet's outputs name one.  An
EVI link to another site (``evi.EviLink``) is a port with no NIC: egress hands its frames
to ``evi_encap``.  A module of its own so that both can build on it.
"""

from __future__ import annotations

from typing import Any

from gateway.io import Transport


class Port:
    __slots__ = ("name", "ifname", "role", "io", "rx", "tx", "tx_errors", "errors", "last_error", "mirror", "mtu")

    def __init__(self, name: str, ifname: str, role: str, mtu: int | None = None) -> None:
        self.name = name
        self.ifname = ifname
        self.role = role
        # The largest IP packet it sends, if configured: a routed IPv6 packet past it is
        # answered with ICMPv6 packet too big (routers never fragment IPv6).
        self.mtu = mtu
        self.io: Transport | None = None
        self.rx = 0
        self.tx = 0
        self.tx_errors = 0
        self.errors = 0  # socket errors (interface down or gone)
        self.last_error = 0
        # monitor.Monitor while a mirror session watches this port (receive side; the transmit
        # side is a wrapper around ``io``, so an unwatched port's send costs nothing extra).
        self.mirror: Any = None

    def send(self, frame: bytes | bytearray) -> None:
        try:
            self.io.send(frame)  # type: ignore[union-attr]
            self.tx += 1
        except OSError:
            # A full socket buffer or a link going down costs this frame, not the daemon.
            self.tx_errors += 1

    def counters(self) -> dict[str, int]:
        """The port's counters and its transport's (``io.Transport.counters``)."""
        io = self.io.counters() if self.io is not None else {"rx_dropped": 0, "tx_dropped": 0, "rx_resyncs": 0}
        return {"rx": self.rx, "tx": self.tx, "tx_errors": self.tx_errors, "errors": self.errors, **io}

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ifname": self.ifname,
            "role": self.role,
            **self.counters(),
        }
