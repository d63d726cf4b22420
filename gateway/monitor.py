"""Traffic monitoring: mirror sessions copied to a monitor TAP, so tcpdump sees them.

Where this sits: owned by the datapath; the control socket adds and removes
sessions at run time (``mirror`` command).  A session names what to copy —
a port, or an instance (the (port, VLAN) members its records name), or a
router (the instances of its ports) — and the direction: ``rx`` (frames as
received, before any stage touched them), ``tx`` (frames as sent) or
``both``.  Copies go, byte for byte as on the wire (802.1Q tag inline), to a
TAP ``<node>-mon`` in the gateway node's namespace, opened with the first
session and closed with the last:  ``tcpdump -i edge1-mon`` shows them.

Cost: with no session (the usual case) nothing is added to the transmit path
and one test of a local variable per received frame.  A watched port carries
the monitor in ``Port.mirror`` (read once per received batch) and its
transport is wrapped (:class:`Mirrored`) so that what it sends is copied.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.headers import ETH_P_8021Q
from gateway.model import Model
from gateway.port import Port

DIRECTIONS = ("rx", "tx", "both")
_TAG = struct.Struct("!HH")


class MonitorError(Exception):
    """A session that cannot be made; the message is for the user."""


@dataclass
class Session:
    name: str
    what: str  # "port trunk", "instance web", "router t1"
    direction: str
    # (port name, VLAN or None); ANY_VLAN: every frame of the port
    members: set[tuple[str, Any]]
    copied: int = 0
    rx: bool = field(init=False)
    tx: bool = field(init=False)

    def __post_init__(self) -> None:
        self.rx = self.direction in ("rx", "both")
        self.tx = self.direction in ("tx", "both")


ANY_VLAN = "any"


class Monitor:
    def __init__(self, model: Model, tap_name: str, open_tap: Callable[[str], Any]) -> None:
        self.model = model
        self.tap_name = tap_name
        self.open_tap = open_tap  # io.tap.Tap, or a test double
        self.tap: Any = None
        self.sessions: dict[str, Session] = {}

    # -- sessions ----------------------------------------------------------------------------
    def add(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        if name in self.sessions:
            raise MonitorError(f"a mirror session named {name!r} exists already")
        direction = spec.get("direction", "both")
        if direction not in DIRECTIONS:
            raise MonitorError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
        members, what = self._members(spec)
        if self.tap is None:
            self.tap = self.open_tap(self.tap_name)
        session = Session(name, what, direction, members)
        self.sessions[name] = session
        self._wire()
        return self.describe(session)

    def remove(self, name: str) -> dict[str, Any]:
        session = self.sessions.pop(name, None)
        if session is None:
            raise MonitorError(f"no mirror session named {name!r}; sessions: {', '.join(self.sessions) or 'none'}")
        self._wire()
        if not self.sessions and self.tap is not None:
            self.tap.close()
            self.tap = None
        return self.describe(session)

    def _members(self, spec: dict[str, Any]) -> tuple[set[tuple[str, Any]], str]:
        kinds = [k for k in ("port", "instance", "router") if k in spec]
        if len(kinds) != 1:
            raise MonitorError("a mirror session names one of: port, instance, router")
        kind = kinds[0]
        value = spec[kind]
        model = self.model
        if kind == "port":
            if value not in model.ports:
                raise MonitorError(f"no port {value!r}; ports: {', '.join(model.ports)}")
            return {(value, ANY_VLAN)}, f"port {value}"
        if kind == "instance":
            inst = model.instances.get(value) if isinstance(value, str) else None
            if inst is None:
                raise MonitorError(f"no instance {value!r}; instances: {', '.join(model.instances)}")
            return {(p.name, v) for p, v in inst.members}, f"instance {value}"
        routers = [r for r in model.routers if r.name == value]
        if not routers:
            raise MonitorError(f"no router {value!r}; routers: {', '.join(sorted({r.name for r in model.routers}))}")
        members = {(p.name, v) for r in routers for rp in r.ports if rp.instance for p, v in rp.instance.members}
        return members, f"router {value}"

    def _wire(self) -> None:
        """Watch the ports some session names; leave the others untouched."""
        for port in self.model.ports.values():
            watched = any(name == port.name for s in self.sessions.values() for name, _ in s.members)
            port.mirror = self if watched else None
            if watched and port.io is not None and not isinstance(port.io, Mirrored):
                port.io = Mirrored(port.io, self, port)
            elif not watched and isinstance(port.io, Mirrored):
                port.io = port.io.inner

    # -- copies --------------------------------------------------------------------------------
    def copy(self, port: Port, frame: bytes | bytearray, vlan: Any, rx: bool) -> None:
        """A frame seen on ``port``: ``vlan`` is its tag on receive (out of band), or None on
        transmit (the tag, if any, is inline)."""
        if not rx and len(frame) >= 18 and (frame[12] << 8 | frame[13]) == ETH_P_8021Q:
            vlan = ((frame[14] << 8) | frame[15]) & 0x0FFF
        wire: bytes | None = None
        for session in self.sessions.values():
            if not (session.rx if rx else session.tx):
                continue
            if (port.name, ANY_VLAN) not in session.members and (port.name, vlan) not in session.members:
                continue
            if wire is None:
                wire = (
                    bytes(frame)
                    if not rx or vlan is None
                    else bytes(frame[:12]) + _TAG.pack(ETH_P_8021Q, vlan) + bytes(frame[12:])
                )
            self.tap.send(wire)
            session.copied += 1

    def describe(self, session: Session) -> dict[str, Any]:
        return {"name": session.name, "what": session.what, "direction": session.direction, "copied": session.copied}

    def show(self) -> dict[str, Any]:
        return {
            "tap": self.tap_name if self.tap is not None else None,
            "sessions": [self.describe(s) for s in self.sessions.values()],
        }

    def close(self) -> None:
        self.sessions.clear()
        self._wire()
        if self.tap is not None:
            self.tap.close()
            self.tap = None


class Mirrored:
    """A port's transport while a session watches it: every frame sent is copied first."""

    def __init__(self, inner: Any, monitor: Monitor, port: Port) -> None:
        self.inner = inner
        self.monitor = monitor
        self.port = port
        self.poll_interval = inner.poll_interval

    def send(self, frame: bytes | bytearray) -> None:
        self.monitor.copy(self.port, frame, None, False)
        self.inner.send(frame)

    def fileno(self) -> int:
        return int(self.inner.fileno())

    def filenos(self) -> tuple[int, ...]:
        return tuple(self.inner.filenos())

    def recv_batch(self, limit: int, readable: bool = True) -> list[tuple[bytearray, int | None]]:
        return list(self.inner.recv_batch(limit, readable))

    def flush(self) -> None:
        self.inner.flush()

    def take_error(self) -> int:
        return int(self.inner.take_error())

    def counters(self) -> dict[str, int]:
        return dict(self.inner.counters())

    def close(self) -> None:
        self.inner.close()


def monitor_tap(name: str) -> Any:
    """The monitor TAP, up (tcpdump needs it so), no address, no IPv6 chatter."""
    import subprocess

    from gateway.io.tap import Tap

    tap = Tap(name)
    for argv in (
        ["sysctl", "-qw", f"net.ipv6.conf.{name}.disable_ipv6=1"],
        ["ip", "link", "set", name, "up"],
    ):
        subprocess.run(argv, capture_output=True, check=False)
    return tap
