"""What the MAC and ARP tables share: entries that age out and are replaced, not edited.

Where this sits: the base of ``tables/mac.py`` and ``tables/arp.py``.  An
entry has ``seen`` (last refreshed) and ``valid``; a cache entry that used it
depends on ``valid``, so replacing an entry (a MAC move, a new MAC for an IP)
or removing it (aging, flush) sets ``valid`` False, bumps the table's
``generation`` and the datapath's epoch, and the cache drops what relied on it.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from gateway.epoch import Epoch

K = TypeVar("K")
E = TypeVar("E", bound="AgingEntry")


class AgingEntry:
    __slots__ = ("seen", "valid")

    def __init__(self, seen: float) -> None:
        self.seen = seen
        self.valid = True


class AgingTable(Generic[K, E]):
    def __init__(self, timeout: float, epoch: Epoch) -> None:
        self.timeout = timeout
        self.epoch = epoch
        self._entries: dict[K, E] = {}
        self.generation = 0

    def _changed(self) -> None:
        self.generation += 1
        self.epoch.bump()

    def _replace(self, key: K, entry: E) -> E:
        """Put ``entry`` at ``key``; an entry it replaces becomes invalid.

        Only a replacement moves the epoch: no cache entry can depend on a key that had no
        entry (a frame to an unknown MAC or an unresolved address is flooded or queued,
        never cached), so hosts being learned do not make every hit re-check its
        dependencies."""
        old = self._entries.get(key)
        self._entries[key] = entry
        if old is not None:
            old.valid = False
            self._changed()
        else:
            self.generation += 1
        return entry

    def age(self, now: float) -> int:
        """Remove the entries not refreshed within the timeout."""
        timeout = self.timeout
        stale = [k for k, e in self._entries.items() if now - e.seen > timeout]
        for key in stale:
            self._entries.pop(key).valid = False
        if stale:
            self._changed()
        return len(stale)

    def flush(self) -> None:
        for entry in self._entries.values():
            entry.valid = False
        self._entries.clear()
        self._changed()

    def __len__(self) -> int:
        return len(self._entries)

    def items(self) -> list[tuple[K, E]]:
        return list(self._entries.items())

    def describe(self) -> dict[str, Any]:
        return {"entries": len(self._entries), "generation": self.generation}
