"""The reference gateway as a DUT: ``python -m gateway`` on a GatewayNode.

The config comes from the plan (``gateways.NAME.config``) with the control
socket placed in the lab's run directory; the daemon's output goes to
``RUNDIR/NAME.log``.  ``start`` returns once the control socket answers.
"""

from __future__ import annotations

import copy
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from gateway.control.client import ControlClient, ControlError
from suites.duts.base import DutDriver, GatewayHandle
from topologies.nodes import GatewayNode

READY_TIMEOUT = 20.0


class ReferenceGateway(GatewayHandle):
    capabilities = frozenset({"show", "trace", "counters", "drops"})

    def __init__(self, name: str, proc: subprocess.Popen[bytes], sock: str, log: Path, cfg: Path) -> None:
        self.name = name
        self.proc = proc
        self.client = ControlClient(sock)
        self.socket = sock
        self.log = log
        self.config = cfg
        self.agent: subprocess.Popen[bytes] | None = None
        self.agent_log: Path | None = None

    def show(self, what: str = "summary") -> Any:
        return self.client.show(what)

    def request(self, req: dict[str, Any]) -> Any:
        return self.client.request(req)

    def trace_inject(self, port: str, frame: bytes) -> Any:
        return self.client.trace_inject(port, frame)

    def alive(self) -> bool:
        if self.proc.poll() is not None:
            return False
        try:
            self.client.ping()
        except ControlError:
            return False
        return True

    def log_text(self) -> str:
        try:
            return self.log.read_text()
        except OSError:
            return ""

    def agent_text(self) -> str:
        try:
            return self.agent_log.read_text() if self.agent_log else ""
        except OSError:
            return ""


class ReferenceDriver(DutDriver):
    name = "reference"
    node_cls = GatewayNode

    def __init__(self, lab: Any) -> None:
        super().__init__(lab)
        self._handles: dict[str, ReferenceGateway] = {}

    def start(self, gateway: str) -> ReferenceGateway:
        lab = self.lab
        spec = lab.plan["gateways"][gateway]
        cfg = copy.deepcopy(spec["config"])
        sock = str(lab.rundir / f"{gateway}.sock")
        cfg["control_socket"] = sock
        has_ha = False
        for router in cfg.get("routers", []):
            if router.get("ha") is not None:
                router["ha"]["socket"] = str(lab.rundir / f"{gateway}-{router['name']}-ha.sock")
                has_ha = True
        cfg_path = lab.rundir / f"{gateway}.yaml"
        cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        log_path = lab.rundir / f"{gateway}.log"
        node = lab.host(gateway)
        with open(log_path, "wb") as log:
            proc = node.popen(
                [sys.executable, "-u", "-m", "gateway", "--config", str(cfg_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=str(Path(__file__).resolve().parents[2]),
            )
        handle = ReferenceGateway(gateway, proc, sock, log_path, cfg_path)
        self._handles[gateway] = handle
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"gateway {gateway} exited with status {proc.returncode}: {handle.log_text().strip()[-2000:]}"
                )
            try:
                handle.client.ping()
                break
            except ControlError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"gateway {gateway} did not answer on {sock} within {READY_TIMEOUT:.0f} s: {handle.log_text()[-2000:]}"
                    ) from None
                time.sleep(0.1)
        if has_ha:
            # The HA agent: a separate process that talks BFD through the datapath's unix socket.
            handle.agent_log = lab.rundir / f"{gateway}-ha.log"
            with open(handle.agent_log, "ab") as log:
                handle.agent = node.popen(
                    [sys.executable, "-u", "-m", "gateway.ha.agent", "--config", str(cfg_path)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=str(Path(__file__).resolve().parents[2]),
                )
        return handle

    def stop(self, gateway: str) -> None:
        handle = self._handles.pop(gateway, None)
        if handle is None:
            return
        for proc in (handle.agent, handle.proc):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)

    def kill(self, gateway: str) -> None:
        """Kill the gateway's datapath hard (SIGKILL), as a crash would; the agent is left to notice."""
        handle = self._handles[gateway]
        handle.proc.kill()
        handle.proc.wait(timeout=5)
