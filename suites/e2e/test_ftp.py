"""FTP through the gateway's NAT (edge-basic): real servers (pyftpdlib), real clients (curl, ftplib).

Active mode: t1, behind SNAT, fetches from a server on ext1 (the provider
router), announcing its data port with EPRT and with PORT.  Passive mode: ext2
(the provider's host) fetches from a server on t3 behind the ``t3-ftp`` port
forward (203.0.113.80:21), told the data endpoint with EPSV and with PASV.
Every file arrives with the server's sha256; the addresses the other side was
told are the public ones; a third host cannot take the announced port.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from suites.lib import ftp

pytestmark = pytest.mark.needs("alg.ftp", "nat.snat", "nat.dnat")

OUTSIDE_SERVER = "ext1"
FORWARDED = "203.0.113.80"  # the t3-ftp port forward's public address


@pytest.fixture(scope="module")
def servers(lab: Any) -> Iterator[dict[str, ftp.Server]]:
    started: dict[str, ftp.Server] = {}
    try:
        started["outside"] = ftp.Server(lab, OUTSIDE_SERVER, (60000, 60100))
        started["t3"] = ftp.Server(lab, "t3", (60100, 60200))
    except RuntimeError as exc:
        for s in started.values():
            s.stop()
        pytest.fail(str(exc))
    try:
        yield started
    finally:
        for s in started.values():
            s.stop()


@pytest.mark.parametrize("mode", ["eprt", "port"])
def test_active_mode_from_a_tenant_behind_snat(lab: Any, servers: dict[str, ftp.Server], mode: str) -> None:
    server = servers["outside"]
    pool = lab.plan["nat"]["pool"]
    seen = len(server.log())  # this test's lines only: the server runs for the whole module
    for name, want in server.sums.items():
        got, log = ftp.download(lab, "t1", f"ftp://{server.address}/{name}", mode)
        assert got == want, f"{name} in {mode} mode did not arrive intact:\n{log[-1500:]}"
    # What the server was told: a public address of the pool, never the tenant's own.
    told = re.findall(r"(?:EPRT \|1\|([\d.]+)\||PORT (\d+,\d+,\d+,\d+),)", server.log()[seen:])
    assert told, f"the server logged no {mode.upper()}:\n{server.log()[-1500:]}"
    addrs = {a or b.replace(",", ".") for a, b in told}
    assert addrs <= set(pool), f"the server was told {addrs}, not an address of the pool {pool}"


@pytest.mark.parametrize("mode", ["epsv", "pasv"])
def test_passive_mode_to_a_server_behind_a_port_forward(lab: Any, servers: dict[str, ftp.Server], mode: str) -> None:
    server = servers["t3"]
    for name, want in server.sums.items():
        got, log = ftp.download(lab, "ext2", f"ftp://{FORWARDED}/{name}", mode)
        assert got == want, f"{name} in {mode} mode did not arrive intact:\n{log[-1500:]}"
        if mode == "pasv":
            # The 227 the client read names the public address (the server wrote its own).
            m = re.search(r"227 Entering Passive Mode \((\d+),(\d+),(\d+),(\d+),", log, re.I)
            assert m is not None, log[-1500:]
            assert ".".join(m.groups()) == FORWARDED, f"the client was told {m.groups()}"


def test_a_third_host_cannot_take_the_announced_port(lab: Any, servers: dict[str, ftp.Server]) -> None:
    server = servers["t3"]
    session = ftp.Session(lab, "ext2", FORWARDED, "medium.bin")
    try:
        assert session.endpoint[0] == FORWARDED, session.endpoint
        # ext1 is not the client the server announced the port to: refused.
        assert not ftp.connects(lab, "ext1", session.endpoint), "a third host reached the announced data port"
        # The client itself still gets its data connection.
        assert session.go() == server.sums["medium.bin"]
    finally:
        session.close()


@pytest.mark.needs("internals.show", "fault.process")
def test_a_killed_alg_fails_closed_and_is_restarted(lab: Any, gw: Any, servers: dict[str, ftp.Server]) -> None:
    import os
    import signal
    from concurrent.futures import ThreadPoolExecutor

    from suites.lib.expect import poll

    def alg() -> dict[str, Any]:
        for listener in gw.show("listeners"):
            if "services" in listener:
                return dict(listener["services"]["ftp-alg"])
        raise AssertionError("the gateway runs no service supervisor")

    server = servers["outside"]
    before_counts = gw.show("services")["ftp-alg"]
    before = alg()
    # The ALG is frozen first: the supervisor sees it running and leaves it, so the control
    # connection's first payload is punted to it and waits there.  Then it is killed with that
    # punt in hand.  (Killing it outright would race the supervisor's one-second tick: a
    # restart landing before the client's first payload leaves nothing to fail closed.)
    os.kill(before["pid"], signal.SIGSTOP)
    killed = False
    try:
        with ThreadPoolExecutor(1) as pool:
            fetch = pool.submit(ftp.download, lab, "t1", f"ftp://{server.address}/small.bin", "eprt")
            poll(lambda: gw.show("services")["ftp-alg"]["sent"] > before_counts["sent"], timeout=10,
                 interval=0.02, what="the control connection's payload punted to the ALG")  # fmt: skip
            os.kill(before["pid"], signal.SIGKILL)
            killed = True
            # The held payload is dropped (fail-closed) and counted; the client's
            # retransmissions get through once the supervisor has started the ALG again.
            poll(lambda: alg()["restarts"] == before["restarts"] + 1, timeout=10, what="the ALG restarted")
            got, log = fetch.result(timeout=60)
    finally:
        if not killed:  # (a failed wait must not leave the ALG frozen for the tests after)
            os.kill(before["pid"], signal.SIGKILL)
    after = gw.show("services")["ftp-alg"]
    assert after["failed_closed"] > before_counts["failed_closed"], after
    assert got == server.sums["small.bin"], f"the download after the ALG's restart failed:\n{log[-1500:]}"
