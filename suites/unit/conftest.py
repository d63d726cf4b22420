"""Unit-test fixtures: a datapath on in-memory ports, no root, no sockets."""

from __future__ import annotations

from collections import deque

import pytest

from gateway import config
from gateway.cache import Cache
from gateway.control.commands import Control
from gateway.datapath import Datapath
from gateway.headers import ETH_P_8021Q
from gateway.port import Port

EDGE_YAML = """
node: edge1
control_socket: /tmp/edgelab-unit.sock
ports:
  trunk: {ifname: edge1-eth0, role: tenant}
  uplink: {ifname: edge1-eth1, role: uplink}
instances:
  web: {records: [{port: trunk, vlan: 10}]}
  app: {records: [{port: trunk, vlan: 20}]}
  provider: {records: [{port: uplink}]}
routers:
  - name: t1
    tlr_id: 1
    dr:
      ports:
        - {instance: web, ip: 172.16.10.1/24, mac: "02:00:00:00:10:01"}
        - {instance: app, ip: 172.16.20.1/24, mac: "02:00:00:00:20:01"}
    sr:
      ports:
        - {instance: provider, ip: 203.0.113.1/24, mac: "02:00:00:00:cb:01"}
    transit: {subnet: 169.254.0.0/28, dr: 169.254.0.1, sr: 169.254.0.2}
"""


@pytest.fixture(autouse=True)
def verify_cache_dependencies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every cache hit in the unit tests also checks the entry's dependencies and fails
    if one changed without an epoch bump (gateway/epoch.py)."""
    monkeypatch.setattr(Cache, "verify", True)


class FakeWire:
    """An in-memory transport (``gateway.io.Transport``): frames the datapath sent are kept, tagged inline."""

    poll_interval = None

    def __init__(self) -> None:
        self.sent: deque[bytes] = deque()

    def fileno(self) -> int:
        return -1

    def filenos(self) -> tuple[int, ...]:
        return (self.fileno(),)

    def take_error(self) -> int:
        return 0

    def counters(self) -> dict[str, int]:
        return {"rx_dropped": 0, "tx_dropped": 0, "rx_resyncs": 0}

    def recv_batch(self, limit: int, readable: bool = True) -> list:
        return []

    def send(self, frame: bytes | bytearray) -> None:
        self.sent.append(bytes(frame))

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class Rig:
    """A datapath with fake wires and helpers to feed it frames."""

    def __init__(self, text: str = EDGE_YAML) -> None:
        self.cfg = config.parse(text, "unit.yaml")
        self.dp = Datapath(self.cfg)
        self.control = Control(self.dp)
        self.wires = {name: FakeWire() for name in self.dp.model.ports}
        for name, wire in self.wires.items():
            self.dp.attach(name, wire)

    def handle(self, req) -> dict:
        """One control request, as the control socket would answer it."""
        return self.control.handle(req)

    def port(self, name: str) -> Port:
        return self.dp.model.ports[name]

    def send(self, port: str, frame: bytes, trace: bool = False):
        """Receive ``frame`` on ``port``; an inline 802.1Q tag is passed out of band as the kernel does."""
        buf = bytearray(frame)
        vlan = None
        if len(buf) >= 18 and int.from_bytes(buf[12:14], "big") == ETH_P_8021Q:
            vlan = int.from_bytes(buf[14:16], "big") & 0xFFF
            del buf[12:16]
        if trace:
            self.dp.trace_budget = 1
        return self.dp.receive(self.port(port), buf, vlan)

    def take(self, port: str) -> list[bytes]:
        wire = self.wires[port]
        out = list(wire.sent)
        wire.sent.clear()
        return out

    def drops(self) -> dict[str, int]:
        return self.dp.pipeline.drops()


@pytest.fixture
def rig() -> Rig:
    return Rig()
