"""The control socket: a unix stream socket speaking JSON lines.

Where this sits: polled by the datapath loop (``Datapath.run``) with the
ports; never blocks.  Each line a client sends is one request; each answer is
one line.  A line that is not JSON, or longer than 1 MiB, gets an error
answer and is counted; a client that vanishes mid-answer costs nothing.
"""

from __future__ import annotations

import json
import os
import select
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.control.commands import handle

if TYPE_CHECKING:
    from gateway.datapath import Datapath

MAX_LINE = 1 << 20


class ControlServer:
    def __init__(self, dp: Datapath, path: str) -> None:
        self.dp = dp
        self.path = path
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        if os.path.exists(path):
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(path)
            except OSError:
                os.unlink(path)  # stale socket of a daemon that died
            else:
                probe.close()
                raise OSError(f"another gateway is already serving {path}")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(16)
        self.sock.setblocking(False)
        self._clients: dict[int, tuple[socket.socket, bytearray]] = {}
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
        self._clients[fd] = (conn, bytearray())
        self._handlers[fd] = lambda fd=fd: self._readable(fd)
        self._ep.register(fd, select.EPOLLIN)

    def _readable(self, fd: int) -> None:
        conn, buf = self._clients[fd]
        try:
            data = conn.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop(fd)
            return
        buf += data
        while b"\n" in buf:
            line, _, rest = bytes(buf).partition(b"\n")
            buf[:] = rest
            self._answer(fd, conn, line)
            if fd not in self._clients:
                return
        if len(buf) > MAX_LINE:
            buf.clear()
            self.dp.control_requests += 1
            self.dp.control_errors += 1
            self._send(fd, conn, {"ok": False, "error": f"request longer than {MAX_LINE} bytes"})

    def _answer(self, fd: int, conn: socket.socket, line: bytes) -> None:
        if not line.strip():
            return
        try:
            req = json.loads(line)
        except (ValueError, UnicodeDecodeError) as exc:
            self.dp.control_requests += 1
            self.dp.control_errors += 1
            resp: dict[str, Any] = {"ok": False, "error": f"request is not valid JSON: {exc}"}
        else:
            resp = handle(self.dp, req)
        self._send(fd, conn, resp)

    def _send(self, fd: int, conn: socket.socket, resp: dict[str, Any]) -> None:
        data = (json.dumps(resp) + "\n").encode()
        try:
            # Answers are small; a client too slow to take one in 2 s is dropped.
            conn.settimeout(2.0)
            conn.sendall(data)
            conn.setblocking(False)
        except OSError:
            self._drop(fd)

    def _drop(self, fd: int) -> None:
        conn, _ = self._clients.pop(fd)
        self._handlers.pop(fd, None)
        try:
            self._ep.unregister(fd)
        except (OSError, ValueError):
            pass
        conn.close()

    def close(self) -> None:
        for fd in list(self._clients):
            self._drop(fd)
        self.sock.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
