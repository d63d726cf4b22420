"""The SR's centralized services: connection tracking, NAT, stateful firewall.

Where this sits: one :class:`SrServices` (``sr.py``) per service router that
has NAT or firewall configuration; the ``sr`` stage asks it before routing
(conntrack lookup, DNAT) and after routing (firewall, SNAT, new connections).
``conntrack.py``, ``nat.py`` and ``firewall.py`` hold the tables and rules;
``rules.py`` the rule records the config builds.
"""

from __future__ import annotations

from gateway.services.sr import DROPS, SrServices, Verdict

__all__ = ["DROPS", "SrServices", "Verdict"]
