"""The datapath: ports, tables, pipeline and the run-to-completion loop.

Where this sits: ``python -m gateway`` builds one :class:`Datapath` and runs
the loop over it (``loop.py``).  One thread does everything: it
waits on the port sockets, the unix listeners (control socket, the process
transport) and the timers with one ``epoll``; for a readable port it takes a
batch of frames and carries each through the cache or the whole pipeline (and
out) before taking the next.  Control requests and timers are serviced between
batches, so they never block forwarding for longer than one batch.

The datapath owns what every part below it shares: the model, the MAC table,
the invalidation epoch (``epoch.py``), the pipeline and the cache.  Address
ownership (HA) is ``ha/ownership.py``'s; control commands are
``control/``'s.

Tests build a Datapath with in-memory transports (``attach``) and call
:meth:`receive` directly; the loop is the only part they skip.
"""

from __future__ import annotations

import os
import time
from collections import deque
from typing import Any, Final

from gateway import build
from gateway.cache import KEPT, Cache
from gateway.config import Config
from gateway.effects import Effects
from gateway.epoch import Epoch
from gateway.evi.control import EviControl
from gateway.ha.ownership import Ownership
from gateway.ha.sync import StateSync
from gateway.headers import ETH_P_8021Q, describe, ipv4_check
from gateway.headers6 import ipv6_check
from gateway.io import Transport, open_port
from gateway.io.ipc import IpcServer
from gateway.io.service import RESUMABLE, ServiceServer
from gateway.kernel import Kernel
from gateway.model import Router
from gateway.monitor import Monitor, monitor_tap
from gateway.packet import Packet
from gateway.pipeline import STAGE_ORDER, Pipeline
from gateway.port import Port
from gateway.stalls import Stalls
from gateway.tables.mac import MacTable

BATCH: Final = 64  # frames taken from a port at once
# Expiry (connections, cache entries) runs in slices: at most SWEEP_SLICE entries of each
# table at a time (``loop.py`` calls :meth:`Datapath.sweep` every 10 ms, and again at once
# while a slice came back full).
SWEEP_SLICE: Final = 256


def _trace(port: str | None, vlan: int | None, packet: str, steps: Any, verdict: str) -> dict[str, Any]:
    """One packet's record in ``show traces``."""
    return {"time": round(time.time(), 3), "port": port, "vlan": vlan, "packet": packet, "steps": steps,
            "verdict": verdict}  # fmt: skip


class Datapath:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.hup_pending = False
        self.on_hup: Any = None  # called from the loop after a SIGHUP (python -m gateway: reload)
        self.epoch = Epoch()
        self.model = build.build(cfg, self.epoch)
        t = cfg.tables
        self.macs = MacTable(t.mac_aging, self.epoch, t.mac_capacity, t.mac_per_instance)
        self.pipeline = Pipeline(self.model, self.macs, self.punt)
        self.cache = Cache(self.epoch, cfg.cache.enabled, cfg.cache.capacity, cfg.cache.idle_timeout)
        self.ownership = Ownership(self.model, self.epoch, self.pipeline.run)
        # Connection state replicated with the peer SRs (ha/sync.py), when an SR has any.
        sync = StateSync(self.model, cfg.routers, self._sync_send, self.process, time.monotonic())
        self.sync: StateSync | None = sync if sync else None
        self.started = time.time()
        self.stalls = Stalls()  # rounds of the loop long enough to delay BFD (show counters: loop)
        self.trace_budget = 0
        self.traces: deque[dict[str, Any]] = deque(maxlen=64)
        self.stopping = False
        self.ipc: IpcServer | None = None  # when processes (the HA agent) may connect
        self.ipcs: list[IpcServer] = []  # every process transport (the HA agent's, the EVI process's)
        self.services: ServiceServer | None = None  # the data-plane services' transport (open_services)
        self.evi_control = (
            EviControl(self.model.evi, self.macs, self._emit_frame) if self.model.evi is not None else None
        )
        self.listeners: list[Any] = []  # what the loop serves besides ports (control socket, ipc, kernel)
        self.monitor = Monitor(self.model, f"{cfg.node}-mon"[:15], monitor_tap)
        # The user-kernel transport (kernel.py), when the config has a kernel section.
        self.kernel = Kernel(cfg.kernel, cfg.node, self.model, self.send_from) if cfg.kernel is not None else None

    # -- ports -------------------------------------------------------------------------
    def attach(self, port_name: str, transport: Transport) -> None:
        self.model.ports[port_name].io = transport

    def open_ports(self) -> None:
        """Open every configured port (needs root) with the configured transport (``io``)."""
        for port in self.model.ports.values():
            self.attach(port.name, open_port(port.ifname, self.cfg.io))
        if self.kernel is not None and self.cfg.kernel is not None:
            from gateway.io.tap import Tap

            self.kernel.tap = Tap(self.cfg.kernel.tap)
            self.listeners.append(self.kernel)

    def close_ports(self) -> None:
        self.monitor.close()
        for port in self.model.ports.values():
            if port.io is not None:
                port.io.close()
                port.io = None

    # -- other processes ---------------------------------------------------------------
    def open_ipc(self, path: str) -> IpcServer:
        """Serve the unix-socket transport to processes (the HA agent, the EVI control
        process) at ``path``; one server per path, every message type on each."""
        for server in self.ipcs:
            if server.path == path:
                return server
        handlers = {**self.ownership.handlers(), "send": self._send_message}
        if self.evi_control is not None:
            handlers.update(self.evi_control.handlers())
        server = IpcServer(path, handlers)
        self.ipcs.append(server)
        if self.ipc is None:
            self.ipc = server
        self.listeners.append(server)
        return server

    def open_services(self, path: str | None = None) -> ServiceServer:
        """Serve the service transport (``io/service.py``) to the configured services."""
        model = self.model
        names = {
            "stages": list(STAGE_ORDER),
            "ports": list(model.ports),
            "instances": list(model.instances),
            "routers": [r.label for r in model.routers],
        }
        self.services = ServiceServer(
            path or self.cfg.services_socket, self.cfg.services, names, self._resume, self.pipeline.drain
        )
        self.listeners.append(self.services)
        return self.services

    def _resume(
        self, stage: int, frame: bytearray, instance: int, port: int, vlan: int | None, router: int
    ) -> str | None:
        """A frame a service returned, carried on at ``stage``; the reason when it is refused."""
        if not 0 <= stage < len(STAGE_ORDER) or STAGE_ORDER[stage] not in RESUMABLE:
            return f"stage {stage} is not one a service may resume at ({', '.join(RESUMABLE)})"
        name = STAGE_ORDER[stage]
        if name == "egress":
            ports = list(self.model.ports.values())
            if not 0 <= port < len(ports) or (ports[port].name, vlan) not in self.model.records:
                return f"port {port} VLAN {vlan} is no record of an instance"
            if len(frame) < 14:
                return "a frame shorter than an Ethernet header"
            pkt = Packet(frame, None, None)
            pkt.outputs = [(ports[port], vlan)]
            self.pipeline.run(pkt, "egress")
            return None
        if not 0 <= router < len(self.model.routers) or self.model.routers[router].kind != name:
            return f"router {router} is not a {name}"
        try:
            self.send_from(self.model.routers[router], bytes(frame))
        except ValueError as exc:
            return str(exc)
        return None

    def punt(self, client: str, meta: dict[str, Any], payload: bytes) -> bool:
        """Hand a packet to ``client``: "kernel" (the TAP, tag ``meta["tag"]``), "service" (the
        data-plane service that takes it) or a process ("ha", "evi"); False when there is none."""
        if client == "kernel":
            return self.kernel is not None and self.kernel.deliver(meta["tag"], payload)
        if client == "service":
            return self.services is not None and self.services.take(meta, payload)
        if client in ("sync", "sync-hold"):  # a peer's replication message; a packet waiting for one
            return self.sync is not None and self.sync.take(client, meta, payload, time.monotonic())
        delivered = False
        for server in self.ipcs:
            delivered = server.deliver(client, meta, payload) or delivered
        return delivered

    def _send_message(self, meta: dict[str, Any], payload: bytes) -> None:
        self.send_from(self.model.router(meta["router"], "sr"), payload)

    def _sync_send(self, router: Router, peer: int, mac: bytes | None, ip_packet: bytes) -> None:
        """A replication message: to the MAC the peer spoke from (we may hold its address), else routed."""
        rport = router.connected_port(peer)
        if mac is None or rport is None or rport.instance is None:
            self.send_from(router, ip_packet)
            return
        self._emit_frame(bytearray(mac + rport.mac + b"\x08\x00" + ip_packet), rport.instance.members)

    def send_from(self, router: Router, ip_packet: bytes) -> None:
        """Route an IPv4 or IPv6 packet a process built as if ``router`` had built it."""
        v6 = bool(ip_packet) and ip_packet[0] >> 4 == 6
        reason = ipv6_check(ip_packet, 0) if v6 else ipv4_check(ip_packet, 0)
        if reason is not None:
            raise ValueError(f"not a valid {'IPv6' if v6 else 'IPv4'} packet ({reason})")
        pkt = Packet(bytearray(b"\x00" * 12 + (b"\x86\xdd" if v6 else b"\x08\x00") + ip_packet), None, None)
        pkt.router = router
        pkt.rport = router.transit_port or router.ports[0]
        pkt.originated = True
        self.pipeline.run(pkt, router.kind)

    def _emit_frame(self, frame: bytearray, outputs: list[Any]) -> None:
        """Send a frame the gateway built out of ``outputs`` (port, VLAN members)."""
        pkt = Packet(frame, None, None)
        pkt.outputs = outputs
        self.pipeline.run(pkt, "egress")

    # -- packets -----------------------------------------------------------------------
    def receive(self, port: Port, frame: bytearray, vlan: int | None, now: float | None = None) -> Packet | None:
        """Carry one received frame through the cache or the pipeline (a batch of one).

        Returns the slow-path packet (for traces and tests), None for a cache hit.
        """
        return self.process(port, [(frame, vlan)], time.monotonic() if now is None else now)

    def process(self, port: Port, batch: list[tuple[bytearray, int | None]], now: float) -> Packet | None:
        """Carry a batch of frames received on ``port`` through the cache or the pipeline.

        The loop is the cached fast path, kept flat: a hit is a lookup, the
        entry's action and a send, with no other call per frame.  A miss (or a
        frame the cache must not take, or the cache disabled) walks the stages.
        ``now`` (monotonic) is read once per batch.  Returns the last slow-path
        packet, None if the last frame was a cache hit.
        """
        cache = self.cache
        cached = cache.enabled
        mirror = port.mirror
        pkt = None
        for frame, vlan in batch:
            port.rx += 1
            if mirror is not None:
                mirror.copy(port, frame, vlan, True)
            summary = describe(frame) if self.trace_budget else None
            record = True
            if cached:
                try:
                    entry = cache.lookup(port, vlan, frame)
                    if entry is KEPT:
                        record = False  # a TCP control frame of a cached flow: its entry stays
                    elif entry is not None:
                        entry.out_port.send(cache.hit(entry, frame, now))
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
            pkt = self._walk(port, frame, vlan, now, summary, record)
        return pkt

    def _walk(
        self, port: Port, frame: bytearray, vlan: int | None, now: float, summary: str | None, record: bool = True
    ) -> Packet:
        """The slow path: the stages, recording their effects for the cache (unless ``record``
        is False: the frame's flow keeps the entry it has)."""
        cache = self.cache
        pkt = Packet(frame, port, vlan)
        fx = Effects(bytes(frame[:128]), self.epoch.value, port, vlan) if cache.enabled and record else None
        pkt.fx = fx
        if summary is not None:
            self.trace_budget -= 1
            why = (
                "miss" if fx is not None else "disabled" if not cache.enabled else "tcp control, the flow's entry kept"
            )
            pkt.trace = [f"cache: {why}"]
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
        steps = [f"cache: hit entry #{entry.id} ({entry.summary})"]
        self.traces.append(_trace(port.name, vlan, summary, steps, "forwarded"))

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
        # forwarded: sent out at least one port; consumed: taken by the gateway
        # (ARP for a router, or queued behind an ARP resolution).
        verdict = pkt.drop_reason or ("forwarded" if pkt.outputs else "consumed")
        return _trace(pkt.in_port.name if pkt.in_port else None, pkt.vlan, summary, pkt.trace, verdict)

    def poll_port(self, port: Port, readable: bool = True) -> int:
        batch = port.io.recv_batch(BATCH, readable)  # type: ignore[union-attr]
        if batch:
            self.process(port, batch, time.monotonic())
        return len(batch)

    def sweep(self, now: float, limit: int | None = SWEEP_SLICE) -> bool:
        """Expire connections and cache entries, at most ``limit`` of each table; True when a
        table had more (the loop comes back at once)."""
        more = self.cache.expire(now, limit) == limit
        for router in self.model.routers:
            if router.services is not None and router.services.ct.expire(now, limit) == limit:
                more = True
        return more

    def tick(self, now: float) -> None:
        self.macs.age(now)
        if self.model.evi is not None:
            self.model.evi.age(now)
        self.pipeline.tick(now)
        if self.sync is not None:
            self.sync.tick(now)
        for listener in self.listeners:
            listener.tick()

    # -- for the loop (loop.py) ---------------------------------------------------------
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

    # -- state for ``show`` ------------------------------------------------------------
    def counters(self) -> dict[str, Any]:
        return {
            "stages": self.pipeline.counters(),
            "ports": {p.name: p.counters() for p in self.model.ports.values()},
            "pipeline": {"internal_errors": self.pipeline.internal_errors},
            "mac": {
                "entries": len(self.macs),
                "moves": self.macs.moves,
                "per_instance": dict(self.macs.counts),
                "refused": dict(self.macs.refused),
            },
            "cache": self.cache.counters(),
            "loop": self.stalls.counters(time.monotonic()),
            **({"kernel": self.kernel.counters()} if self.kernel is not None else {}),
        }

    def ha(self) -> dict[str, Any]:
        return {
            **self.ownership.show(),
            "ipc": self.ipc.counters() if self.ipc is not None else None,
            "sync": self.sync.show(time.monotonic()) if self.sync is not None else None,
        }
