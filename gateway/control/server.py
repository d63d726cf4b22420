"""The control socket: a unix stream socket speaking JSON lines.

Where this sits: polled by the datapath loop (``Datapath.run``) with the
ports; never blocks.  Each line a client sends is one request; each answer is
one line.  A line that is not JSON, or longer than 1 MiB, gets an error
answer and is counted; a client that vanishes mid-answer costs nothing.
"""

from __future__ import annotations

import json
import socket
from typing import TYPE_CHECKING, Any

from gateway.control.commands import handle
from gateway.io.unix import UnixListener

if TYPE_CHECKING:
    from gateway.datapath import Datapath

MAX_LINE = 1 << 20


class ControlServer(UnixListener):
    def __init__(self, dp: Datapath, path: str) -> None:
        super().__init__(path, "gateway")
        self.dp = dp
        self._buffers: dict[int, bytearray] = {}

    def accepted(self, fd: int) -> None:
        self._buffers[fd] = bytearray()

    def readable(self, fd: int, conn: socket.socket) -> None:
        buf = self._buffers[fd]
        try:
            data = conn.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.drop(fd)
            return
        buf += data
        while b"\n" in buf:
            line, _, rest = bytes(buf).partition(b"\n")
            buf[:] = rest
            self._answer(fd, conn, line)
            if fd not in self.clients:
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
            self.drop(fd)

    def drop(self, fd: int) -> None:
        self._buffers.pop(fd, None)
        super().drop(fd)
