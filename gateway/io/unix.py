"""A non-blocking unix-socket listener polled by the datapath loop.

Where this sits: the base of the control socket (``control/server.py``,
stream, JSON lines) and of the process transport (``io/ipc.py``, seqpacket).
It owns what both need: a stale socket file from a dead daemon is replaced, a
live one is refused; clients are accepted and registered in the loop's epoll;
a client that goes away is unregistered and closed.  Subclasses say what to
do with a readable client (:meth:`readable`).
"""

from __future__ import annotations

import os
import select
import socket
from pathlib import Path
from typing import Any


class UnixListener:
    kind = socket.SOCK_STREAM

    def __init__(self, path: str, what: str) -> None:
        self.path = path
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        if os.path.exists(path):
            probe = socket.socket(socket.AF_UNIX, self.kind)
            try:
                probe.connect(path)
            except OSError:
                os.unlink(path)  # stale socket of a process that died
            else:
                probe.close()
                raise OSError(f"another {what} is already serving {path}")
        self.sock = socket.socket(socket.AF_UNIX, self.kind)
        self.sock.bind(path)
        self.sock.listen(16)
        self.sock.setblocking(False)
        self.clients: dict[int, socket.socket] = {}
        self._ep: Any = None
        self._handlers: dict[int, Any] = {}

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
        self.accepted(fd)
        self._handlers[fd] = lambda fd=fd: self.readable(fd, self.clients[fd])
        self._ep.register(fd, select.EPOLLIN)

    def accepted(self, fd: int) -> None:
        """A client connected (per-client state goes here)."""

    def readable(self, fd: int, conn: socket.socket) -> None:
        raise NotImplementedError

    def drop(self, fd: int) -> None:
        conn = self.clients.pop(fd, None)
        self._handlers.pop(fd, None)
        try:
            self._ep.unregister(fd)
        except (OSError, ValueError, AttributeError):
            pass
        if conn is not None:
            conn.close()

    def close(self) -> None:
        for fd in list(self.clients):
            self.drop(fd)
        self.sock.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
