"""``python -m gateway.mgmt_web``: the gateway's read-only management page over HTTP.

Where this sits: started in the management namespace (the kernel transport's
``<node>-mgmt``, ``kernel.py``), so it is reached in band, at the management
address on the uplink, by the prefixes the config allows and nobody else.

    GET /node          the node's name
    GET /show/WHAT     the control socket's ``show WHAT`` as JSON (read-only)

It binds with ``socketserver.TCPServer`` (``http.server.HTTPServer`` would look
its own name up in the DNS first, and a namespace has no resolver to ask).
"""

from __future__ import annotations

import argparse
import json
import socketserver
import sys
from http.server import BaseHTTPRequestHandler
from typing import Any

from gateway.control.client import ControlClient, ControlError


def handler(node: str, control: ControlClient) -> type[BaseHTTPRequestHandler]:
    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches on
            if self.path == "/node":
                self._answer(200, "text/plain", node + "\n")
            elif self.path.startswith("/show/"):
                try:
                    body = json.dumps(control.show(self.path[len("/show/") :]), indent=2) + "\n"
                    self._answer(200, "application/json", body)
                except ControlError as exc:
                    self._answer(502, "text/plain", f"{exc}\n")
            else:
                self._answer(404, "text/plain", "GET /node or /show/WHAT\n")

        def _answer(self, status: int, kind: str, body: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, fmt: str, *args: Any) -> None:
            sys.stderr.write(f"mgmt: {self.client_address[0]} {fmt % args}\n")

    return Page


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m gateway.mgmt_web")
    ap.add_argument("--bind", required=True, help="the management address")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--node", required=True)
    ap.add_argument("--control", required=True, help="the gateway's control socket")
    args = ap.parse_args(argv)
    try:
        server = Server((args.bind, args.port), handler(args.node, ControlClient(args.control)))
    except OSError as exc:
        print(f"mgmt: cannot listen on {args.bind}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"mgmt: {args.node} on http://{args.bind}:{args.port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
