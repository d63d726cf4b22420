"""State shared by the keyword components of one library instance (one suite)."""

from __future__ import annotations

from typing import Any

from scapy.layers.l2 import Ether

from suites.lib import traffic
from suites.lib.plans import addr

MARK_TYPE = 0x88B5


class Context:
    """State shared by the components of one library instance (one suite)."""

    def __init__(self, dut: str) -> None:
        self.dut = dut
        self.lab: Any = None
        self._cm: Any = None
        self.last_ping: traffic.PingResult | None = None
        self.received: dict[str, list[Ether]] = {}
        self.drops_before: dict[str, dict[str, int]] = {}

    @property
    def plan(self) -> dict[str, Any]:
        if self.lab is None:
            raise AssertionError("no topology is running; call 'Start Topology' first")
        return self.lab.plan

    def resolve(self, name: str) -> str:
        """A host name from the plan, or an address as given."""
        if name in self.plan["hosts"]:
            return addr(self.plan, name)
        return name

    def address(self, who: str) -> str:
        """A host name, a router port label (``t1-dr:web``: ROUTER-HALF:SEGMENT), or an address."""
        if who in self.plan["hosts"] or "-" not in who or ":" not in who:
            return self.resolve(who)
        name, _, rest = who.partition("-")
        half, _, segment = rest.partition(":")
        try:
            return str(self.plan["routers"][name][half][segment])
        except KeyError:
            raise AssertionError(
                f"no router port {who!r} in the plan (use ROUTER-dr:SEGMENT, e.g. t1-dr:web)"
            ) from None

    def uplink_mac(self, edge: str) -> str:
        """The MAC of an SR edge's uplink port, from its intent."""
        try:
            return str(self.plan["gateways"][edge]["routers"][0]["sr"]["ports"][0]["mac"]).lower()
        except (KeyError, IndexError):
            raise AssertionError(f"{edge} is not an SR edge with an uplink port in the plan") from None
