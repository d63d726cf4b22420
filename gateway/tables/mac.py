"""MAC learning table, one address space per EVI service instance.

Where this sits: ``l2switch`` learns source MACs and looks up destinations;
the routers (``dr``, ``sr``) look up where a resolved next hop lives.  An
entry is (instance, MAC) -> (port, VLAN); the same MAC in two instances is two
entries, which is what keeps instances isolated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.cache import EPOCH
from gateway.headers import mac_str

if TYPE_CHECKING:
    from gateway.model import Instance, Port

Member = tuple["Port", "int | None"]


class MacEntry:
    """One learned MAC.  A move replaces the entry, so ``valid`` going False
    tells a cache entry that depended on it that it is stale."""

    __slots__ = ("port", "vlan", "seen", "member", "valid")

    def __init__(self, port: Port, vlan: int | None, seen: float) -> None:
        self.port = port
        self.vlan = vlan
        self.seen = seen
        self.member: Member = (port, vlan)
        self.valid = True


class MacTable:
    def __init__(self, aging: float) -> None:
        self.aging = aging
        self._entries: dict[tuple[Instance, bytes], MacEntry] = {}
        self.generation = 0
        self.moves = 0

    def learn(self, instance: Instance, mac: bytes, port: Port, vlan: int | None, now: float) -> MacEntry:
        """Record where ``mac`` was seen; returns its (possibly new) entry."""
        key = (instance, mac)
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = MacEntry(port, vlan, now)
            self.generation += 1
            EPOCH.bump()
        elif entry.port is not port or entry.vlan != vlan:
            entry.valid = False
            entry = self._entries[key] = MacEntry(port, vlan, now)
            self.moves += 1
            self.generation += 1
            EPOCH.bump()
        else:
            entry.seen = now
        return entry

    def lookup(self, instance: Instance, mac: bytes) -> MacEntry | None:
        return self._entries.get((instance, mac))

    def resolve(self, instance: Instance, mac: bytes) -> list[Member]:
        """Where a frame to ``mac`` in ``instance`` goes: the learned member, else a flood."""
        entry = self._entries.get((instance, mac))
        if entry is not None:
            return [entry.member]
        return instance.members

    def age(self, now: float) -> int:
        stale = [k for k, e in self._entries.items() if now - e.seen > self.aging]
        for key in stale:
            self._entries.pop(key).valid = False
        if stale:
            self.generation += 1
            EPOCH.bump()
        return len(stale)

    def flush(self) -> None:
        for entry in self._entries.values():
            entry.valid = False
        self._entries.clear()
        self.generation += 1
        EPOCH.bump()

    def dump(self, now: float) -> list[dict[str, Any]]:
        return [
            {
                "instance": inst.name,
                "mac": mac_str(mac),
                "port": e.port.name,
                "vlan": e.vlan,
                "age": round(now - e.seen, 1),
            }
            for (inst, mac), e in sorted(self._entries.items(), key=lambda kv: (kv[0][0].name, kv[0][1]))
        ]

    def __len__(self) -> int:
        return len(self._entries)
