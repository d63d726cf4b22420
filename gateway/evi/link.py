"""An EVI link: the port that stands for one remote site (``gateway/evi``).

A module of its own, compiled with the per-packet modules (``native.py``): a
link is a member of a packet's outputs and of a MAC entry, where a port is.
"""

from __future__ import annotations

from typing import Any

from gateway.headers import ip_str
from gateway.port import Port


class EviLink(Port):
    """The EVI link to one remote edge: a member of the instances both sites extend.

    A port (``port.Port``) with no NIC (``io`` is None): it stands where a port
    stands in a member (port, VLAN) and in a MAC entry, with a port's name,
    role and counters, and frames for it are encapsulated by ``evi_encap``.
    ``valid`` turns False when the link is removed, which invalidates the
    cache entries through it.
    """

    __slots__ = ("site", "address", "netids", "origin", "valid", "mtu_drops")

    def __init__(self, site: int, address: int, mtu: int, netids: frozenset[int], origin: str) -> None:
        super().__init__(f"evi-{ip_str(address)}", "", "evi", mtu)  # mtu: the smaller of the two sites' core MTUs
        self.site = site
        self.address = address
        self.netids = netids
        self.origin = origin  # "static" or "discovery"
        self.valid = True
        self.mtu_drops = 0

    def send(self, frame: bytes | bytearray) -> None:
        # Never called: egress hands frames for a link to evi_encap.  A frame that got here
        # anyway is lost and counted, never raised into the loop.
        self.tx_errors += 1

    def counters(self) -> dict[str, int]:
        return {"rx": self.rx, "tx": self.tx, "tx_errors": self.tx_errors, "mtu_drops": self.mtu_drops}

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "site": self.site,
            "address": ip_str(self.address),
            "mtu": self.mtu,
            "network_ids": sorted(self.netids),
            "origin": self.origin,
            **self.counters(),
        }
