"""Port I/O: how frames get in and out of the datapath.

Where this sits: under every :class:`gateway.port.Port`.  A port's transport
is one of ``afpacket.AfPacket`` (``io: socket``: one system call per frame)
or ``blockring.BlockRingPort`` (``io: block``, the default: PACKET_MMAP
rings), or a test double.  :class:`Transport` is everything the datapath
calls on one; ``netdev.prepare`` readies the interface first.  ``unix.py``
and ``ipc.py`` are the other transports: unix sockets to other processes.
"""

from __future__ import annotations

from typing import Protocol


class Transport(Protocol):
    """What the datapath calls on a port's I/O."""

    # Read the port at least this often (seconds), whatever epoll says; None: when readable.
    poll_interval: float | None

    def fileno(self) -> int: ...

    def filenos(self) -> tuple[int, ...]:
        """Every descriptor whose readiness means frames to read (epoll watches them all;
        an error on any is read through :meth:`take_error`).  A polled port's first is the
        one the loop reads every round anyway (its ring); ``recv_batch``'s ``readable`` says
        whether epoll reported one of the others."""
        ...

    def recv_batch(self, limit: int, readable: bool = True) -> list[tuple[bytearray, int | None]]:
        """Up to ``limit`` received frames (untagged) with their VLAN, without blocking.

        ``readable=False``: epoll did not report the port's descriptors readable (a
        polled port read on the loop's schedule): read only what needs no system call."""
        ...

    def send(self, frame: bytes | bytearray) -> None:
        """Send (or queue until :meth:`flush`) one frame; OSError if it cannot."""
        ...

    def flush(self) -> None:
        """Hand queued frames to the kernel; called once per loop iteration."""
        ...

    def take_error(self) -> int:
        """The pending socket error (0: none); reading it clears it."""
        ...

    def counters(self) -> dict[str, int]:
        """``rx_dropped`` (by the kernel, not read in time), ``tx_dropped`` (queued, not
        taken by the kernel), ``rx_resyncs`` (receive blocks the kernel passed by)."""
        ...

    def close(self) -> None: ...


def open_port(ifname: str, kind: str) -> Transport:
    """Ready ``ifname`` and open it as ``io: kind`` (socket or block); raises netdev.PortError."""
    from gateway.io.afpacket import AfPacket
    from gateway.io.blockring import BlockRingPort
    from gateway.io.netdev import prepare

    prepare(ifname)
    if kind == "socket":
        return AfPacket(ifname)
    return BlockRingPort(ifname)
