"""The invalidation epoch: how many times anything a cache entry may depend on changed.

Where this sits: below the tables, the services and the cache.  The datapath
owns one :class:`Epoch` and hands it to every table and service it builds;
each of them bumps it where a change happens (a FIB route, a MAC or ARP entry,
NAT or firewall rules, a conntrack entry's release, SR address ownership).
The cache reads it: an entry remembers the epoch at which its dependencies
were last checked, and a hit in the same epoch skips the checks.  Two
datapaths in one process (the cache-on/cache-off property test) have two
epochs and never see each other's changes.
"""

from __future__ import annotations


class Epoch:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def bump(self) -> None:
        self.value += 1
