"""Unix-socket transport between the datapath and other processes.

Where this sits: polled by the datapath loop like the ports.  A process (the
HA agent first) connects to a SOCK_SEQPACKET socket; every message is one
datagram: a JSON metadata line, a newline, then the frame or packet bytes
(possibly empty)::

    {"type": "packet", "router": "t1-sr", "port": "t1-sr:transit"}\\n<IPv4 packet>

Datapath -> process: ``packet`` (a punted packet; which router and port got it).
A process first says who it is, ``{"type": "hello", "client": "ha"}``: it then
gets the packets punted to that name (``ha``: BFD and hellos; ``evi``: the EVI
control protocol), and a process that never said hello gets every punted
packet (a debugging listener).
Process -> datapath: one handler per message type, registered by the owner of
the server (:class:`IpcServer` dispatches, nothing else): ``send`` (an IPv4
packet for a router to route as its own: the datapath's), ``takeover`` /
``release`` / ``yield`` / ``claim`` / ``announce`` / ``status`` (address
ownership: ``ha/ownership.py``).  A handler returns the answer to send back,
or None.  A malformed message, or one of a type nobody handles, gets an
``error`` answer and is counted; the connection stays.  A message that trips
a bug is answered and counted the same way (``internal_errors``).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from typing import Any

from gateway.bugs import report_bug
from gateway.io import unix
from gateway.io.unix import UnixListener

Handler = Callable[[dict[str, Any], bytes], "dict[str, Any] | None"]

MAX_MESSAGE = 65536


def _why(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "metadata nests too deep"
    if isinstance(exc, KeyError):
        return f"missing field {exc}"
    return str(exc)


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


# -- the process's side ----------------------------------------------------------------------
def connect(path: str, client: str, timeout: float = 20.0) -> socket.socket:
    """Connect a process to the datapath's transport at ``path`` and say hello as ``client``
    (retried until the datapath listens, at most ``timeout`` s); the socket is non-blocking."""
    sock = unix.connect(path, socket.SOCK_SEQPACKET, timeout)
    sock.send(encode({"type": "hello", "client": client}))
    sock.setblocking(False)
    return sock


def send_nowait(sock: socket.socket | None, meta: dict[str, Any], payload: bytes = b"") -> bool:
    """Send one message; False when the datapath is busy (the message is lost: the sender's
    next round repeats what matters) or there is no socket."""
    if sock is None:
        return False
    try:
        sock.send(encode(meta, payload))
    except BlockingIOError:
        return False
    return True


def received(sock: socket.socket) -> Iterator[tuple[dict[str, Any], bytes]]:
    """The messages waiting on a non-blocking socket; one that does not decode is skipped.
    Raises ConnectionError when the datapath closed it."""
    while True:
        try:
            data = sock.recv(MAX_MESSAGE)
        except BlockingIOError:
            return
        if not data:
            raise ConnectionError("the datapath closed the socket")
        try:
            yield decode(data)
        except ValueError:
            continue


class IpcServer(UnixListener):
    kind = socket.SOCK_SEQPACKET

    def __init__(self, path: str, handlers: dict[str, Handler]) -> None:
        super().__init__(path, "datapath")
        self.handlers = handlers
        self.received = 0
        self.sent = 0
        self.errors = 0
        self.send_failures = 0
        self.internal_errors = 0
        self.names: dict[int, str] = {}  # client fd -> the name it said hello with

    def drop(self, fd: int) -> None:
        self.names.pop(fd, None)
        super().drop(fd)

    def _hello(self, fd: int, meta: dict[str, Any]) -> dict[str, Any]:
        name = meta.get("client")
        if not isinstance(name, str) or not name or len(name) > 32:
            raise ValueError("hello needs a 'client' name (a string of 1-32 characters)")
        self.names[fd] = name
        return {"type": "hello", "client": name}

    def readable(self, fd: int, conn: socket.socket) -> None:
        for data in self.datagrams(fd, conn, MAX_MESSAGE):
            self.received += 1
            try:
                meta, payload = decode(data)
                if meta["type"] == "hello":
                    self._send(fd, conn, encode(self._hello(fd, meta)))
                    continue
                handler = self.handlers.get(meta["type"])
                if handler is None:
                    raise ValueError(f"unknown message type {meta['type']!r}; known: {', '.join(self.handlers)}")
                answer = handler(meta, payload)
            except (ValueError, KeyError, TypeError, RecursionError) as exc:
                self.errors += 1
                answer = {"type": "error", "error": _why(exc)}
            except Exception as exc:  # noqa: BLE001 - a bug costs this message, never the daemon
                self.errors += 1
                self.internal_errors += 1
                report_bug(self.internal_errors, f"on an IPC message {data[:120]!r}")
                answer = {"type": "error", "error": f"internal error ({type(exc).__name__})"}
            if answer is not None:
                self._send(fd, conn, encode(answer))

    def deliver(self, client: str, meta: dict[str, Any], payload: bytes) -> bool:
        """Send to the processes named ``client`` (and to those with no name); False when
        none of them is connected."""
        names = self.names
        targets = [(fd, conn) for fd, conn in self.clients.items() if names.get(fd, client) == client]
        if not targets:
            return False
        data = encode(meta, payload)
        for fd, conn in targets:
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
            "received": self.received,
            "sent": self.sent,
            "errors": self.errors,
            "send_failures": self.send_failures,
            "internal_errors": self.internal_errors,
            **self.listener_counters(),
        }
