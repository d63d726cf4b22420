"""A blocking client for the control socket (used by the CLI, topologies, suites)."""

from __future__ import annotations

import json
import socket
from typing import Any


class ControlError(Exception):
    """The gateway answered with an error, or could not be reached."""


class ControlClient:
    def __init__(self, path: str, timeout: float = 10.0) -> None:
        self.path = path
        self.timeout = timeout

    def request(self, req: dict[str, Any]) -> Any:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout)
                sock.connect(self.path)
                sock.sendall((json.dumps(req) + "\n").encode())
                buf = bytearray()
                while not buf.endswith(b"\n"):
                    chunk = sock.recv(1 << 16)
                    if not chunk:
                        break
                    buf += chunk
        except FileNotFoundError:
            raise ControlError(f"no gateway control socket at {self.path} (is the gateway running?)") from None
        except OSError as exc:
            raise ControlError(f"cannot talk to the gateway at {self.path}: {exc}") from None
        if not buf:
            raise ControlError(f"the gateway at {self.path} closed the connection without answering")
        resp = json.loads(buf)
        if not resp.get("ok"):
            raise ControlError(resp.get("error", "unknown error"))
        return resp["result"]

    def show(self, what: str = "summary") -> Any:
        return self.request({"cmd": "show", "what": what})

    def ping(self) -> Any:
        return self.request({"cmd": "ping"})

    def trace_inject(self, port: str, frame: bytes) -> Any:
        return self.request({"cmd": "trace", "action": "inject", "port": port, "frame": frame.hex()})
