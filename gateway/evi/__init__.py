"""EVI between sites: the edge's side of extending service instances over an IP core.

Where this sits: built with the model (``model.build``) when the config has an
``evi`` section.  :class:`Evi` holds what the data-plane stages
(``stages/evi.py``) and ``l2switch`` read: the tunnel endpoint (a router that
only terminates, on the core port), the extended instances by network id, and
the EVI links to the other sites.  An :class:`EviLink` is a member of the
instances it carries, like a (port, VLAN) of a local trunk: the MAC table
learns remote MACs against it, and frames for it go to ``evi_encap`` instead
of a NIC.

Wire format (``GRE``): RFC 7637 (NVGRE) — GRE with only the key bit set,
protocol 0x6558 (Transparent Ethernet Bridging), the key holding the 24-bit
network id and an 8-bit flow id (0 here: no entropy is generated).
"""

from __future__ import annotations

import struct
from typing import Any, Final

from gateway.epoch import Epoch
from gateway.evi.link import EviLink
from gateway.headers import ip_str

IPPROTO_GRE: Final = 47
EVI_PORT: Final = 3801  # UDP: the EVI control protocol between edges (discovery, MAC advertisement)
GRE_FLAGS_KEY: Final = 0x2000  # K bit only: no checksum, no sequence number, version 0
ETH_P_TEB: Final = 0x6558
GRE = struct.Struct("!HHI")  # flags+version, protocol, key
OUTER_IP: Final = 20
OVERHEAD = OUTER_IP + GRE.size  # on top of the inner frame; the outer Ethernet header is the core's


class Evi:
    """This site's EVI state: endpoint, extended instances, links."""

    def __init__(self, site: int, router: Any, rport: Any, mtu: int, epoch: Epoch) -> None:
        self.site = site
        self.router = router  # the tunnel endpoint (model.Router, forwards nothing)
        self.rport = rport  # its port on the core segment
        self.address = rport.ip
        self.mtu = mtu
        self.epoch = epoch
        self.netids: dict[int, Any] = {}  # network id -> model.Instance
        self.links: dict[int, EviLink] = {}  # remote tunnel address -> link
        self.removed = 0
        # ARP flood suppression: (network id, IP) -> [MAC, last seen] of remote hosts, learned
        # from the ARP that came through the tunnels; an ARP request for one is answered here.
        self.arp_suppression = True
        self.arp_timeout = 300.0
        self.arp_capacity = 65536
        self.arp: dict[tuple[int, int], list[Any]] = {}
        self.arp_learned = 0
        self.arp_refused = 0
        self.arp_suppressed = 0

    def extend(self, instance: Any, netid: int, flood: list[bytes]) -> None:
        instance.netid = netid
        instance.flood_macs = frozenset(flood)
        self.netids[netid] = instance

    def add_link(self, site: int, address: int, mtu: int | None, netids: frozenset[int] | None, origin: str) -> EviLink:
        """Add (or replace) the link to the edge at ``address``; it carries the network ids
        both sites extend (all of ours when the remote's are not known)."""
        ours = frozenset(self.netids)
        carried = ours if netids is None else ours & netids
        link = EviLink(site, address, min(self.mtu, mtu or self.mtu), carried, origin)
        old = self.links.get(address)
        if old is not None:
            self._unlink(old)
        self.links[address] = link
        for netid in carried:
            self.netids[netid].links.append(link)
        self.epoch.bump()
        return link

    def remove_link(self, address: int) -> EviLink | None:
        link = self.links.pop(address, None)
        if link is not None:
            self._unlink(link)
            self.removed += 1
            self.epoch.bump()
        return link

    def _unlink(self, link: EviLink) -> None:
        link.valid = False
        for inst in self.netids.values():
            if link in inst.links:
                inst.links.remove(link)

    def learn_arp(self, netid: int, ip: int, mac: bytes, now: float) -> None:
        entry = self.arp.get((netid, ip))
        if entry is not None:
            entry[0] = mac
            entry[1] = now
        elif len(self.arp) < self.arp_capacity:
            self.arp[(netid, ip)] = [mac, now]
            self.arp_learned += 1
        else:
            self.arp_refused += 1

    def arp_answer(self, netid: int, ip: int, now: float) -> bytes | None:
        """The MAC of remote host ``ip`` if it is known and fresh (suppression on)."""
        if not self.arp_suppression:
            return None
        entry = self.arp.get((netid, ip))
        if entry is None or now - entry[1] > self.arp_timeout:
            return None
        return bytes(entry[0])

    def age(self, now: float) -> None:
        stale = [k for k, (_mac, seen) in self.arp.items() if now - seen > self.arp_timeout]
        for key in stale:
            del self.arp[key]

    def show(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "address": ip_str(self.address),
            "mtu": self.mtu,
            "instances": {inst.name: netid for netid, inst in sorted(self.netids.items())},
            "links": [link.to_dict() for link in sorted(self.links.values(), key=lambda ln: ln.address)],
            "links_removed": self.removed,
            "arp_suppression": {
                "enabled": self.arp_suppression,
                "entries": len(self.arp),
                "learned": self.arp_learned,
                "refused": self.arp_refused,
                "answered": self.arp_suppressed,
            },
        }
