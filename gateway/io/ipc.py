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
import socket
from typing import TYPE_CHECKING, Any

from gateway.io.unix import UnixListener

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


class IpcServer(UnixListener):
    kind = socket.SOCK_SEQPACKET

    def __init__(self, dp: Datapath, path: str) -> None:
        super().__init__(path, "datapath")
        self.dp = dp
        self.received = 0
        self.sent = 0
        self.errors = 0
        self.send_failures = 0

    def readable(self, fd: int, conn: socket.socket) -> None:
        for _ in range(64):
            try:
                data = conn.recv(MAX_MESSAGE)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self.drop(fd)
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
            self.drop(fd)

    def counters(self) -> dict[str, int]:
        return {
            "clients": len(self.clients),
            "received": self.received,
            "sent": self.sent,
            "errors": self.errors,
            "send_failures": self.send_failures,
        }
