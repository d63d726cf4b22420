"""DHCP through the gateway's relay (edge-basic): real clients, a real server.

dnsmasq on t3 (the app segment) serves 172.16.10.0/24 to relayed requests in
two ranges chosen by option 82's circuit-id: one for the trunk's VLAN 10, one
for the untagged access port — both are instance ``web``, one subnet, one
giaddr, so only the circuit-id can tell them apart.  dhclient on t1 (trunk,
VLAN 10) and t4 (access) must each get an address from its own range.  The
clients keep their static addresses (their script does nothing).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from suites.lib import dhcp
from topologies.nodes import run

pytestmark = pytest.mark.needs("dhcp.relay")


@pytest.fixture(scope="module")
def dhcp_server(lab: Any) -> Iterator[dhcp.Server]:
    try:
        server = dhcp.Server(lab)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield server
    finally:
        server.stop()


def lease(lab: Any, host: str, server: dhcp.Server) -> str:
    addr = dhcp.lease(lab, host, server)
    assert addr is not None, f"{host} got no lease; the server said:\n{server.log()[-1500:]}"
    return addr


def test_clients_get_addresses_by_the_circuit_they_came_in_on(lab: Any, dhcp_server: dhcp.Server) -> None:
    got = {host: lease(lab, host, dhcp_server) for host in ("t1", "t4")}
    for host, addr in got.items():
        assert dhcp.in_range(addr, *dhcp.RANGES[dhcp.CIRCUIT[host]]), got
    log = dhcp_server.log()
    assert "172.16.10.1" in log, "the server did not see the relay's giaddr"
    # The clients' addresses did not change: their script does nothing.
    assert "172.16.10.11/24" in run(lab.host("t1"), ["ip", "-4", "addr", "show"]).stdout


@pytest.mark.needs("internals.show", "fault.process")
def test_a_killed_relay_is_restarted_and_what_came_meanwhile_is_counted(lab: Any, dhcp_server: dhcp.Server) -> None:
    import os
    import signal
    import time

    from suites.lib.expect import poll

    gw = lab.gateway("edge1")

    def relay() -> dict[str, Any]:
        for listener in gw.show("listeners"):
            if "services" in listener:
                return dict(listener["services"]["dhcp-relay"])
        raise AssertionError("the gateway runs no service supervisor")

    before = relay()
    os.kill(before["pid"], signal.SIGKILL)
    # While it is gone (fail-closed), a client's broadcasts are dropped and counted ...
    node = lab.host("t2")
    for _ in range(3):
        run(node, ["python3", "-c", _DISCOVER, node.defaultIntf().name])
        time.sleep(0.05)
    poll(lambda: relay()["restarts"] == before["restarts"] + 1, timeout=10, what="the relay restarted")
    counts = gw.show("services")["dhcp-relay"]
    assert counts["failed_closed"] >= 1, counts
    # ... and once it is back, clients get their leases again.
    poll(lambda: gw.show("services")["dhcp-relay"]["connected"], timeout=10, what="the relay registered again")
    assert dhcp.in_range(lease(lab, "t1", dhcp_server), *dhcp.RANGES["trunk:10"])


# A DHCP discover broadcast from a host, sent with a raw socket (no client needed).
_DISCOVER = r"""
import socket, struct, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
mac = s.getsockname()[4]
bootp = struct.pack("!BBBBIHHIIII16s", 1, 1, 6, 0, 0x5eed, 0, 0x8000, 0, 0, 0, 0, mac + bytes(10))
bootp += bytes(192) + b"\x63\x82\x53\x63\x35\x01\x01\xff"
udp = struct.pack("!HHHH", 68, 67, 8 + len(bootp), 0) + bootp
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, bytes(4), b"\xff" * 4)
c = sum(struct.unpack("!10H", ip)); c = (c & 0xFFFF) + (c >> 16); c = ~(c + (c >> 16)) & 0xFFFF
ip = ip[:10] + struct.pack("!H", c) + ip[12:]
s.send(b"\xff" * 6 + mac + b"\x08\x00" + ip + udp)
"""
