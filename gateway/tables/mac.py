"""MAC learning table, one address space per EVI service instance.

Where this sits: ``l2switch`` learns source MACs and looks up destinations;
the routers (``dr``, ``sr``) look up where a resolved next hop lives.  An
entry is (instance, MAC) -> (port, VLAN); the same MAC in two instances is two
entries, which is what keeps instances isolated.  Aging, replacement and
flush are ``aging.py``'s.

Bounded: at most ``capacity`` MACs in all and ``per_instance`` in any one
instance.  A new MAC beyond either is not learned (counted in ``refused``,
per instance): frames to it are flooded inside its instance as for any
unknown MAC, and the MACs already known keep working, so a tenant flooding
source MACs cannot push the other tenants' hosts out of the table.
"""

from __future__ import annotations

from typing import Any, Protocol

from gateway.epoch import Epoch
from gateway.headers import mac_str
from gateway.tables.aging import AgingEntry, AgingTable

Member = tuple[Any, "int | None"]  # (model.Port, VLAN): where a frame goes out


class Segment(Protocol):
    """What the table needs of an instance (``model.Instance``)."""

    name: str
    members: list[Member]


class MacEntry(AgingEntry):
    """One learned MAC.  A move replaces the entry, so ``valid`` going False
    tells a cache entry that depended on it that it is stale."""

    __slots__ = ("port", "vlan", "member")

    def __init__(self, port: Any, vlan: int | None, seen: float) -> None:
        super().__init__(seen)
        self.port = port
        self.vlan = vlan
        self.member: Member = (port, vlan)


class MacTable(AgingTable[tuple[Segment, bytes], MacEntry]):
    def __init__(self, aging: float, epoch: Epoch, capacity: int = 65536, per_instance: int = 8192) -> None:
        super().__init__(aging, epoch)
        self.moves = 0
        self.capacity = capacity
        self.per_instance = per_instance
        self.counts: dict[str, int] = {}  # instance name -> MACs learned in it
        self.refused: dict[str, int] = {}  # instance name -> MACs not learned (a limit was reached)

    @property
    def aging(self) -> float:
        return self.timeout

    def learn(self, instance: Segment, mac: bytes, port: Any, vlan: int | None, now: float) -> MacEntry | None:
        """Record where ``mac`` was seen; returns its (possibly new) entry, None when a limit
        kept it from being learned."""
        key = (instance, mac)
        entry = self._entries.get(key)
        if entry is None:
            name = instance.name
            held = self.counts.get(name, 0)
            if held >= self.per_instance or len(self._entries) >= self.capacity:
                self.refused[name] = self.refused.get(name, 0) + 1
                return None
            self.counts[name] = held + 1
            return self._replace(key, MacEntry(port, vlan, now))
        if entry.port is not port or entry.vlan != vlan:
            self.moves += 1
            return self._replace(key, MacEntry(port, vlan, now))
        entry.seen = now
        return entry

    def age(self, now: float) -> int:
        n = super().age(now)
        if n:
            self._recount()
        return n

    def flush(self) -> None:
        super().flush()
        self._recount()

    def _recount(self) -> None:
        counts: dict[str, int] = {}
        for inst, _mac in self._entries:
            counts[inst.name] = counts.get(inst.name, 0) + 1
        self.counts = counts

    def entries(self) -> list[tuple[tuple[Segment, bytes], MacEntry]]:
        return list(self._entries.items())

    def forget(self, instance: Segment, mac: bytes, port: Any) -> bool:
        """Remove ``mac`` from ``instance`` if it is learned on ``port`` (a withdrawal)."""
        entry = self._entries.get((instance, mac))
        if entry is None or entry.port is not port:
            return False
        del self._entries[(instance, mac)]
        entry.valid = False
        self._changed()
        self._recount()
        return True

    def forget_port(self, port: Any) -> int:
        """Remove every MAC learned on ``port`` (an EVI link that went away)."""
        gone = [k for k, e in self._entries.items() if e.port is port]
        for key in gone:
            self._entries.pop(key).valid = False
        if gone:
            self._changed()
            self._recount()
        return len(gone)

    def lookup(self, instance: Segment, mac: bytes) -> MacEntry | None:
        return self._entries.get((instance, mac))

    def resolve(self, instance: Segment, mac: bytes) -> list[Member]:
        """Where a frame to ``mac`` in ``instance`` goes: the learned member, else a flood."""
        entry = self._entries.get((instance, mac))
        if entry is not None:
            return [entry.member]
        return instance.members

    def dump(self, now: float, offset: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        """The entries in (instance, MAC) order, ``limit`` of them from ``offset`` (a page:
        only those are formatted)."""
        ordered = sorted(self._entries.items(), key=lambda kv: (kv[0][0].name, kv[0][1]))
        page = ordered[offset : None if limit is None else offset + limit]
        return [
            {
                "instance": inst.name,
                "mac": mac_str(mac),
                "port": e.port.name,
                "vlan": e.vlan,
                "age": round(now - e.seen, 1),
            }
            for (inst, mac), e in page
        ]
