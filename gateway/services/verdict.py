"""What the SR's services see of a packet, and what they decide about one they refuse.

Where this sits: shared by both families' services (``sr.py``, ``sr6.py``).
A :class:`Verdict` goes back to the ``sr`` stage, which drops the packet by
``reason`` (one of ``sr.DROPS``) and, for a reject, first answers with ICMP
administratively prohibited.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

from gateway.effects import Effects
from gateway.l4 import FlowTuple


class Verdict(NamedTuple):
    reason: str  # one of services.sr.DROPS
    detail: str
    reject: bool = False  # send ICMP (ICMPv6) administratively prohibited first


class SrPacket(Protocol):
    """What the services read and write of a packet (``packet.Packet``)."""

    buf: bytearray
    rport: Any
    fx: Effects | None
    conn: Any
    conn_dir: int
    flow: FlowTuple | None
    nat_rule: Any
    trace: list[str] | None

    def note(self, stage: str, text: str) -> None: ...
