"""The ``services`` section: data-plane processes the datapath hands packets to.

Where this sits: read by the node schema (``schema.py``).  Schema::

    services:
      socket: /run/edgelab/edge1-svc.sock   # the service transport (io/service.py)
      list:
        - name: dhcp-relay
          kind: dhcp-relay                 # python -m gateway.relay.dhcp
          mode: fail-closed                # or fail-open: what the packets get when it is gone or late
          queue: 64                        # punts in flight at most
          timeout_ms: 200
          dhcp: {server: 172.16.20.13}     # kind-specific: where requests are relayed
        - name: ftp-alg
          kind: ftp-alg                    # python -m gateway.alg.ftp: FTP control connections' payload
          ftp: {ports: [21]}               # the servers' control ports (default 21)

The daemon starts each service's process and restarts it when it exits.
"""

from __future__ import annotations

from typing import Any

from gateway.config.reader import Reader
from gateway.io.service import ServiceConfig

# kind -> (module, what it takes by default)
KINDS = {"dhcp-relay": (["gateway.relay.dhcp"], [(17, 67)]), "ftp-alg": (["gateway.alg.ftp"], [(6, 21)])}


def parse_services(r: Reader, value: Any, node: str) -> tuple[str, list[ServiceConfig]]:
    body = r.mapping(value, "services", ("list",), ("socket",))
    sock = r.path(body.get("socket", f"/run/edgelab/{node}-svc.sock"), "services.socket")
    out: list[ServiceConfig] = []
    for i, sv in enumerate(r.sequence(body["list"], "services.list")):
        path = f"services.list[{i}]"
        sb = r.mapping(sv, path, ("name", "kind"), ("mode", "queue", "timeout_ms", "dhcp", "ftp"))
        name = r.name(sb["name"], f"{path}.name")
        if any(s.name == name for s in out):
            raise r.fail(f"{path}.name", f"service {name!r} is defined twice")
        kind = r.choice(sb["kind"], f"{path}.kind", tuple(KINDS), f"a service kind; one of: {', '.join(KINDS)}")
        mode = r.choice(
            sb.get("mode", "fail-closed"), f"{path}.mode", ("fail-closed", "fail-open"), "fail-closed or fail-open"
        )
        queue = r.integer(sb.get("queue", 64), f"{path}.queue", 1, 65536)
        timeout = r.integer(sb.get("timeout_ms", 200), f"{path}.timeout_ms", 1, 60000) / 1000
        options: dict[str, Any] = {}
        if kind == "dhcp-relay":
            db = r.mapping(sb.get("dhcp"), f"{path}.dhcp", ("server",), ())
            options["server"] = str(r.address(db["server"], f"{path}.dhcp.server"))
        module, punts = KINDS[kind]
        if kind == "ftp-alg" and sb.get("ftp") is not None:
            fb = r.mapping(sb["ftp"], f"{path}.ftp", (), ("ports",))
            ports = r.sequence(fb.get("ports", [21]), f"{path}.ftp.ports")
            if not ports:
                raise r.fail(f"{path}.ftp.ports", "at least one control port")
            punts = [(6, r.integer(p, f"{path}.ftp.ports[{j}]", 1, 65535)) for j, p in enumerate(ports)]
        for other in (k for k in ("dhcp", "ftp") if k in sb and k != kind.split("-")[0]):
            raise r.fail(f"{path}.{other}", f"a {kind} service takes no {other} section")
        taken = {p for s in out for p in s.punts}
        if taken & set(punts):
            raise r.fail(path, f"another service already takes what {kind} takes")
        command = ["-m", *module, "--service", name]
        out.append(ServiceConfig(name, command, mode, queue, timeout, list(punts), options))
    return sock, out
