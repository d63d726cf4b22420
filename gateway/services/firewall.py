"""Stateful firewall: ordered rules for new connections, a default policy.

Where this sits: the ``sr`` stage asks :meth:`Firewall.evaluate` for the first
packet of every connection (after DNAT, so rules see the tenant address);
packets of an established connection skip the rules.  A rule change bumps
``generation``; each connection remembers the generation it was checked at and
is checked again on its next packet, so a new rule takes effect on the very
next packet of flows that already run, not only on new ones.

The first matching rule is found by tuple-space search (``classifier.py``):
one dict probe per rule shape, not a scan of the rules.

Default policy (no rule matched): tenant-initiated traffic is allowed;
unsolicited inbound traffic is dropped unless NAT forwards it (DNAT, 1:1).
"""

from __future__ import annotations

from typing import Any

from gateway.epoch import Epoch
from gateway.services.classifier import Classifier
from gateway.services.rules import FirewallConfig, FirewallRule

ALLOW, DROP, REJECT = "allow", "drop", "reject"


class Firewall:
    def __init__(self, cfg: FirewallConfig, epoch: Epoch) -> None:
        self.epoch = epoch
        self.rules: list[FirewallRule] = list(cfg.rules)
        self.classifier = Classifier(self.rules)
        self.classifier6 = Classifier(self.rules, bits=128)
        self.generation = 1
        self.default_hits = {"out-allow": 0, "in-forwarded": 0, "in-unsolicited": 0}

    def evaluate(
        self, inbound: bool, proto: int, src: int, dst: int, dport: int, forwarded: bool, count: bool = True
    ) -> tuple[str, FirewallRule | None]:
        # The family is the address's: an IPv6 address the gateway forwards is past 32 bits.
        classifier = self.classifier if src <= 0xFFFFFFFF else self.classifier6
        rule = classifier.first(inbound, proto, src, dst, dport)
        if rule is not None:
            if count:
                rule.hits += 1
            return rule.action, rule
        if not inbound:
            key, action = "out-allow", ALLOW
        elif forwarded:
            key, action = "in-forwarded", ALLOW
        else:
            key, action = "in-unsolicited", DROP
        if count:
            self.default_hits[key] += 1
        return action, None

    def add(self, rule: FirewallRule, position: int | None = None) -> None:
        if any(r.name == rule.name for r in self.rules):
            raise ValueError(f"a firewall rule named {rule.name!r} exists already")
        self.rules.insert(len(self.rules) if position is None else position, rule)
        self._changed()

    def remove(self, name: str) -> FirewallRule:
        for rule in self.rules:
            if rule.name == name:
                self.rules.remove(rule)
                rule.active = False
                self._changed()
                return rule
        raise KeyError(name)

    def replace(self, rules: list[FirewallRule]) -> None:
        """A new rule list at once (a config reload)."""
        self.rules = list(rules)
        self._changed()

    def _changed(self) -> None:
        self.classifier = Classifier(self.rules)
        self.classifier6 = Classifier(self.rules, bits=128)
        self.generation += 1
        self.epoch.bump()  # running flows are judged again by the new rules

    def show(self) -> dict[str, Any]:
        return {
            "rules": [r.to_dict() for r in self.rules],
            "default": dict(self.default_hits),
            "generation": self.generation,
        }
