"""The control socket: a unix stream socket speaking JSON lines.

Where this sits: polled by the datapath loop (``loop.py``) with the
ports; never blocks.  Each line a client sends is one request; each answer is
one line.  A line that is not JSON, nests too deep, or is longer than
``MAX_LINE`` gets an error answer and is counted; a client that vanishes
mid-answer costs nothing.

No client can hold the loop or the memory: answers are written without
blocking; what a client has not taken yet waits in its own buffer, and while
it waits the client's further requests are not read (epoll watches it for
writing only), so a client that never reads holds one answer, not a pile.
A request line may be at most ``MAX_LINE`` bytes; the rest of an overlong
line is discarded up to its newline.  The listener bounds the number of
clients (``io/unix.py``).
"""

from __future__ import annotations

import json
import select
import socket
from typing import TYPE_CHECKING, Any

from gateway.control.commands import Control
from gateway.io.unix import UnixListener

if TYPE_CHECKING:
    from gateway.datapath import Datapath

MAX_LINE = 64 * 1024
_READ = 65536


class _Client:
    __slots__ = ("inbuf", "outbuf", "discarding", "writing")

    def __init__(self) -> None:
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.discarding = False  # inside an overlong line: skip to its newline
        self.writing = False  # epoll watches it for EPOLLOUT (an answer is waiting)


class ControlServer(UnixListener):
    def __init__(self, dp: Datapath, path: str) -> None:
        super().__init__(path, "gateway")
        self.control = Control(dp)
        self._state: dict[int, _Client] = {}

    def accepted(self, fd: int) -> None:
        self._state[fd] = _Client()

    def refuse(self, conn: socket.socket) -> None:
        try:
            conn.send(b'{"ok": false, "error": "too many control clients; try again later"}\n')
        except OSError:
            pass

    def readable(self, fd: int, conn: socket.socket) -> None:
        c = self._state[fd]
        if c.outbuf:
            self._flush(fd, conn, c)
            if fd not in self.clients or c.outbuf:
                return
            self._process(fd, conn, c)  # lines that waited behind the answer
            if fd not in self.clients or c.outbuf:
                return
        try:
            data = conn.recv(_READ)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.drop(fd)
            return
        c.inbuf += data
        self._process(fd, conn, c)

    def _process(self, fd: int, conn: socket.socket, c: _Client) -> None:
        buf = c.inbuf
        while not c.outbuf:
            nl = buf.find(b"\n")
            if nl < 0:
                break
            line = bytes(buf[:nl])
            del buf[: nl + 1]
            if c.discarding:
                c.discarding = False  # the end of an overlong line
                continue
            self._answer(fd, conn, c, line)
            if fd not in self.clients:
                return
        if len(buf) > MAX_LINE and not c.outbuf:
            buf.clear()
            c.discarding = True
            self._send(fd, conn, c, self.control.refused(f"request longer than {MAX_LINE} bytes"))
        elif c.discarding:
            buf.clear()

    def _answer(self, fd: int, conn: socket.socket, c: _Client, line: bytes) -> None:
        if not line.strip():
            return
        try:
            req = json.loads(line)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            why = "it nests too deep" if isinstance(exc, RecursionError) else str(exc)
            resp: dict[str, Any] = self.control.refused(f"request is not valid JSON: {why}")
        else:
            resp = self.control.handle(req)
        self._send(fd, conn, c, resp)

    def _send(self, fd: int, conn: socket.socket, c: _Client, resp: dict[str, Any]) -> None:
        c.outbuf += (json.dumps(resp) + "\n").encode()
        self._flush(fd, conn, c)

    def _flush(self, fd: int, conn: socket.socket, c: _Client) -> None:
        """Write what the client will take now; wait for EPOLLOUT for the rest."""
        try:
            while c.outbuf:
                n = conn.send(c.outbuf)
                del c.outbuf[:n]
        except BlockingIOError:
            pass
        except OSError:
            self.drop(fd)
            return
        if bool(c.outbuf) != c.writing and self._ep is not None:
            c.writing = bool(c.outbuf)
            self._ep.modify(fd, select.EPOLLOUT if c.writing else select.EPOLLIN)

    def drop(self, fd: int) -> None:
        self._state.pop(fd, None)
        super().drop(fd)

    def counters(self) -> dict[str, int]:
        return {**self.control.counters(), **self.listener_counters()}
