"""The pipeline: runs a packet through the stages to completion.

Where this sits: the datapath hands each received frame to :meth:`Pipeline.run`;
it returns when the frame and everything the frame caused (ARP replies, ICMP
errors, floods, packets released by an ARP resolution) have been sent or
dropped.  There are no queues between stages: ``inject`` only defers packets
a stage *created* until the current one is finished, still inside the same
run.

Stage graph (names returned by ``process``)::

    classify -> l2switch -> dr | sr | egress
    dr       -> transit | egress | (queued for ARP)
    transit  -> dr | sr
    sr       -> transit | egress
    egress   -> done

A stage that raises is a bug, but a bug must cost one packet, not the daemon:
the exception is counted (``pipeline/internal-error``) and the first few are
printed with their traceback.
"""

from __future__ import annotations

import sys
import traceback
from collections import deque
from typing import TYPE_CHECKING

from gateway.packet import Packet
from gateway.stages.base import DONE, DROP, Stage
from gateway.stages.classify import Classify
from gateway.stages.dr import DistributedRouter
from gateway.stages.egress import Egress
from gateway.stages.l2switch import L2Switch
from gateway.stages.sr import ServiceRouter
from gateway.stages.transit import Transit

if TYPE_CHECKING:
    from gateway.datapath import Datapath

STAGE_ORDER = ("classify", "l2switch", "dr", "transit", "sr", "egress")
_REPORTED_ERRORS = 5


class Pipeline:
    def __init__(self, dp: Datapath) -> None:
        stages: list[Stage] = [
            Classify(dp),
            L2Switch(dp),
            DistributedRouter(dp),
            Transit(dp),
            ServiceRouter(dp),
            Egress(dp),
        ]
        self.stages: dict[str, Stage] = {s.name: s for s in stages}
        self._deferred: deque[tuple[Packet, str]] = deque()
        self.internal_errors = 0

    def inject(self, pkt: Packet, stage: str) -> None:
        """Queue a packet a stage created; it runs from ``stage`` once the current walk ends."""
        self._deferred.append((pkt, stage))

    def run(self, pkt: Packet, stage: str = "classify") -> None:
        self._walk(pkt, stage)
        self.drain()

    def drain(self) -> None:
        """Run the packets stages created (also those created by timers, outside any walk)."""
        deferred = self._deferred
        while deferred:
            self._walk(*deferred.popleft())

    def _walk(self, pkt: Packet, name: str) -> None:
        stages = self.stages
        try:
            while name is not DONE and name is not DROP:
                stage = stages[name]
                stage.packets += 1
                name = stage.process(pkt)
        except Exception:  # noqa: BLE001 - see module docstring
            self.report_internal_error(name, pkt)

    def report_internal_error(self, where: str, pkt: Packet | None) -> None:
        """Count a bug that cost one packet; print the first few tracebacks."""
        self.internal_errors += 1
        if pkt is not None:
            pkt.drop_reason = "pipeline/internal-error"
            if pkt.trace is not None:
                pkt.trace.append(f"{where}: internal error: {traceback.format_exc(limit=1).strip()}")
        if self.internal_errors <= _REPORTED_ERRORS:
            print(f"gateway: internal error in {where} (packet dropped):", file=sys.stderr)
            traceback.print_exc()

    def drops(self) -> dict[str, int]:
        out = {f"{s.name}/{r}": n for s in self.stages.values() for r, n in s.drops.items() if n}
        if self.internal_errors:
            out["pipeline/internal-error"] = self.internal_errors
        return out
