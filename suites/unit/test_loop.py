"""The event loop (``gateway/loop.py``) with ports standing in for the ``io: block`` kind: a
polled port is read every round, its socket only in a round where epoll reported the
socket itself (not its ring), and expiry runs between rounds in slices."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from scapy.layers.inet import IP, UDP

from gateway import loop
from suites.unit.conftest import FakeWire, Rig
from suites.unit.test_nat import nat_rig, out_frame


class PolledWire(FakeWire):
    """A ring port's shape: two descriptors, the first its ring, the second its socket."""

    poll_interval = 0.001

    def __init__(self) -> None:
        super().__init__()
        self.ring, self.ring_peer = socket.socketpair()
        self.sock, self.sock_peer = socket.socketpair()
        self.calls: list[bool] = []  # the readable flag of every read

    def fileno(self) -> int:
        return self.ring.fileno()

    def filenos(self) -> tuple[int, ...]:
        return (self.ring.fileno(), self.sock.fileno())

    def recv_batch(self, limit: int, readable: bool = True) -> list:
        self.calls.append(readable)
        if readable:  # what the socket holds is taken, as the quiet socket's frames are
            self.sock.setblocking(False)
            try:
                while self.sock.recv(64):
                    pass
            except BlockingIOError:
                pass
        return []

    def close(self) -> None:
        for s in (self.ring, self.ring_peer, self.sock, self.sock_peer):
            s.close()


def run_loop(rig: Rig, seconds: float, during: object = None) -> None:
    """The loop over ``rig``'s datapath for ``seconds`` (``during`` called halfway), then
    the signal handlers it set back as they were."""
    stopper = threading.Timer(seconds, lambda: setattr(rig.dp, "stopping", True))
    stopper.start()
    if during is not None:
        threading.Timer(seconds / 2, during).start()  # type: ignore[arg-type]
    try:
        loop.run(rig.dp)
    finally:
        stopper.cancel()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        rig.dp.stopping = False


@pytest.fixture
def polled() -> Iterator[tuple[Rig, PolledWire, list[socket.socket]]]:
    rig = Rig()
    wire = PolledWire()
    rig.dp.attach("uplink", wire)
    idle = []  # epoll needs a real descriptor for every port
    for name, other in rig.wires.items():
        if name != "uplink":
            idle.append(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            other.fileno = idle[-1].fileno  # type: ignore[method-assign]
            other.filenos = lambda s=idle[-1]: (s.fileno(),)  # type: ignore[method-assign]
    try:
        yield rig, wire, idle
    finally:
        wire.close()
        for s in idle:
            s.close()


def test_a_polled_port_is_read_every_round_and_its_socket_only_when_reported(polled):
    rig, wire, _idle = polled
    wire.ring_peer.send(b"x")  # the ring's descriptor stays readable (never read): not the socket's
    run_loop(rig, 0.2, lambda: wire.sock_peer.send(b"frame"))
    assert len(wire.calls) > 20, "read every round (a round at least every millisecond)"
    assert wire.calls.count(True) == 1, wire.calls.count(True)
    assert wire.calls.index(True) > 5, "not before the socket had a frame"


def test_expiry_runs_in_the_loop_a_slice_at_a_time(monkeypatch):
    from gateway.datapath import SWEEP_SLICE

    rig = nat_rig(max_sessions=2000)
    n = 2 * SWEEP_SLICE + 10
    for sport in range(3000, 3000 + n):
        rig.send("trunk", out_frame(IP(src="172.16.10.11", dst="203.0.113.10") / UDP(sport=sport, dport=53)))
    ct = rig.dp.model.router("t1", "sr").services.ct
    assert len(ct) == n
    for conn in ct.conns():
        conn.last -= 1000  # long idle: all due
    sizes = []
    real = type(rig.dp).sweep

    def sweep(dp: Any, now: float, limit: int | None = SWEEP_SLICE) -> bool:
        more = real(dp, now, limit)
        sizes.append(len(ct))
        return more

    # On the class: the compiled Datapath's methods are not an instance's to replace.
    monkeypatch.setattr(type(rig.dp), "sweep", sweep)
    idle = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in rig.wires]
    for s, wire in zip(idle, rig.wires.values(), strict=True):
        wire.fileno = s.fileno  # type: ignore[method-assign]
        wire.filenos = lambda s=s: (s.fileno(),)  # type: ignore[method-assign]
    try:
        t0 = time.monotonic()
        run_loop(rig, 0.1)
    finally:
        for s in idle:
            s.close()
    assert len(ct) == 0 and time.monotonic() - t0 < 1
    assert sizes[:3] == [n - SWEEP_SLICE, n - 2 * SWEEP_SLICE, 0], "a slice at a time, again at once while one was full"
