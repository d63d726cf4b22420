"""What every stage has: a name, its drop reasons with counters, a trace hook.

Where this sits: the base of every module in ``gateway/stages``.  A stage
lists its drop reasons in ``DROPS``; ``drop()`` refuses an unlisted one, so
that every drop in the daemon has a name that ``show drops`` can report and a
test can assert on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.datapath import Datapath
    from gateway.packet import Packet

DONE = "done"
DROP = "drop"


class Stage:
    name = "stage"
    DROPS: tuple[str, ...] = ()

    def __init__(self, dp: Datapath) -> None:
        self.dp = dp
        self.packets = 0
        self.drops = dict.fromkeys(self.DROPS, 0)

    def process(self, pkt: Packet) -> str:
        raise NotImplementedError

    def drop(self, pkt: Packet, reason: str, detail: str = "") -> str:
        self.drops[reason] += 1  # KeyError here means an undeclared reason: a bug
        pkt.drop_reason = f"{self.name}/{reason}"
        if pkt.fx is not None:
            pkt.fx.no_cache("drop")
        if pkt.trace is not None:
            pkt.trace.append(f"{self.name}: drop {reason}{' (' + detail + ')' if detail else ''}")
        return DROP

    def tick(self, now: float) -> None:
        """Timer work (retries, aging); called about once a second."""

    def counters(self) -> dict[str, Any]:
        return {"packets": self.packets, "drops": dict(self.drops)}
