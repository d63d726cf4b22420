"""A non-blocking unix-socket listener polled by the datapath loop.

Where this sits: the base of the control socket (``control/server.py``,
stream, JSON lines) and of the process transport (``io/ipc.py``, seqpacket).
It owns what both need: a stale socket file from a dead daemon is replaced, a
live one is refused; the socket file is created owner-only (0600); clients
are accepted and registered in the loop's epoll; a client that goes away is
unregistered and closed.  Subclasses say what to do with a readable client
(:meth:`readable`).

Limits, so that no client can take the loop or the memory: at most
``max_clients`` at once (one more is accepted and closed at once, counted
``refused``); when ``accept()`` fails for want of descriptors or memory the
listener stops listening (counted ``accept_errors``) until a client leaves or
the next timer tick, instead of being woken for the same pending connection
in a loop.  A peer that is neither root nor the daemon's user (SO_PEERCRED)
is refused too.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# accept() failures that last until something is freed: stop listening meanwhile.
_RESOURCE_ERRORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
_CRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


def connect(path: str, kind: int, timeout: float, what: str = "datapath") -> socket.socket:
    """A process's connection to a listener at ``path`` (blocking), retried until it listens,
    at most ``timeout`` s: the daemon may still be starting."""
    deadline = time.monotonic() + timeout
    while True:
        sock = socket.socket(socket.AF_UNIX, kind)
        try:
            sock.connect(path)
            return sock
        except OSError as exc:
            sock.close()
            if time.monotonic() > deadline:
                raise OSError(f"no {what} listening on {path}: {exc.strerror}") from None
            time.sleep(0.2)


class UnixListener:
    kind = socket.SOCK_STREAM
    max_clients = 16

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
        old = os.umask(0o177)  # the socket file is born 0600: no window where others may connect
        try:
            self.sock.bind(path)
        finally:
            os.umask(old)
        self.sock.listen(16)
        self.sock.setblocking(False)
        self.clients: dict[int, socket.socket] = {}
        self._ep: Any = None
        self._handlers: dict[int, Any] = {}
        self._listening = False
        self.accepted_total = 0
        self.refused = 0
        self.accept_errors = 0

    def attach(self, ep: Any, handlers: dict[int, Any]) -> None:
        self._ep = ep
        self._handlers = handlers
        handlers[self.sock.fileno()] = self._accept
        self._listen(True)

    def _listen(self, on: bool) -> None:
        if self._ep is None or on == self._listening:
            return
        fd = self.sock.fileno()
        if on:
            self._ep.register(fd, select.EPOLLIN)
        else:
            self._ep.unregister(fd)
        self._listening = on

    def _accept(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except BlockingIOError:
            return
        except OSError as exc:
            self.accept_errors += 1
            if exc.errno in _RESOURCE_ERRORS:
                self._listen(False)  # back at the next tick, or when a client leaves
            return
        if len(self.clients) >= self.max_clients or not self._trusted(conn):
            self.refused += 1
            self.refuse(conn)
            conn.close()
            return
        conn.setblocking(False)
        fd = conn.fileno()
        self.clients[fd] = conn
        self.accepted_total += 1
        self.accepted(fd)
        self._handlers[fd] = lambda fd=fd: self._serve(fd)
        self._ep.register(fd, select.EPOLLIN)

    @staticmethod
    def _trusted(conn: socket.socket) -> bool:
        """Only root and the daemon's own user may talk to it (the file mode says the same;
        this holds even if someone loosens it)."""
        try:
            _pid, uid, _gid = _CRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CRED.size))
        except OSError:
            return False
        return uid in (0, os.getuid())

    def _serve(self, fd: int) -> None:
        conn = self.clients.get(fd)
        if conn is not None:
            self.readable(fd, conn)

    def accepted(self, fd: int) -> None:
        """A client connected (per-client state goes here)."""

    def refuse(self, conn: socket.socket) -> None:
        """A client over the limit, about to be closed (a subclass may say why first)."""

    def readable(self, fd: int, conn: socket.socket) -> None:
        raise NotImplementedError

    def datagrams(self, fd: int, conn: socket.socket, size: int, limit: int = 64) -> Iterator[bytes]:
        """The messages waiting on a client of a datagram listener, at most ``limit`` at a
        time (the loop has other work); a client that went away is dropped."""
        for _ in range(limit):
            try:
                data = conn.recv(size)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self.drop(fd)
                return
            yield data

    def tick(self) -> None:
        """Timer work: listen again after running out of descriptors."""
        self._listen(True)

    def drop(self, fd: int) -> None:
        conn = self.clients.pop(fd, None)
        self._handlers.pop(fd, None)
        try:
            self._ep.unregister(fd)
        except (OSError, ValueError, AttributeError):
            pass
        if conn is not None:
            conn.close()
        self._listen(True)

    def listener_counters(self) -> dict[str, int]:
        return {
            "clients": len(self.clients),
            "accepted": self.accepted_total,
            "refused": self.refused,
            "accept_errors": self.accept_errors,
        }

    def close(self) -> None:
        self._listening = False
        self._ep = None  # the loop's epoll may be closed already
        for fd in list(self.clients):
            self.drop(fd)
        self.sock.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
