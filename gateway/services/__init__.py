"""The SR's centralized services: connection tracking, NAT, stateful firewall.

Where this sits: one :class:`SrServices` per service router that has NAT or
firewall configuration; the ``sr`` stage calls it before routing (conntrack
lookup, DNAT) and after routing (firewall, SNAT, new connections).
"""

from __future__ import annotations

from typing import Any

from gateway.services.conntrack import ConnTable
from gateway.services.firewall import Firewall
from gateway.services.nat import Nat
from gateway.services.rules import FirewallConfig, NatConfig


class SrServices:
    def __init__(self, nat: NatConfig, firewall: FirewallConfig) -> None:
        self.ct = ConnTable(nat.max_sessions, nat.timeouts)
        self.nat = Nat(nat)
        self.fw = Firewall(firewall)
        self.ct.on_release = self.nat.release
        self.related = 0
        self.revalidated = 0

    def show_nat(self, now: float) -> dict[str, Any]:
        sessions = [c.to_dict(now, self.ct.timeouts) for c in self.ct.conns() if c.translated]
        return {
            "sessions": sessions,
            "session_count": len(sessions),
            "table": {
                "entries": len(self.ct),
                "limit": self.ct.limit,
                "created": self.ct.created,
                "expired": self.ct.expired,
            },
            "pools": self.nat.pool_usage(),
            "rules": self.nat.rules(),
            "public_addresses": self.nat.public_list(),
        }

    def show_conntrack(self, now: float) -> dict[str, Any]:
        return {
            "entries": self.ct.dump(now),
            "count": len(self.ct),
            "limit": self.ct.limit,
            "timeouts": self.ct.timeouts,
            "related": self.related,
            "revalidated": self.revalidated,
        }
