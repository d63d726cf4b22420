"""What every stage has, and what it may see of the daemon.

Where this sits: the base of every module in ``gateway/stages``.  A stage
declares its drop reasons in ``DROPS`` (``drop()`` refuses an unlisted one,
so that every drop in the daemon has a name that ``show drops`` can report
and a test can assert on) and its exits in ``NEXT``: the stages it may hand a
packet to, besides ``DONE`` and ``DROP``.  Exits are data, as a VPP node's
``next_nodes``: the pipeline wires the stages from them and refuses a return
value that is not one of them.

A stage sees a :class:`Context`, not the daemon: the model and the MAC table
it reads and writes, a way to emit a packet it created (it runs from the
named stage once the current walk ends) and a way to punt a packet to a
process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Final

if TYPE_CHECKING:
    from gateway.model import Model
    from gateway.packet import Packet
    from gateway.tables.mac import MacTable

DONE: Final = "done"
DROP: Final = "drop"


class Context:
    """What a stage may read and do.  (A plain class: compiled, a dataclass would look up the
    names imported for the checker alone.)"""

    def __init__(
        self,
        model: Model,
        macs: MacTable,
        emit: Callable[[Packet, str], None],
        punt: Callable[[str, dict[str, Any], bytes], bool],
    ) -> None:
        self.model = model
        self.macs = macs
        # emit(pkt, stage): run a packet the stage created from ``stage``, after the current walk.
        self.emit = emit
        # punt(client, meta, payload) -> False when no such process is connected.
        self.punt = punt


class Stage:
    name: ClassVar[str] = "stage"
    DROPS: ClassVar[tuple[str, ...]] = ()
    NEXT: ClassVar[tuple[str, ...]] = ()

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.exits: dict[str, Stage | None] = {}  # NEXT resolved to stages by the pipeline
        self.packets = 0
        self.drops = dict.fromkeys(self.DROPS, 0)

    def process(self, pkt: Packet) -> str:
        """Do this stage's work; return an exit from ``NEXT``, ``DONE`` or ``DROP``."""
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
