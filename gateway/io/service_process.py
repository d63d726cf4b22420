"""A data-plane service's side of the service transport: register, answer punts, say counts.

Where this sits: the base of the services' processes (``relay/dhcp.py``,
``alg/ftp.py``).  A subclass names its ``kind`` and what it registers for
(``punts``) and implements :meth:`handle` (one PUNT message in, the RESUME or
DROP message out); this module does the rest: find the service in the config,
connect and register (retried while the daemon starts), the receive loop with
a count line every few seconds, and ``main`` (exit 2 on a bad config or a
refused registration, 1 when the datapath goes away: the daemon's supervisor
starts it again).
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from collections import deque
from typing import Any

from gateway import config
from gateway.io import unix
from gateway.io.service import DROP, HEADER, NO_VLAN, PUNT, VERSION

COUNTS_EVERY = 5.0


class ServiceProcess:
    kind = "service"  # the config's kind, and the name in the log

    def __init__(self, cfg: config.Config, service: str) -> None:
        svc = next((s for s in cfg.services if s.name == service), None)
        if svc is None:
            raise config.ConfigError(f"{cfg.source}: no service {service!r} in services.list")
        self.name = service
        self.service = svc
        self.node = cfg.node
        self.socket_path = cfg.services_socket
        self.names: dict[str, list[str]] = {}
        self.sock: socket.socket | None = None
        self.queue: deque[bytes] = deque()  # punts that came while the service waited for an answer
        self.counts: dict[str, int] = {}

    def punts(self) -> list[dict[str, Any]]:
        """What it registers for (the config's punts: a registration naming others is refused)."""
        return [{"proto": {6: "tcp", 17: "udp"}[proto], "port": port} for proto, port in self.service.punts]

    def start_event(self) -> dict[str, Any]:
        return {"event": "start", "service": self.name}

    def connect(self, timeout: float = 20.0) -> None:
        sock = unix.connect(self.socket_path, socket.SOCK_SEQPACKET, timeout)
        sock.send(json.dumps({"type": "register", "service": self.name, "punts": self.punts()}).encode())
        answer = json.loads(sock.recv(65536))
        if answer.get("type") != "registered":
            raise OSError(f"the datapath refused the registration: {answer.get('error')}")
        self.names = answer
        self.sock = sock

    def handle(self, data: bytes) -> bytes:
        """One PUNT message -> the message that answers it."""
        raise NotImplementedError

    @staticmethod
    def drop(seq: int, reason: str) -> bytes:
        """The DROP verdict on punt ``seq``, with the reason the datapath counts it under."""
        return HEADER.pack(VERSION, DROP, 0, seq, 0, 0, 0, NO_VLAN, 0) + reason.encode()

    def receive(self) -> bytes:
        assert self.sock is not None
        data = self.queue.popleft() if self.queue else self.sock.recv(65536)
        if not data:
            raise ConnectionError("the datapath closed the service socket")
        return data

    def run(self) -> None:
        assert self.sock is not None
        last = 0.0
        while True:
            data = self.receive()
            if len(data) >= HEADER.size and data[1] == PUNT:
                self.sock.send(self.handle(data))
            now = time.monotonic()
            if now - last > COUNTS_EVERY:
                print(json.dumps({"event": "counts", **self.counts}), flush=True)
                last = now

    @classmethod
    def main(cls, argv: list[str] | None = None) -> int:
        ap = argparse.ArgumentParser(prog=cls.kind, description=cls.__doc__)
        ap.add_argument("--config", required=True)
        ap.add_argument("--service", required=True)
        args = ap.parse_args(argv)
        try:
            proc = cls(config.load(args.config), args.service)
            proc.connect()
        except (config.ConfigError, OSError) as exc:
            print(f"{cls.kind}: {exc}", file=sys.stderr)
            return 2
        print(json.dumps(proc.start_event()), flush=True)
        try:
            proc.run()
        except (ConnectionError, KeyboardInterrupt) as exc:
            print(f"{cls.kind}: {exc}", file=sys.stderr)
            return 1
        return 0
