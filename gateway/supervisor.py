"""The daemon's service processes: started with it, restarted when they exit, stopped with it.

Where this sits: ``python -m gateway`` makes one :class:`Supervisor` for the
configured data-plane services (``services.list``) and serves it from the
loop like a listener: its ``tick`` (every second) restarts a process that
exited, at most once every ``BACKOFF`` seconds, and says so in the daemon's
log.  The processes' own output goes to the daemon's.
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

from gateway.io.service import ServiceConfig

BACKOFF = 1.0


class Supervisor:
    def __init__(self, services: list[ServiceConfig], config_path: str) -> None:
        self.services = services
        self.config_path = config_path
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.started: dict[str, float] = {}
        self.restarts: dict[str, int] = {s.name: 0 for s in services}

    def _start(self, svc: ServiceConfig) -> None:
        argv = [sys.executable, "-u", *svc.command, "--config", self.config_path]
        self.procs[svc.name] = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
        self.started[svc.name] = time.monotonic()

    def start(self) -> None:
        for svc in self.services:
            self._start(svc)

    # -- as a listener of the loop -------------------------------------------------------
    def attach(self, ep: Any, handlers: dict[int, Any]) -> None:
        pass

    def tick(self) -> None:
        now = time.monotonic()
        for svc in self.services:
            proc = self.procs.get(svc.name)
            if proc is None or proc.poll() is None or now - self.started.get(svc.name, 0) < BACKOFF:
                continue
            self.restarts[svc.name] += 1
            print(f"gateway: service {svc.name} exited with status {proc.returncode}; restarting it", flush=True)
            self._start(svc)

    def listener_counters(self) -> dict[str, Any]:
        return {
            "services": {
                name: {"pid": p.pid, "running": p.poll() is None, "restarts": self.restarts[name]}
                for name, p in self.procs.items()
            }
        }

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
