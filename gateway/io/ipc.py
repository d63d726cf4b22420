"""Unix-socket transport between the datapath and other processes.

Where this sits: polled by the datapath loop like the ports.  A process (the
HA agent first) connects to a SOCK_SEQPACKET socket; every message is one
datagram: a JSON metadata line, a newline, then the frame or packet bytes
(possibly empty)::

    {"type": "packet", "router": "t1-sr", "port": "t1-sr:transit"}\\n<IPv4 packet>

Datapath -> process: ``packet`` (a punted packet; which router and port got it).
Process -> datapath: ``send`` (an IPv4 packet for a router to route as its own),
``takeover`` / ``release`` (an address moves to / from this SR), ``announce``
(gratuitous ARPs for this SR's own addresses), ``status`` (the process's own
state, shown by ``show ha``).  A malformed message gets an
``error`` answer and is counted; the connection stays.
"""

from __future__ import annotations

import json
import os
import select
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.datapath import Datapath

MAX_MESSAGE = 65536


def encode(meta: dict[str, Any], payload: bytes = b"") -> bytes:
    return json.dumps(meta, separators=(",", ":")).encode() + b"\n" + payload


def decode(data: bytes) -> tuple[dict[str, Any], bytes]:
    head, sep, payload = data.partition(b"\n")
    if not sep:
        raise ValueError("no newline after the metadata")
    meta = json.loads(head)
    if not isinstance(meta, dict) or not isinstance(meta.get("type"), str):
        raise ValueError("metadata must be a JSON object with a 'type'")
    return meta, payload


class IpcServer:
    def __init__(self, dp: Datapath, path: str) -> None:
        self.dp = dp
        self.path = path
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.bind(path)
        self.sock.listen(4)
        self.sock.setblocking(False)
        self.clients: dict[int, socket.socket] = {}
        self._ep: Any = None
        self._handlers: dict[int, Any] = {}
        self.received = 0
        self.sent = 0
        self.errors = 0
        self.send_failures = 0

    def attach(self, ep: Any, handlers: dict[int, Any]) -> None:
        self._ep = ep
        self._handlers = handlers
        handlers[self.sock.fileno()] = self._accept
        ep.register(self.sock.fileno(), select.EPOLLIN)

    def _accept(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except BlockingIOError:
            return
        conn.setblocking(False)
        fd = conn.fileno()
        self.clients[fd] = conn
        self._handlers[fd] = lambda fd=fd: self._readable(fd)
        self._ep.register(fd, select.EPOLLIN)

    def _readable(self, fd: int) -> None:
        conn = self.clients.get(fd)
        if conn is None:
            return
        for _ in range(64):
            try:
                data = conn.recv(MAX_MESSAGE)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._drop(fd)
                return
            self.received += 1
            try:
                meta, payload = decode(data)
                answer = self.dp.ipc_message(meta, payload)
            except (ValueError, KeyError, TypeError) as exc:
                self.errors += 1
                answer = {"type": "error", "error": str(exc)}
            if answer is not None:
                self._send(fd, conn, encode(answer))

    def broadcast(self, meta: dict[str, Any], payload: bytes) -> bool:
        """Send to every connected process; False when nobody listens."""
        if not self.clients:
            return False
        data = encode(meta, payload)
        for fd, conn in list(self.clients.items()):
            self._send(fd, conn, data)
        return True

    def _send(self, fd: int, conn: socket.socket, data: bytes) -> None:
        try:
            conn.send(data)
            self.sent += 1
        except BlockingIOError:
            self.send_failures += 1  # a slow reader loses this message, not the datapath its loop
        except OSError:
            self._drop(fd)

    def _drop(self, fd: int) -> None:
        conn = self.clients.pop(fd, None)
        self._handlers.pop(fd, None)
        try:
            self._ep.unregister(fd)
        except (OSError, ValueError):
            pass
        if conn is not None:
            conn.close()

    def counters(self) -> dict[str, int]:
        return {
            "clients": len(self.clients),
            "received": self.received,
            "sent": self.sent,
            "errors": self.errors,
            "send_failures": self.send_failures,
        }

    def close(self) -> None:
        for fd in list(self.clients):
            self._drop(fd)
        self.sock.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
