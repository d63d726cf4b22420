"""The service transport: packets handed to data-plane processes, and resumed when they return.

Where this sits: polled by the datapath loop like its other listeners (after
VPP's punt socket).  A service process connects to a SOCK_SEQPACKET socket
and registers, in one JSON line, what it wants::

    {"type": "register", "service": "dhcp-relay", "punts": [{"proto": "udp", "port": 67}]}

and is answered with the names the binary headers number: stages, ports,
instances, routers.  Then every message is :data:`HEADER` and a frame:

    version  kind  flags  seq  stage  -  instance  port  vlan  router

- datapath -> service, ``kind`` PUNT: a frame a router received for one of
  the registered (protocol, port) pairs (a broadcast on a segment, or for the
  router's address), with where it came from;
- service -> datapath, ``kind`` RESUME: a frame to carry on with at
  ``stage`` — ``dr``/``sr``: an IPv4 packet the named router sends as its own
  (routed, and through the SR's services); ``egress``: out of (``port``,
  ``vlan``); ``seq`` names the punt it answers (0: none);
- service -> datapath, ``kind`` DROP: the verdict on punt ``seq``.

A punt of a connection's payload (the FTP ALG's) is held by the datapath
with its connection (a ``hold`` in the punt's meta): the PUNT flags say which
direction it travels (:data:`REPLY_DIRECTION`); the service may ask, while
the punt is in flight, for the endpoint to write in place of one the payload
announces (``kind`` EXPECT, :data:`ENDPOINT`), and is answered (``kind``
EXPECTED: the endpoint, or :data:`EXPECT_REFUSED` and the reason); its
RESUME carries the rewritten IPv4 packet, which the hold checks (same
connection, same segment, checksums) before it goes on.  When a held punt
fails open, the original goes on as it came.

What a service takes is configured (``ServiceConfig.punts``); a registration
naming anything else is refused.  Per service: a bounded number of punts in flight and a timeout; when the
process is gone, too slow or full, the packet gets the service's failure
mode: ``fail-closed`` (dropped by the router, ``service-unavailable``, and
counted ``failed_closed``) or ``fail-open`` (let go, counted ``failed_open``;
for a packet only a service takes, such as DHCP for the relay, the two differ
in the count only).  A
resumed frame that is not well formed, names a stage, port or router that
does not exist, or answers no punt in flight is refused and counted.  Sends
never block the loop: a full socket is a failure like any other.
"""

from __future__ import annotations

import json
import socket
import struct
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.bugs import report_bug
from gateway.io.unix import UnixListener

VERSION = 1
PUNT, RESUME, DROP, EXPECT, EXPECTED = 1, 2, 3, 4, 5
HEADER = struct.Struct("!BBHIBxHHHH")
ENDPOINT = struct.Struct("!4sH")  # EXPECT and EXPECTED: an IPv4 address and a port
REPLY_DIRECTION = 1  # PUNT flag: the frame travels the connection's reply direction
EXPECT_REFUSED = 1  # EXPECTED flag: refused, the reason follows the header
NO_VLAN = 0xFFFF
MAX_MESSAGE = 65536
RESUMABLE = ("dr", "sr", "egress")
PROTOS = {"udp": 17, "tcp": 6}


class Refused(ValueError):
    """What the datapath refuses of a service, with the name it is counted under."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass
class ServiceConfig:
    name: str
    command: list[str]
    mode: str = "fail-closed"  # or fail-open
    queue: int = 64  # punts in flight at most
    timeout: float = 0.2  # s a punt may wait for its answer
    punts: list[tuple[int, int]] = field(default_factory=list)  # (protocol, port) it takes
    options: dict[str, Any] = field(default_factory=dict)


class Service:
    """One registered service: its connection, what it wants, its punts in flight."""

    def __init__(self, cfg: ServiceConfig) -> None:
        self.cfg = cfg
        self.fd: int | None = None
        self.conn: socket.socket | None = None
        self.seq = 0
        self.pending: OrderedDict[int, tuple[float, Any]] = OrderedDict()  # seq -> (deadline, hold)
        self.counts = dict.fromkeys(
            ("sent", "returned", "dropped", "timed_out", "failed_closed", "failed_open", "refused", "late"), 0
        )
        self.reasons: dict[str, int] = {}  # the services' DROP verdicts, by the reason they gave
        self.refusals: dict[str, int] = {}  # what the datapath refused of the service, by reason

    def fail(self, hold: Any = None) -> bool:
        """The service cannot take a packet: its failure mode decides, and is counted.  True:
        fail-open, the router lets it go — a held packet (``hold``) goes on as it came; a
        packet only a service takes, as DHCP for the relay, has nowhere else to go:
        fail-open and fail-closed differ in the count only."""
        if self.cfg.mode == "fail-open":
            self.counts["failed_open"] += 1
            if hold is not None:
                hold.release()
            return True
        self.counts["failed_closed"] += 1
        return False

    def expire(self, now: float) -> None:
        while self.pending:
            seq, (deadline, hold) = next(iter(self.pending.items()))
            if deadline > now:
                return
            del self.pending[seq]
            self.counts["timed_out"] += 1
            self.fail(hold)


class ServiceServer(UnixListener):
    kind = socket.SOCK_SEQPACKET

    def __init__(
        self,
        path: str,
        services: list[ServiceConfig],
        names: dict[str, list[str]],
        resume: Callable[..., str | None],
        after: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(path, "datapath")
        self.after = after  # run once messages or timeouts may have let packets go (the pipeline's drain)
        self.services = {s.name: Service(s) for s in services}
        self.names = names  # stages, ports, instances, routers: what header numbers index
        self._index = {
            kind: {name: i for i, name in enumerate(names[kind])} for kind in ("instances", "ports", "routers")
        }
        # resume(stage, frame, instance, port, vlan, router) -> None, or why it was refused
        self.resume = resume
        # (protocol, port) -> its service, from the config: a service that is gone still has
        # its packets, and its failure mode decides what becomes of them.
        self.punts = {key: svc for svc in self.services.values() for key in svc.cfg.punts}
        self.by_fd: dict[int, Service] = {}
        self.errors = 0
        self.internal_errors = 0

    # -- the datapath's side --------------------------------------------------------------
    def wants(self, proto: int, port: int) -> Service | None:
        return self.punts.get((proto, port))

    def take(self, meta: dict[str, Any], payload: bytes) -> bool:
        """A router's punt (``meta``: instance, port, VLAN, router, and a held punt's hold and
        flags) for the service that takes it; False: none does, or it is fail-closed."""
        hold = meta.get("hold")
        if hold is not None:  # a connection's payload, for the service its connection names
            svc = self.services.get(hold.service)
        else:
            ihl = (payload[0] & 0x0F) * 4
            svc = self.wants(payload[9], payload[ihl + 2] << 8 | payload[ihl + 3])
        if svc is None:
            return False
        inst, port, router = meta["instance"], meta["port"], meta["router"]
        where = (
            self._index["instances"].get(inst.name, 0) if inst is not None else 0,
            self._index["ports"].get(port.name, 0) if port is not None else 0,
            meta["vlan"],
            self._index["routers"].get(router.label, 0),
        )
        return self.punt(svc, payload, where, hold, meta.get("flags", 0))

    def punt(
        self, svc: Service, frame: bytes, where: tuple[int, int, int | None, int], hold: Any = None, flags: int = 0
    ) -> bool:
        """Hand ``frame`` to ``svc`` (``where``: instance, port, VLAN, router indices; ``hold``:
        what the datapath keeps of a held punt).  False: it could not take it and it is
        fail-closed."""
        now = time.monotonic()
        svc.expire(now)
        if svc.conn is None or len(svc.pending) >= svc.cfg.queue:
            return svc.fail(hold)
        svc.seq = svc.seq % 0xFFFFFFFF + 1
        instance, port, vlan, router = where
        head = HEADER.pack(VERSION, PUNT, flags, svc.seq, 0, instance, port, NO_VLAN if vlan is None else vlan, router)
        seq = svc.seq
        svc.pending[seq] = (now + svc.cfg.timeout, hold)  # (before the answer can come)
        try:
            svc.conn.send(head + frame)
        except (BlockingIOError, OSError):
            del svc.pending[seq]
            return svc.fail(hold)
        svc.counts["sent"] += 1
        return True

    def tick(self) -> None:
        super().tick()
        now = time.monotonic()
        for svc in self.services.values():
            svc.expire(now)
        if self.after is not None:
            self.after()

    # -- the services' side --------------------------------------------------------------
    def readable(self, fd: int, conn: socket.socket) -> None:
        for data in self.datagrams(fd, conn, MAX_MESSAGE):
            try:
                svc = self.by_fd.get(fd)
                if svc is None:
                    self._register(fd, conn, data)
                else:
                    self._message(svc, data)
            except (ValueError, KeyError, TypeError, RecursionError, struct.error) as exc:
                self.errors += 1
                svc = self.by_fd.get(fd)
                if svc is not None:
                    svc.counts["refused"] += 1
                    reason = exc.reason if isinstance(exc, Refused) else "malformed"
                    svc.refusals[reason] = svc.refusals.get(reason, 0) + 1
                self._answer(conn, {"type": "error", "error": str(exc)})
            except Exception:  # noqa: BLE001 - a bug costs this message, never the daemon
                self.internal_errors += 1
                report_bug(self.internal_errors, f"on a service message {data[:60]!r}")
        if self.after is not None:
            self.after()

    def _register(self, fd: int, conn: socket.socket, data: bytes) -> None:
        msg = json.loads(data)
        if not isinstance(msg, dict) or msg.get("type") != "register":
            raise ValueError('register first: {"type": "register", "service": NAME, "punts": [...]}')
        svc = self.services.get(msg.get("service"))  # type: ignore[arg-type]
        if svc is None:
            raise ValueError(f"no service {msg.get('service')!r} is configured; configured: {', '.join(self.services)}")
        for p in msg.get("punts", []):
            if not isinstance(p, dict) or (PROTOS.get(p.get("proto")), p.get("port")) not in svc.cfg.punts:  # type: ignore[arg-type,operator]
                raise ValueError(f"{p!r} is not a punt configured for {svc.cfg.name}: {svc.cfg.punts}")
        if svc.conn is not None:
            self.drop(svc.fd)  # type: ignore[arg-type]  # a restarted service replaces its old self
        svc.fd, svc.conn = fd, conn
        self.by_fd[fd] = svc
        self._answer(conn, {"type": "registered", **self.names})

    def _message(self, svc: Service, data: bytes) -> None:
        version, kind, _flags, seq, stage, instance, port, vlan, router = HEADER.unpack_from(data)
        if version != VERSION:
            raise ValueError(f"header version {version}, expected {VERSION}")
        if kind == EXPECT:
            self._expect(svc, seq, data)
            return
        hold = None
        if seq:
            pending = svc.pending.pop(seq, None)
            if pending is None:
                svc.counts["late"] += 1  # timed out already (its failure mode applied), or never sent
                return
            hold = pending[1]
        if kind == DROP:
            svc.counts["dropped"] += 1
            reason = data[HEADER.size : HEADER.size + 40].decode(errors="replace") or "unspecified"
            svc.reasons[reason] = svc.reasons.get(reason, 0) + 1
            return
        if kind != RESUME:
            raise ValueError(f"message kind {kind}: a service sends RESUME ({RESUME}) or DROP ({DROP})")
        if hold is not None:
            why = hold.resume(bytearray(data[HEADER.size :]))
        else:
            why = self.resume(
                stage, bytearray(data[HEADER.size :]), instance, port, None if vlan == NO_VLAN else vlan, router
            )
        if why is not None:
            raise Refused(why) if hold is not None else Refused("bad-resume", why)
        svc.counts["returned"] += 1

    def _expect(self, svc: Service, seq: int, data: bytes) -> None:
        """The service asks what to write for an endpoint the held punt ``seq`` announces."""
        pending = svc.pending.get(seq)
        if pending is None or pending[1] is None:
            raise Refused("expect-without-punt")
        addr, port = ENDPOINT.unpack_from(data, HEADER.size)
        got = pending[1].expect(int.from_bytes(addr, "big"), port)
        if isinstance(got, str):
            answer = HEADER.pack(VERSION, EXPECTED, EXPECT_REFUSED, seq, 0, 0, 0, NO_VLAN, 0) + got.encode()
        else:
            answer = HEADER.pack(VERSION, EXPECTED, 0, seq, 0, 0, 0, NO_VLAN, 0) + ENDPOINT.pack(
                got[0].to_bytes(4, "big"), got[1]
            )
        try:
            svc.conn.send(answer)  # type: ignore[union-attr]
        except OSError:
            pass

    def _answer(self, conn: socket.socket, msg: dict[str, Any]) -> None:
        try:
            conn.send(json.dumps(msg).encode())
        except OSError:
            pass

    def drop(self, fd: int) -> None:
        svc = self.by_fd.pop(fd, None)
        if svc is not None:
            svc.conn = svc.fd = None
            pending = list(svc.pending.values())
            svc.pending.clear()
            for _deadline, hold in pending:
                svc.fail(hold)
            if self.after is not None:
                self.after()
        super().drop(fd)

    def counters(self) -> dict[str, Any]:
        return {
            "errors": self.errors,
            "internal_errors": self.internal_errors,
            **{name: {"connected": s.conn is not None, "in_flight": len(s.pending), **s.counts,
                      "reasons": dict(s.reasons), "refusals": dict(s.refusals)}
               for name, s in self.services.items()},
        }  # fmt: skip
