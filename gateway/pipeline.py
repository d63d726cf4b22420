"""The pipeline: runs a packet through the stages to completion.

Where this sits: the datapath hands each received frame to :meth:`Pipeline.run`;
it returns when the frame and everything the frame caused (ARP replies, ICMP
errors, floods, packets released by an ARP resolution) have been sent or
dropped.  There are no queues between stages: ``emit`` only defers packets a
stage *created* until the current one is finished, still inside the same run.

The stage graph is the stages' own ``NEXT`` declarations (see :func:`graph`)::

    classify  -> l2switch -> dr | sr | egress | evi_encap
    dr        -> transit | egress | dr (its ICMP errors) | (queued for ARP)
    transit   -> dr | sr
    sr        -> transit | egress | sr | evi_decap
    evi_encap -> sr (the tunnel endpoint routes the GRE packet into the core)
    evi_decap -> l2switch (the inner frame, as received on its EVI link)
    egress    -> done (a copy for an EVI link: evi_encap)

A stage that returns a name it did not declare, or raises, is a bug, but a bug
must cost one packet, not the daemon: it is counted
(``pipeline/internal-error``) and the first few are printed with their
traceback.
"""

from __future__ import annotations

import traceback
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from gateway.bugs import report_bug
from gateway.packet import Packet
from gateway.stages.base import DONE, DROP, Context, Stage
from gateway.stages.classify import Classify
from gateway.stages.dr import DistributedRouter
from gateway.stages.egress import Egress
from gateway.stages.evi import EviDecap, EviEncap
from gateway.stages.l2switch import L2Switch
from gateway.stages.sr import ServiceRouter
from gateway.stages.transit import Transit

if TYPE_CHECKING:
    from gateway.model import Model
    from gateway.tables.mac import MacTable

STAGES: tuple[type[Stage], ...] = (
    Classify,
    L2Switch,
    DistributedRouter,
    Transit,
    ServiceRouter,
    EviEncap,
    EviDecap,
    Egress,
)
STAGE_ORDER: Final = tuple(s.name for s in STAGES)


class UndeclaredExit(Exception):
    """A stage returned a next stage it does not declare in ``NEXT``."""


def graph() -> dict[str, tuple[str, ...]]:
    """Each stage's exits, as declared."""
    return {s.name: s.NEXT for s in STAGES}


def _no_punt(client: str, meta: dict[str, Any], payload: bytes) -> bool:
    return False


class Pipeline:
    def __init__(
        self,
        model: Model,
        macs: MacTable,
        punt: Callable[[str, dict[str, Any], bytes], bool] = _no_punt,
    ) -> None:
        ctx = Context(model, macs, self.inject, punt)
        self.stages: dict[str, Stage] = {cls.name: cls(ctx) for cls in STAGES}
        for stage in self.stages.values():
            # exit name -> the stage it names (None: the walk ends), resolved once here.
            stage.exits = {**{n: self.stages[n] for n in stage.NEXT}, DONE: None, DROP: None}
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
        try:
            stage: Stage | None = self.stages[name]
            while stage is not None:
                stage.packets += 1
                name = stage.process(pkt)
                try:
                    stage = stage.exits[name]
                except KeyError:
                    raise UndeclaredExit(f"a stage returned {name!r}, not one of its exits") from None
        except Exception:  # noqa: BLE001 - see module docstring
            self.report_internal_error(name, pkt)

    def report_internal_error(self, where: str, pkt: Packet | None) -> None:
        """Count a bug that cost one packet; print the first few tracebacks."""
        self.internal_errors += 1
        if pkt is not None:
            pkt.drop_reason = "pipeline/internal-error"
            if pkt.trace is not None:
                pkt.trace.append(f"{where}: internal error: {traceback.format_exc(limit=1).strip()}")
        report_bug(self.internal_errors, f"in {where} (packet dropped)")

    def tick(self, now: float) -> None:
        for stage in self.stages.values():
            stage.tick(now)
        self.drain()

    def counters(self) -> dict[str, Any]:
        return {name: self.stages[name].counters() for name in STAGE_ORDER}

    def drops(self) -> dict[str, int]:
        out = {f"{s.name}/{r}": n for s in self.stages.values() for r, n in s.drops.items() if n}
        if self.internal_errors:
            out["pipeline/internal-error"] = self.internal_errors
        return out
