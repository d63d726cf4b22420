"""The datapath's event loop: one thread, one ``epoll``, run to completion.

Where this sits: ``python -m gateway`` calls :func:`run` on its datapath, which
serves the ports, the unix listeners (control socket, the process transport)
and the timers until SIGTERM/SIGINT.  Each round takes what the ports hold (a
batch of frames each, through :meth:`Datapath.poll_port`), answers the
listeners, runs what is due (expiry every :data:`SWEEP`, the tick every
:data:`TICK`), sends the replication a round produced and flushes the ports'
transmit rings.  A round that took longer than ``stalls.FLOOR`` is noted
(``show counters``: ``loop``).

A socket port is read when epoll says it is readable.  A ring port
(``io: block``) is registered too, but is also read after every wake-up, and
the wait is capped at its ``poll_interval`` (1 ms: a thousand cheap status
reads a second when idle): once, while a ring overflowed, epoll was seen to
sleep 0.45 s with frames arriving, and a missed wake-up must not cost more
than a millisecond.  Its socket (the quiet frame-by-frame side) is read only
when epoll reported it: an empty read is a system call and an exception.

Expiry runs in slices (:meth:`Datapath.sweep`, at most ``SWEEP_SLICE`` entries
of each table, every :data:`SWEEP`, again at once while a slice came back
full): once a second in one go, the connections a busy second closed expired
together 10 s later (12k connections and their cache entries: a round of 24 ms
in process, while the ports' rings filled).
"""

from __future__ import annotations

import select
import signal
import time
from typing import TYPE_CHECKING, Any

from gateway.datapath import BATCH
from gateway.stalls import FLOOR

if TYPE_CHECKING:
    from gateway.datapath import Datapath
    from gateway.io import Transport
    from gateway.port import Port

TICK = 1.0  # ageing, ARP retries, advertisements, listeners' timers
SWEEP = 0.01  # expiry of connections and cache entries, a slice at a time


def run(dp: Datapath) -> None:
    """Serve ports, unix listeners and timers until SIGTERM/SIGINT."""

    def stop(signum: int, _frame: Any) -> None:
        dp.stopping = True

    def hup(signum: int, _frame: Any) -> None:
        dp.hup_pending = True

    ep = select.epoll()
    handlers: dict[int, Any] = {}
    ports: list[tuple[Port, Transport]] = [(p, p.io) for p in dp.model.ports.values() if p.io is not None]
    transports = [io for _p, io in ports]
    polled = [p for p, io in ports if io.poll_interval]
    polled_set = set(polled)
    waits = [io.poll_interval for _p, io in ports if io.poll_interval]
    max_wait = min(waits) if waits else None
    by_fd = {}
    # A polled port's first descriptor is its ring, read every round anyway; the others
    # (the quiet frame-by-frame socket) are read only in a round where epoll reported them.
    sockets = {fd: p for p, io in ports if io.poll_interval for fd in io.filenos()[1:]}
    for port, io in ports:
        for fd in io.filenos():
            by_fd[fd] = port
            ep.register(fd, select.EPOLLIN)
    for listener in dp.listeners:
        listener.attach(ep, handlers)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
    signal.signal(signal.SIGHUP, hup)
    next_tick = time.monotonic() + TICK
    next_sweep = time.monotonic() + SWEEP
    backlog = False
    poll_port = dp.poll_port
    sync = dp.sync
    stalls = dp.stalls
    try:
        while not dp.stopping:
            # A port that filled a whole batch may hold more: look again at once.
            timeout = 0.0 if backlog else max(0.0, min(next_tick, next_sweep) - time.monotonic())
            if max_wait is not None and timeout > max_wait:
                timeout = max_wait
            if sync is not None:
                wait = sync.wait(time.monotonic())  # replication held back by its rate
                if wait is not None and wait < timeout:
                    timeout = wait
            try:
                events = ep.poll(timeout)
            except InterruptedError:
                continue
            woke = time.monotonic()
            backlog = False
            # A polled port's socket is read only when epoll reported it (its empty
            # read is a system call and an exception on every round).
            readable = {sockets[fd] for fd, _mask in events if fd in sockets} if events else ()
            for port in polled:
                if poll_port(port, port in readable) >= BATCH:
                    backlog = True
            for fd, mask in events:
                ready = by_fd.get(fd)
                if ready is not None:
                    if mask & select.EPOLLERR:
                        dp.port_error(ready)
                    if ready not in polled_set and poll_port(ready) >= BATCH:
                        backlog = True
                    continue
                handler = handlers.get(fd)
                if handler is not None:
                    handler()
            now = time.monotonic()
            if now >= next_sweep:
                next_sweep = now if dp.sweep(now) else now + SWEEP
            if now >= next_tick:
                dp.tick(now)
                next_tick = now + TICK
                if dp.hup_pending and dp.on_hup is not None:
                    dp.hup_pending = False
                    dp.on_hup()  # SIGHUP: the config read again (its owner says how it went)
            if sync is not None:
                sync.flush(now)  # what this round of packets created or changed, to the peers
            for io in transports:
                io.flush()
            busy = time.monotonic() - woke
            if busy >= FLOOR:
                stalls.note(busy, woke + busy)
    finally:
        ep.close()
