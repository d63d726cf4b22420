"""The datapath: ports, tables, pipeline and the run-to-completion loop.

Where this sits: ``python -m gateway`` builds one :class:`Datapath` and calls
:meth:`Datapath.run`.  One thread does everything: it waits on the port
sockets, the control socket and the timer with one ``epoll``; for a readable
port it takes a batch of frames and carries each through the whole pipeline
(and out) before taking the next.  Control requests and timers are serviced
between batches, so they never block forwarding for longer than one batch.

Tests build a Datapath with in-memory transports (``attach``) and call
:meth:`receive` directly; the loop is the only part they skip.
"""

from __future__ import annotations

import os
import select
import signal
import time
from collections import deque
from typing import Any

from gateway import model
from gateway.cache import EPOCH, Cache, Effects
from gateway.config import Config
from gateway.headers import ETH_P_8021Q, describe, ip_int, ip_str
from gateway.model import Port, Transport
from gateway.packet import Packet
from gateway.pipeline import STAGE_ORDER, Pipeline
from gateway.tables.mac import MacTable

BATCH = 64
TICK = 1.0


class Datapath:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.model = model.build(cfg)
        self.macs = MacTable(cfg.tables.mac_aging)
        self.pipeline = Pipeline(self)
        self.started = time.time()
        self.trace_budget = 0
        self.traces: deque[dict[str, Any]] = deque(maxlen=64)
        self.stopping = False
        self.control_errors = 0
        self.control_requests = 0
        self.control_internal_errors = 0
        self.control: Any = None  # control.server.ControlServer while run() serves one
        self.cache = Cache(cfg.cache.enabled, cfg.cache.capacity, cfg.cache.idle_timeout)
        # Bumped when an SR address changes owner (HA takeover); cache entries through an SR depend on it.
        self.ownership_generation = 0
        self.ipc: Any = None  # io.ipc.IpcServer when a process (the HA agent) may connect
        self.ha_status: dict[str, Any] = {}
        self.takeovers = 0
        self.releases = 0
        self.garps = 0

    # -- ports -------------------------------------------------------------------------
    def attach(self, port_name: str, transport: Transport) -> None:
        self.model.ports[port_name].io = transport

    def open_ports(self) -> None:
        """Open every configured port (needs root): plain sockets, or (experimental) PACKET_MMAP rings."""
        from gateway.io.ports import AfPacket, BlockRingPort, RingPort, prepare

        kinds = {"socket": AfPacket, "ring": RingPort, "block": BlockRingPort}
        for port in self.model.ports.values():
            prepare(port.ifname)
            io = kinds[self.cfg.io](port.ifname)
            self.attach(port.name, io)

    def close_ports(self) -> None:
        for port in self.model.ports.values():
            if port.io is not None:
                port.io.close()
                port.io = None

    # -- packets -----------------------------------------------------------------------
    def receive(self, port: Port, frame: bytearray, vlan: int | None, now: float | None = None) -> Packet | None:
        """Carry one received frame through the cache or the pipeline (a batch of one).

        Returns the slow-path packet (for traces and tests), None for a cache hit.
        """
        return self.process(port, ((frame, vlan),), time.monotonic() if now is None else now)

    def process(self, port: Port, batch: Any, now: float) -> Packet | None:
        """Carry a batch of frames received on ``port`` through the cache or the pipeline.

        The loop is the cached fast path, kept flat: a hit is a lookup, the
        entry's action and a send, with no other call per frame.  A miss (or a
        frame the cache must not take, or the cache disabled) walks the stages.
        ``now`` (monotonic) is read once per batch.  Returns the last slow-path
        packet, None if the last frame was a cache hit.
        """
        cache = self.cache
        lookup = cache.lookup if cache.enabled else None
        hit = cache.hit
        pkt = None
        for frame, vlan in batch:
            port.rx += 1
            summary = describe(frame) if self.trace_budget else None
            if lookup is not None:
                try:
                    entry = lookup(port, vlan, frame)
                    if entry is not None:
                        entry.out_port.send(hit(entry, frame, now))
                        if summary is not None:
                            self._trace_hit(port, vlan, summary, entry)
                        pkt = None
                        continue
                except Exception:  # noqa: BLE001 - a bug costs this packet, never the daemon
                    if cache.verify:
                        raise  # tests: a stale dependency must fail the test, not drop a packet
                    self.pipeline.report_internal_error("cache", None)
                    pkt = None
                    continue
            pkt = self._walk(port, frame, vlan, now, summary)
        return pkt

    def _walk(self, port: Port, frame: bytearray, vlan: int | None, now: float, summary: str | None) -> Packet:
        """The slow path: the stages, recording their effects for the cache."""
        cache = self.cache
        pkt = Packet(frame, port, vlan)
        fx = Effects(bytes(frame[:128])) if cache.enabled else None
        pkt.fx = fx
        if summary is not None:
            self.trace_budget -= 1
            pkt.trace = ["cache: miss" if fx is not None else "cache: disabled"]
        self.pipeline.run(pkt)
        if fx is not None and pkt.drop_reason is None:
            try:
                installed = cache.install(pkt, fx, now)
            except Exception:  # noqa: BLE001 - the packet already left; the flow stays uncached
                self.pipeline.report_internal_error("cache install", None)
                installed = None
            if summary is not None and installed is not None:
                pkt.trace.append(f"cache: installed entry #{installed.id} ({installed.summary})")  # type: ignore[union-attr]
        if summary is not None:
            self.traces.append(self._trace_record(pkt, summary))
        return pkt

    def _trace_hit(self, port: Port, vlan: int | None, summary: str, entry: Any) -> None:
        self.trace_budget -= 1
        self.traces.append(
            {
                "time": round(time.time(), 3),
                "port": port.name,
                "vlan": vlan,
                "packet": summary,
                "steps": [f"cache: hit entry #{entry.id} ({entry.summary})"],
                "verdict": "forwarded",
            }
        )

    def inject(self, port_name: str, frame: bytes) -> dict[str, Any]:
        """Process ``frame`` as if received on ``port_name`` (a tag inline is taken as the VLAN), traced."""
        port = self.model.ports[port_name]
        buf = bytearray(frame)
        vlan = None
        if len(buf) >= 18 and (buf[12] << 8 | buf[13]) == ETH_P_8021Q:
            vlan = ((buf[14] << 8) | buf[15]) & 0x0FFF or None
            del buf[12:16]
        summary = describe(frame)
        port.rx += 1
        pkt = Packet(buf, port, vlan)
        pkt.trace = []
        self.pipeline.run(pkt)
        record = self._trace_record(pkt, summary)
        self.traces.append(record)
        return record

    def _trace_record(self, pkt: Packet, summary: str) -> dict[str, Any]:
        return {
            "time": round(time.time(), 3),
            "port": pkt.in_port.name if pkt.in_port else None,
            "vlan": pkt.vlan,
            "packet": summary,
            "steps": pkt.trace,
            # forwarded: sent out at least one port; consumed: taken by the gateway
            # (ARP for a router, or queued behind an ARP resolution).
            "verdict": pkt.drop_reason or ("forwarded" if pkt.outputs else "consumed"),
        }

    def poll_port(self, port: Port) -> int:
        batch = port.io.recv_batch(BATCH)  # type: ignore[union-attr]
        if batch:
            self.process(port, batch, time.monotonic())
        return len(batch)

    def tick(self, now: float) -> None:
        self.cache.expire(now)
        self.macs.age(now)
        for stage in self.pipeline.stages.values():
            stage.tick(now)
        self.pipeline.drain()

    # -- the loop ----------------------------------------------------------------------
    def run(self, control: Any = None) -> None:
        """Serve ports, control socket and timers until SIGTERM/SIGINT.

        A socket port is read when epoll says it is readable.  A ring port
        (``io: ring``/``block``) is registered too, but is also read after every
        wake-up, and the wait is capped at its ``poll_interval`` (1 ms: a
        thousand cheap status reads a second when idle): once, while a ring
        overflowed, epoll was seen to sleep 0.45 s with frames arriving, and a
        missed wake-up must not cost more than a millisecond.
        """
        ep = select.epoll()
        handlers: dict[int, Any] = {}
        ports = [p for p in self.model.ports.values() if p.io is not None]
        transports = [p.io for p in ports]
        polled = [p for p in ports if getattr(p.io, "poll_interval", None)]
        polled_set = set(polled)
        waits = [p.io.poll_interval for p in polled]  # type: ignore[union-attr]
        max_wait = min(waits) if waits else None
        by_fd = {}
        for port in ports:
            fd = port.io.fileno()  # type: ignore[union-attr]
            by_fd[fd] = port
            ep.register(fd, select.EPOLLIN)
        self.control = control
        listeners = [x for x in (control, self.ipc) if x is not None]
        if control is not None:
            control.attach(ep, handlers)
        if self.ipc is not None:
            self.ipc.attach(ep, handlers)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._stop)
        next_tick = time.monotonic() + TICK
        backlog = False
        poll_port = self.poll_port
        try:
            while not self.stopping:
                # A port that filled a whole batch may hold more: look again at once.
                timeout = 0.0 if backlog else max(0.0, next_tick - time.monotonic())
                if max_wait is not None and timeout > max_wait:
                    timeout = max_wait
                try:
                    events = ep.poll(timeout)
                except InterruptedError:
                    continue
                backlog = False
                for port in polled:
                    if poll_port(port) >= BATCH:
                        backlog = True
                for fd, mask in events:
                    port = by_fd.get(fd)
                    if port is not None:
                        if mask & select.EPOLLERR:
                            self.port_error(port)
                        if port not in polled_set and poll_port(port) >= BATCH:
                            backlog = True
                        continue
                    handler = handlers.get(fd)
                    if handler is not None:
                        handler()
                now = time.monotonic()
                if now >= next_tick:
                    self.tick(now)
                    for listener in listeners:
                        listener.tick()
                    next_tick = now + TICK
                for io in transports:
                    io.flush()
        finally:
            ep.close()

    def port_error(self, port: Port) -> None:
        """A socket error on a port (its interface went down or away): read it, which clears
        it (else epoll reports it again at once, for ever), count it, say it once per kind."""
        err = port.io.take_error()  # type: ignore[union-attr]
        if not err:
            return
        port.errors += 1
        if err != port.last_error:
            port.last_error = err
            print(f"gateway: port {port.name} ({port.ifname}): {os.strerror(err)}", flush=True)

    def _stop(self, signum: int, _frame: Any) -> None:
        self.stopping = True

    # -- other processes (io/ipc.py) and SR address ownership ---------------------------
    def ipc_message(self, meta: dict[str, Any], payload: bytes) -> dict[str, Any] | None:
        kind = meta["type"]
        if kind == "send":
            router = self._router(meta["router"], "sr")
            self.send_from(router, payload)
            return None
        if kind == "takeover":
            return {"type": "ok", "result": self.takeover(meta["router"], meta["ip"])}
        if kind == "release":
            return {"type": "ok", "result": self.release(meta["router"], meta["ip"])}
        if kind == "status":
            status = meta.get("status") or {}
            if not isinstance(status, dict):
                raise ValueError(f"'status' must be an object, got {type(status).__name__}")
            self.ha_status = status
            return None
        if kind == "announce":
            self.announce()
            return None
        if kind in ("yield", "claim"):
            return {"type": "ok", "result": self.claim(meta["router"], meta["ip"], kind == "claim")}
        raise ValueError(f"unknown message type {kind!r}")

    def _router(self, label: Any, kind: str) -> Any:
        if not isinstance(label, str):
            raise ValueError(f"'router' must be a router name, got {label!r}")
        name = label.split("-")[0] if label.endswith(f"-{kind}") else label
        for r in self.model.routers:
            if r.name == name and r.kind == kind:
                return r
        raise KeyError(f"no {kind.upper()} of router {label!r} on this node")

    def send_from(self, router: Any, ip_packet: bytes) -> None:
        """Route an IPv4 packet a process built as if ``router`` had built it."""
        from gateway.headers import ipv4_check

        reason = ipv4_check(ip_packet, 0)
        if reason is not None:
            raise ValueError(f"not a valid IPv4 packet ({reason})")
        pkt = Packet(bytearray(b"\x00" * 12 + b"\x08\x00" + ip_packet), None, None)
        pkt.router = router
        pkt.rport = router.transit_port or router.ports[0]
        pkt.originated = True
        self.pipeline.run(pkt, router.kind)

    def takeover(self, router_name: str, ip_text: str) -> dict[str, Any]:
        """Answer for ``ip`` from now on and tell the segment with a gratuitous ARP."""
        router = self._router(router_name, "sr")
        ip = _address(ip_text)
        rport = router.connected_port(ip)
        if rport is None:
            raise ValueError(f"{ip_text} is on no segment of {router.label}")
        if ip == rport.ip:
            raise ValueError(f"{ip_text} is {router.label}'s own address")
        fresh = ip not in router.owned
        router.owned[ip] = rport
        router.local_ips[ip] = rport
        if fresh:
            self.takeovers += 1
            self.ownership_generation += 1
            EPOCH.bump()
        self.garp(rport, ip)
        return {"router": router.label, "ip": ip_text, "port": rport.label, "new": fresh}

    def release(self, router_name: str, ip_text: str) -> dict[str, Any]:
        router = self._router(router_name, "sr")
        ip = _address(ip_text)
        held = router.owned.pop(ip, None)
        if held is not None:
            router.local_ips.pop(ip, None)
            self.releases += 1
            self.ownership_generation += 1
            EPOCH.bump()
        return {"router": router.label, "ip": ip_text, "released": held is not None}

    def garp(self, rport: Any, ip: int) -> None:
        """A gratuitous ARP request (sender = target = ip) flooded on the port's segment."""
        from gateway.l3 import arp_request

        frame = arp_request(rport.mac, ip, ip)
        pkt = Packet(frame, None, None)
        pkt.outputs = rport.instance.members
        self.garps += 1
        self.pipeline.run(pkt, "egress")

    def announce(self) -> None:
        """A gratuitous ARP for every SR port address we claim, so neighbours (and a peer
        holding our addresses) learn where they are now."""
        for router in self.model.routers:
            if router.kind == "sr":
                for rport in router.ports:
                    if rport.instance is not None and rport.ip not in router.yielded:
                        self.garp(rport, rport.ip)

    def claim(self, router_name: str, ip_text: str, claim: bool) -> dict[str, Any]:
        """Stop (yield) or start (claim, with a gratuitous ARP) answering for one of our own addresses."""
        router = self._router(router_name, "sr")
        ip = _address(ip_text)
        rport = next((p for p in router.ports if p.ip == ip and p.instance is not None), None)
        if rport is None:
            raise ValueError(f"{ip_text} is not an address of {router.label}")
        if claim:
            router.yielded.discard(ip)
            self.garp(rport, ip)
        else:
            router.yielded.add(ip)
        self.ownership_generation += 1
        EPOCH.bump()
        return {"router": router.label, "ip": ip_text, "claimed": claim}

    def ha(self) -> dict[str, Any]:
        return {
            "owned": {r.label: sorted(ip_str(ip) for ip in r.owned) for r in self.model.routers if r.kind == "sr"},
            "yielded": {r.label: sorted(ip_str(ip) for ip in r.yielded) for r in self.model.routers if r.kind == "sr"},
            "agent": self.ha_status,
            "ipc": self.ipc.counters() if self.ipc is not None else None,
            "takeovers": self.takeovers,
            "releases": self.releases,
            "garps": self.garps,
            "ownership_generation": self.ownership_generation,
        }

    # -- state for ``show`` ------------------------------------------------------------
    def counters(self) -> dict[str, Any]:
        stages = self.pipeline.stages
        return {
            "stages": {name: stages[name].counters() for name in STAGE_ORDER},
            "ports": {p.name: p.counters() for p in self.model.ports.values()},
            "pipeline": {"internal_errors": self.pipeline.internal_errors},
            "control": {
                "requests": self.control_requests,
                "errors": self.control_errors,
                "internal_errors": self.control_internal_errors,
                **(self.control.counters() if self.control is not None else {}),
            },
            "mac": {"entries": len(self.macs), "moves": self.macs.moves},
            "cache": self.cache.counters(),
        }


def _address(text: Any) -> int:
    """An IPv4 address from a message, or ValueError naming what was wrong."""
    if not isinstance(text, str):
        raise ValueError(f"'ip' must be an IPv4 address, got {text!r}")
    try:
        return ip_int(text)
    except (ValueError, OSError):
        raise ValueError(f"'ip' must be an IPv4 address, got {text!r}") from None
