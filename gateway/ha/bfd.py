"""BFD (RFC 5880, asynchronous mode; RFC 5881 single hop over UDP 3784).

Where this sits: the HA agent runs one :class:`Session` per peer SR.  The
session is pure protocol — packets in, packets and state changes out, time
passed in — so the same code runs over a kernel UDP socket (``Endpoint``
below, and FRR interop tests) or over the datapath's unix-socket transport.

Control packet (RFC 5880 4.1), 24 bytes, no authentication::

    |Vers|  Diag  |Sta|P|F|C|A|D|M| Detect Mult |  Length  |
    |                  My Discriminator                    |
    |                 Your Discriminator                   |
    |               Desired Min TX Interval (us)           |
    |              Required Min RX Interval (us)           |
    |           Required Min Echo RX Interval (us)         |

State machine (6.8.6): Down -> Init on a Down, Down/Init -> Up on an
Init/Up, Up -> Down on a Down or AdminDown from the peer, any -> Down when
nothing valid arrived for the detection time (remote multiplier x the
agreed interval).  While not Up a session transmits at most once a second
(6.8.3); on reaching Up it switches to its configured intervals with a Poll
sequence (6.5), answered with Final.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass

from gateway.headers import BFD_PORT, HELLO_PORT  # noqa: F401 - re-exported for the agent

VERSION = 1

ADMIN_DOWN, DOWN, INIT, UP = 0, 1, 2, 3
STATE_NAMES = {ADMIN_DOWN: "admin-down", DOWN: "down", INIT: "init", UP: "up"}

DIAG_NONE = 0
DIAG_DETECT_EXPIRED = 1
DIAG_NEIGHBOR_DOWN = 3
DIAG_ADMIN_DOWN = 7

SLOW_TX_US = 1_000_000  # 6.8.3: not faster than once a second while not Up

_PACK = struct.Struct("!BBBBIIIII")


class BfdError(ValueError):
    """A packet to discard (6.8.6); the reason names the check that failed."""


@dataclass
class Packet:
    """A BFD control packet.

    ========== =====================================
    Attribute  Description
    ========== =====================================
    state      sender's session state (0..3)
    diag       diagnostic code
    poll/final P and F bits
    mult       detect multiplier
    my_disc    sender's discriminator
    your_disc  receiver's discriminator as the sender knows it (0: unknown)
    min_tx     desired min TX interval, microseconds
    min_rx     required min RX interval, microseconds
    min_echo   required min echo RX interval, microseconds
    ========== =====================================
    """

    state: int
    diag: int
    mult: int
    my_disc: int
    your_disc: int
    min_tx: int
    min_rx: int
    min_echo: int = 0
    poll: bool = False
    final: bool = False
    demand: bool = False

    def serialize(self) -> bytes:
        flags = (
            (self.state << 6) | (0x20 if self.poll else 0) | (0x10 if self.final else 0) | (0x02 if self.demand else 0)
        )
        return _PACK.pack(
            (VERSION << 5) | (self.diag & 0x1F),
            flags,
            self.mult,
            24,
            self.my_disc,
            self.your_disc,
            self.min_tx,
            self.min_rx,
            self.min_echo,
        )

    @classmethod
    def parser(cls, data: bytes) -> Packet:
        """Parse and apply the checks of 6.8.6 that need no session."""
        if len(data) < 24:
            raise BfdError("short")
        vd, flags, mult, length, my, your, tx, rx, echo = _PACK.unpack_from(data)
        if vd >> 5 != VERSION:
            raise BfdError("version")
        if length < 24 or length > len(data):
            raise BfdError("length")
        if flags & 0x04:
            raise BfdError("authentication-unsupported")
        if mult == 0:
            raise BfdError("detect-mult-zero")
        if flags & 0x01:
            raise BfdError("multipoint")
        if my == 0:
            raise BfdError("my-discriminator-zero")
        state = flags >> 6
        if your == 0 and state not in (DOWN, ADMIN_DOWN):
            raise BfdError("your-discriminator-zero")
        return cls(
            state, vd & 0x1F, mult, my, your, tx, rx, echo, bool(flags & 0x20), bool(flags & 0x10), bool(flags & 0x02)
        )


class Session:
    """One BFD session, driven by :meth:`receive` and :meth:`poll` with explicit time (seconds)."""

    def __init__(
        self, local_disc: int, tx_us: int = 300_000, rx_us: int = 300_000, mult: int = 3, seed: int | None = None
    ) -> None:
        if local_disc == 0:
            raise ValueError("a local discriminator must be non-zero")
        self.local_disc = local_disc
        self.cfg_tx_us = tx_us
        self.cfg_rx_us = rx_us
        self.mult = mult
        self.state = DOWN
        self.diag = DIAG_NONE
        self.remote_disc = 0
        self.remote_state = DOWN
        self.remote_min_rx_us = 1
        self.remote_tx_us = 0
        self.remote_mult = 0
        self.polling = False
        self.send_final = False
        self.next_tx = 0.0
        self.detect_deadline: float | None = None
        self.changes: list[tuple[float, str, str, int]] = []  # (time, old, new, diag)
        self.rx_packets = 0
        self.tx_packets = 0
        self.discarded = 0
        self._rng = random.Random(seed)

    # -- intervals ---------------------------------------------------------------------
    @property
    def desired_tx_us(self) -> int:
        return self.cfg_tx_us if self.state == UP else max(self.cfg_tx_us, SLOW_TX_US)

    def tx_interval(self) -> float:
        """Seconds to the next packet: max(ours, peer's required RX), jittered (6.8.7)."""
        base = max(self.desired_tx_us, self.remote_min_rx_us) / 1e6
        low = 0.75
        high = 0.9 if self.mult == 1 else 1.0
        return base * self._rng.uniform(low, high)

    def detection_time(self) -> float:
        """6.8.4, asynchronous mode: remote multiplier x max(our required RX, peer's desired TX)."""
        return self.remote_mult * max(self.cfg_rx_us, self.remote_tx_us) / 1e6

    # -- protocol ----------------------------------------------------------------------
    def _set_state(self, new: int, diag: int, now: float) -> None:
        if new == self.state:
            return
        old = self.state
        self.state = new
        self.diag = diag
        self.changes.append((now, STATE_NAMES[old], STATE_NAMES[new], diag))
        if new == UP or old == UP:
            # The slow-start rule flips our TX interval: tell the peer with a Poll (6.8.3).
            self.polling = True
        if new == DOWN:
            self.remote_disc = 0 if diag == DIAG_DETECT_EXPIRED else self.remote_disc
            self.detect_deadline = None
        self.next_tx = now  # a state change goes out at once

    def receive(self, data: bytes, now: float) -> Packet | None:
        """Process one received packet; returns it, or None if it was discarded."""
        try:
            pkt = Packet.parser(data)
        except BfdError:
            self.discarded += 1
            return None
        if pkt.your_disc != 0 and pkt.your_disc != self.local_disc:
            self.discarded += 1
            return None
        self.rx_packets += 1
        self.remote_disc = pkt.my_disc
        self.remote_state = pkt.state
        self.remote_min_rx_us = pkt.min_rx
        self.remote_tx_us = pkt.min_tx
        self.remote_mult = pkt.mult
        if pkt.final:
            self.polling = False
        if self.state == ADMIN_DOWN:
            return pkt
        if pkt.state == ADMIN_DOWN:
            if self.state != DOWN:
                self._set_state(DOWN, DIAG_NEIGHBOR_DOWN, now)
        elif self.state == DOWN:
            if pkt.state == DOWN:
                self._set_state(INIT, DIAG_NONE, now)
            elif pkt.state == INIT:
                self._set_state(UP, DIAG_NONE, now)
        elif self.state == INIT:
            if pkt.state in (INIT, UP):
                self._set_state(UP, DIAG_NONE, now)
        elif self.state == UP and pkt.state == DOWN:
            self._set_state(DOWN, DIAG_NEIGHBOR_DOWN, now)
        if self.state in (INIT, UP):
            self.detect_deadline = now + self.detection_time()
        if pkt.poll:
            self.send_final = True
            self.next_tx = now
        return pkt

    def next_timer(self) -> float:
        """When :meth:`poll` has something to do next: the next packet, or the detection
        timeout if it comes first (a caller that woke only to transmit would notice a dead peer
        up to one transmit interval late)."""
        if self.detect_deadline is not None and self.state in (INIT, UP):
            return min(self.next_tx, self.detect_deadline)
        return self.next_tx

    def poll(self, now: float) -> bytes | None:
        """Timers: detection timeout, then the packet to send now (or None)."""
        if self.detect_deadline is not None and now >= self.detect_deadline and self.state in (INIT, UP):
            self._set_state(DOWN, DIAG_DETECT_EXPIRED, now)
        if now < self.next_tx:
            return None
        self.next_tx = now + self.tx_interval()
        return self.packet()

    def packet(self) -> bytes:
        final = self.send_final
        self.send_final = False
        self.tx_packets += 1
        return Packet(
            self.state,
            self.diag,
            self.mult,
            self.local_disc,
            self.remote_disc,
            self.desired_tx_us,
            self.cfg_rx_us,
            0,
            poll=self.polling and not final,
            final=final,
        ).serialize()

    def admin_down(self, now: float) -> None:
        self._set_state(ADMIN_DOWN, DIAG_ADMIN_DOWN, now)

    def status(self) -> dict[str, object]:
        return {
            "state": STATE_NAMES[self.state],
            "diag": self.diag,
            "local_discriminator": self.local_disc,
            "remote_discriminator": self.remote_disc,
            "remote_state": STATE_NAMES.get(self.remote_state, str(self.remote_state)),
            "tx_interval_ms": self.desired_tx_us / 1000,
            "rx_interval_ms": self.cfg_rx_us / 1000,
            "detect_mult": self.mult,
            "detection_time_ms": round(self.detection_time() * 1000, 1),
            "rx_packets": self.rx_packets,
            "tx_packets": self.tx_packets,
            "discarded": self.discarded,
        }
