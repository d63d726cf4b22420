"""Who answers for an SR address: takeover, release, yield, claim, gratuitous ARP.

Where this sits: in the datapath process, beside the pipeline.  The HA agent
(``agent.py``, a separate process) decides; it sends its decisions over the
unix-socket transport (``io/ipc.py``), whose message handlers are
:meth:`Ownership.handlers`.  This module changes the model's address
ownership (``Router.owned``, ``Router.yielded``), bumps the model's
``ownership_generation`` and the epoch (cached flows through an SR depend on
it), and tells the segment with gratuitous ARPs, which it hands to the
``egress`` stage.

- ``takeover``: answer for a failed peer's address from now on (a GARP says so;
  for an IPv6 address an unsolicited neighbour advertisement);
- ``release``: stop answering for it (the peer is back);
- ``yield`` / ``claim``: stop / start answering for one of our own addresses
  (HA without preemption starts with all of them yielded);
- ``announce``: a GARP for every own address we claim;
- ``status``: the agent's own state, shown by ``show ha``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from gateway.epoch import Epoch
from gateway.headers6 import ALL_NODES, NA_OVERRIDE, NA_ROUTER, addr_str, multicast_mac
from gateway.l3 import arp_request
from gateway.l3v6 import neighbour_advert
from gateway.model import Model, Router, RouterPort
from gateway.packet import Packet

Handler = Callable[[dict[str, Any], bytes], "dict[str, Any] | None"]


def _address(text: Any) -> int:
    """An address of either family from a message (IPv6 ones are past 32 bits, see
    ``headers6.addr_str``), or ValueError naming what was wrong."""
    if not isinstance(text, str):
        raise ValueError(f"'ip' must be an IPv4 or IPv6 address, got {text!r}")
    try:
        return int(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError(f"'ip' must be an IPv4 or IPv6 address, got {text!r}") from None


def _v6(ip: int) -> bool:
    return ip > 0xFFFFFFFF


class Ownership:
    def __init__(self, model: Model, epoch: Epoch, run: Callable[[Packet, str], None]) -> None:
        self.model = model
        self.epoch = epoch
        self.run = run  # pipeline.run: a GARP goes straight to egress
        self.agent_status: dict[str, Any] = {}
        self.takeovers = 0
        self.releases = 0
        self.garps = 0
        self.unsolicited_nas = 0

    def _changed(self) -> None:
        self.model.ownership_generation += 1
        self.epoch.bump()

    def _sr(self, name: Any) -> Router:
        return self.model.router(name, "sr")

    # -- decisions -------------------------------------------------------------------------
    def takeover(self, router_name: Any, ip_text: Any) -> dict[str, Any]:
        """Answer for ``ip`` from now on and tell the segment with a gratuitous ARP."""
        router = self._sr(router_name)
        ip = _address(ip_text)
        v6 = _v6(ip)
        rport = router.connected_port6(ip) if v6 else router.connected_port(ip)
        if rport is None:
            raise ValueError(f"{ip_text} is on no segment of {router.label}")
        if ip == (rport.ip6 if v6 else rport.ip):
            raise ValueError(f"{ip_text} is {router.label}'s own address")
        fresh = ip not in router.owned
        router.owned[ip] = rport
        if v6:
            router.local_ips6[ip] = rport
            rport.instance.update_groups()  # type: ignore[union-attr]  # (its solicitations reach us)
        elif router.services is None or ip not in router.services.nat.publics:
            router.local_ips[ip] = rport  # (a public NAT address is the services', not ours)
        if fresh:
            self.takeovers += 1
            self._changed()
        self.garp(rport, ip)
        return {"router": router.label, "ip": ip_text, "port": rport.label, "new": fresh}

    def release(self, router_name: Any, ip_text: Any) -> dict[str, Any]:
        router = self._sr(router_name)
        ip = _address(ip_text)
        held = router.owned.pop(ip, None)
        if held is not None:
            (router.local_ips6 if _v6(ip) else router.local_ips).pop(ip, None)
            if _v6(ip) and held.instance is not None:
                held.instance.update_groups()
            self.releases += 1
            self._changed()
        return {"router": router.label, "ip": ip_text, "released": held is not None}

    def claim(self, router_name: Any, ip_text: Any, claim: bool) -> dict[str, Any]:
        """Stop (yield) or start (claim, with a gratuitous ARP) answering for one of our own addresses."""
        router = self._sr(router_name)
        ip = _address(ip_text)
        rport = next((p for p in router.ports if ip in (p.ip, p.ip6) and p.instance is not None), None)
        if rport is None and ip in router.own_publics():
            rport = router.connected_port(ip)  # one of our public NAT addresses
        if rport is None:
            raise ValueError(f"{ip_text} is not an address of {router.label}")
        if claim:
            router.yielded.discard(ip)
            self.garp(rport, ip)
        else:
            router.yielded.add(ip)
        self._changed()
        return {"router": router.label, "ip": ip_text, "claimed": claim}

    def yield_all(self, router_name: str) -> None:
        """Claim none of the SR's own addresses (HA without preemption, at start)."""
        router = self._sr(router_name)
        router.yielded.update(p.ip for p in router.ports if p.instance is not None)
        router.yielded.update(p.ip6 for p in router.ports if p.instance is not None and p.ip6 is not None)
        router.yielded.update(router.own_publics())
        self._changed()

    def garp(self, rport: RouterPort, ip: int) -> None:
        """A gratuitous ARP request (sender = target = ip) flooded on the port's segment; for
        an IPv6 address an unsolicited neighbour advertisement to all-nodes, override set."""
        if _v6(ip):
            frame = neighbour_advert(rport.mac, ip, multicast_mac(ALL_NODES), ALL_NODES, ip, NA_ROUTER | NA_OVERRIDE)
            self.unsolicited_nas += 1
        else:
            frame = arp_request(rport.mac, ip, ip)
            self.garps += 1
        pkt = Packet(frame, None, None)
        pkt.outputs = rport.instance.members  # type: ignore[union-attr]
        self.run(pkt, "egress")

    def announce(self) -> None:
        """A gratuitous ARP for every SR port address and public NAT address we claim, so
        neighbours (and a peer holding our addresses) learn where they are now."""
        for router in self.model.routers:
            if router.kind == "sr":
                for rport in router.ports:
                    if rport.instance is not None and rport.ip not in router.yielded:
                        self.garp(rport, rport.ip)
                    if rport.instance is not None and rport.ip6 is not None and rport.ip6 not in router.yielded:
                        self.garp(rport, rport.ip6)
                for ip in sorted(router.own_publics() - router.yielded):  # our public NAT addresses
                    up = router.connected_port(ip)
                    if up is not None:
                        self.garp(up, ip)

    # -- the agent's messages (io/ipc.py) ----------------------------------------------------
    def handlers(self) -> dict[str, Handler]:
        def ok(result: Any) -> dict[str, Any]:
            return {"type": "ok", "result": result}

        def status(meta: dict[str, Any], _payload: bytes) -> None:
            value = meta.get("status") or {}
            if not isinstance(value, dict):
                raise ValueError(f"'status' must be an object, got {type(value).__name__}")
            self.agent_status = value

        def announce(_meta: dict[str, Any], _payload: bytes) -> None:
            self.announce()

        return {
            "takeover": lambda m, _p: ok(self.takeover(m["router"], m["ip"])),
            "release": lambda m, _p: ok(self.release(m["router"], m["ip"])),
            "yield": lambda m, _p: ok(self.claim(m["router"], m["ip"], False)),
            "claim": lambda m, _p: ok(self.claim(m["router"], m["ip"], True)),
            "announce": announce,
            "status": status,
        }

    def show(self) -> dict[str, Any]:
        srs = [r for r in self.model.routers if r.kind == "sr"]
        return {
            "owned": {r.label: sorted(addr_str(ip) for ip in r.owned) for r in srs},
            "yielded": {r.label: sorted(addr_str(ip) for ip in r.yielded) for r in srs},
            "agent": self.agent_status,
            "takeovers": self.takeovers,
            "releases": self.releases,
            "garps": self.garps,
            "unsolicited_nas": self.unsolicited_nas,
            "ownership_generation": self.model.ownership_generation,
        }
