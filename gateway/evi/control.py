"""What the EVI control process may ask of the datapath (IPC message handlers).

Where this sits: the datapath registers :meth:`EviControl.handlers` with its
unix-socket transport (``io/ipc.py``) when the config has an ``evi`` section.
The control process (``evi/agent.py``) sends:

- ``evi-links`` ``{links: [{site, address, mtu, netids}]}``: the sites
  discovery found.  Links of origin ``discovery`` not listed are removed (and
  the MACs behind them forgotten); static links stay.
- ``evi-macs``: answered with this site's MACs in the extended instances (those
  learned on local ports), for its MAC advertisements.
- ``evi-install`` ``{address, add: [[netid, mac], ...], move: [...], withdraw: [...]}``:
  MACs another site advertised, installed behind its link (the MAC table's
  bounds apply: beyond them a MAC is not installed, and counted).  ``add``
  never takes a MAC from a local port (the frames say it is here, and the
  process may not have read that yet); ``move`` does: the process decided by
  sequence number that the MAC has moved to that site.
- ``evi-af`` ``{netids: [...]}``: the extended instances this edge is the
  appointed forwarder of (a site with two edges splits them); the others stop
  forwarding.  An instance this edge takes over is announced to the site: a
  RARP frame from each MAC known behind a link, so the site's switches learn
  where the remote hosts are now.
- ``evi-status`` ``{status: {...}}``: the process's own state, for ``show evi``.

Each raises ValueError on a malformed message: the transport answers it with
an error and counts it; nothing is applied halfway.
"""

from __future__ import annotations

import time
from typing import Any

from gateway.evi import Evi
from gateway.headers import ip_int, ip_str, mac_bytes, mac_str

MAX_LINKS = 256
MAX_MACS = 1024  # per evi-install message


def _address(value: Any, what: str) -> int:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be an IPv4 address string, got {value!r}")
    try:
        return ip_int(value)
    except (ValueError, OSError):
        raise ValueError(f"{what} {value!r} is not an IPv4 address") from None


def _int(value: Any, what: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{what} must be an integer {low}-{high}, got {value!r}")
    return value


# A RARP request (EtherType 0x8035) from a MAC, as hypervisors announce a moved guest.
def rarp_announce(mac: bytes) -> bytearray:
    return bytearray(
        b"\xff" * 6 + mac + b"\x80\x35" + bytes.fromhex("0001080006040003") + mac + bytes(4) + mac + bytes(4)
    )


class EviControl:
    def __init__(self, evi: Evi, macs: Any, emit: Any = None) -> None:
        self.evi = evi
        self.macs = macs
        # emit(frame, outputs): send a frame the datapath built out of (port, VLAN) members.
        self.emit = emit
        self.announced = 0
        self.agent_status: dict[str, Any] = {}
        self.installed = 0
        self.withdrawn = 0
        self.refused = 0
        self.kept_local = 0

    def set_links(self, meta: dict[str, Any], _payload: bytes) -> dict[str, Any]:
        links = meta.get("links")
        if not isinstance(links, list) or len(links) > MAX_LINKS:
            raise ValueError(f"'links' must be a list of at most {MAX_LINKS} sites")
        wanted: dict[int, tuple[int, int, frozenset[int]]] = {}
        for i, link in enumerate(links):
            if not isinstance(link, dict):
                raise ValueError(f"links[{i}] must be an object")
            address = _address(link.get("address"), f"links[{i}].address")
            site = _int(link.get("site"), f"links[{i}].site", 1, 65535)
            mtu = _int(link.get("mtu"), f"links[{i}].mtu", 576, 9000)
            netids = link.get("netids")
            if not isinstance(netids, list) or len(netids) > 4096:
                raise ValueError(f"links[{i}].netids must be a list of network ids")
            ids = frozenset(_int(n, f"links[{i}].netids[]", 1, (1 << 24) - 1) for n in netids)
            if address != self.evi.address and site != self.evi.site:  # never a link within the site
                wanted[address] = (site, mtu, ids)
        evi = self.evi
        changed = []
        for address, link in list(evi.links.items()):
            if link.origin == "discovery" and address not in wanted:
                self.remove_link(address)
                changed.append(f"-{ip_str(address)}")
        for address, (site, mtu, ids) in wanted.items():
            old = evi.links.get(address)
            if old is not None and old.origin == "static":
                continue  # configured by hand: it stays as configured
            if (
                old is not None
                and (old.site, old.netids) == (site, ids & frozenset(evi.netids))
                and old.mtu == min(evi.mtu, mtu)
            ):
                continue
            if old is not None:
                self.macs.forget_port(old)
            evi.add_link(site, address, mtu, ids, "discovery")
            changed.append(f"+{ip_str(address)}")
        return {"type": "ok", "result": {"changed": changed, "links": len(evi.links)}}

    def remove_link(self, address: int) -> None:
        """Remove the EVI link to ``address`` and the MACs learned behind it."""
        link = self.evi.remove_link(address)
        if link is not None:
            self.macs.forget_port(link)

    def local_macs(self, _meta: dict[str, Any], _payload: bytes) -> dict[str, Any]:
        rows = [
            [inst.netid, mac_str(mac)]
            for (inst, mac), entry in self.macs.entries()
            if inst.netid is not None and entry.port.role != "evi"
        ]
        return {"type": "evi-macs", "macs": rows}

    def install(self, meta: dict[str, Any], _payload: bytes) -> dict[str, Any]:
        address = _address(meta.get("address"), "address")
        link = self.evi.links.get(address)
        if link is None:
            raise ValueError(f"no EVI link to {ip_str(address)}")
        parsed = {}
        for field in ("add", "move", "withdraw"):
            rows = meta.get(field, [])
            if not isinstance(rows, list) or len(rows) > MAX_MACS:
                raise ValueError(f"'{field}' must be a list of at most {MAX_MACS} [netid, mac] pairs")
            out = []
            for row in rows:
                if not isinstance(row, list) or len(row) != 2:
                    raise ValueError(f"'{field}': {row!r} is not a [netid, mac] pair")
                inst = self.evi.netids.get(_int(row[0], "netid", 1, (1 << 24) - 1))
                if not isinstance(row[1], str):
                    raise ValueError(f"'{field}': {row[1]!r} is not a MAC")
                mac = mac_bytes(row[1])
                if inst is not None and row[0] in link.netids and not mac[0] & 1:
                    out.append((inst, mac))
            parsed[field] = out
        now = time.monotonic()
        added = 0
        for inst, mac in parsed["add"]:
            entry = self.macs.lookup(inst, mac)
            if entry is not None and entry.port.role != "evi":
                self.kept_local += 1
                continue
            if self.macs.learn(inst, mac, link, None, now) is None:
                self.refused += 1
            else:
                added += 1
        for inst, mac in parsed["move"]:
            if self.macs.learn(inst, mac, link, None, now) is None:
                self.refused += 1
            else:
                added += 1
        gone = sum(self.macs.forget(inst, mac, link) for inst, mac in parsed["withdraw"])
        self.installed += added
        self.withdrawn += gone
        return {"type": "ok", "result": {"added": added, "withdrawn": gone}}

    def appointed(self, meta: dict[str, Any], _payload: bytes) -> dict[str, Any]:
        netids = meta.get("netids")
        if not isinstance(netids, list) or len(netids) > 4096:
            raise ValueError("'netids' must be a list of network ids")
        mine = {_int(n, "netids[]", 1, (1 << 24) - 1) for n in netids}
        taken: list[str] = []
        given: list[str] = []
        for netid, inst in self.evi.netids.items():
            forwarding = netid in mine
            if forwarding == inst.forwarding:
                continue
            inst.forwarding = forwarding
            (taken if forwarding else given).append(inst.name)
            if forwarding and self.emit is not None:
                for (minst, mac), entry in self.macs.entries():
                    if minst is inst and entry.port.role == "evi":
                        self.emit(rarp_announce(mac), list(inst.members))
                        self.announced += 1
        if taken or given:
            self.evi.epoch.bump()
        return {"type": "ok", "result": {"taken": taken, "given": given}}

    def status(self, meta: dict[str, Any], _payload: bytes) -> None:
        value = meta.get("status")
        if not isinstance(value, dict):
            raise ValueError("'status' must be an object")
        self.agent_status = value

    def handlers(self) -> dict[str, Any]:
        return {
            "evi-links": self.set_links,
            "evi-macs": self.local_macs,
            "evi-install": self.install,
            "evi-status": self.status,
            "evi-af": self.appointed,
        }

    def show(self) -> dict[str, Any]:
        return {
            "installed": self.installed,
            "withdrawn": self.withdrawn,
            "refused": self.refused,
            "kept_local": self.kept_local,
            "announced": self.announced,
            "forwarding": {inst.name: inst.forwarding for inst in self.evi.netids.values()},
            "agent": self.agent_status,
        }
