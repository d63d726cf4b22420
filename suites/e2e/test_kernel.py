"""The datapath meets the kernel, end to end on edge-basic: in-band management through
the user-kernel transport, and the TLR namespace behind the SR's own address.

In-band management is judged from the hosts (any DUT that declares
``mgmt.inband``): the management address on the uplink serves the gateway's
management page to the allowed provider prefix, and nothing to a tenant, to
another provider address or on another port.  The TLR namespace and the
kernel transport's counters are the reference gateway's own (internals).
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from suites.lib import traffic
from suites.lib.expect import poll


def _mgmt(plan):
    return plan["gateways"]["edge1"]["management"]


def _ok(result):
    """The result when it succeeded, else None (poll tries again)."""
    return result if result["ok"] else None


def _url(plan, port=8080):
    return f"http://{_mgmt(plan)['address'].split('/')[0]}:{port}/node"


@pytest.mark.needs("mgmt.inband")
def test_management_page_from_the_allowed_prefix(lab, plan):
    """ext2 (198.51.100.0/24, allowed) reaches the management service on the uplink's management address."""
    got = poll(lambda: _ok(traffic.http_get(lab.host("ext2"), _url(plan))), timeout=10, what="the management page")
    assert got["status"] == 200 and got["body"].strip() == "edge1", got


@pytest.mark.needs("mgmt.inband", "counters")
def test_management_refused_to_tenants_and_others(lab, plan, gw):
    before = gw.counters()["dropped"]["firewall"]
    tenant = traffic.http_get(lab.host("t1"), _url(plan), timeout=2)
    assert not tenant["ok"], f"a tenant reached the management service: {tenant}"
    provider = traffic.http_get(lab.host("ext1"), _url(plan), timeout=2)
    assert not provider["ok"], f"203.0.113.10 is not an allowed prefix, yet it got the page: {provider}"
    other_port = traffic.tcp_connect(lab.host("ext2"), _mgmt(plan)["address"].split("/")[0], 22)
    assert other_port.get("error"), f"port 22 of the management address must be closed: {other_port}"
    poll(lambda: gw.counters()["dropped"]["firewall"] - before >= 3, timeout=5, what="the refusals counted")
    assert traffic.http_get(lab.host("ext2"), _url(plan))["ok"], "the allowed prefix still gets the page"


@pytest.mark.needs("mgmt.inband")
def test_management_address_shares_the_uplink(lab, plan):
    """The management address is answered (ARP) on the uplink segment with the SR's uplink MAC."""
    ext1 = lab.host("ext1")
    address = _mgmt(plan)["address"].split("/")[0]
    assert traffic.ping(ext1, address, count=1).received == 0, "203.0.113.10 may not ping it (not allowed)"
    uplink_mac = plan["gateways"]["edge1"]["routers"][0]["sr"]["ports"][0]["mac"]
    assert traffic.neighbour_mac(ext1, address) == uplink_mac


@pytest.mark.needs("internals.show")
def test_tlr_namespace_terminates_what_the_sr_does_not(lab, plan, gw):
    """A TCP service in router t1's namespace answers on the SR's uplink address; the frames
    crossed the kernel transport (its counters), tagged with the TLR id."""
    edge1 = lab.host("edge1")
    server = edge1.popen(
        ["ip", "netns", "exec", "edge1-tlr1", sys.executable, "-m", "gateway.mgmt_web", "--bind", "203.0.113.1",
         "--port", "8081", "--node", "tlr1", "--control", "/nonexistent"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(0.5)
        before = gw.show("counters")["kernel"]
        got = poll(
            lambda: _ok(traffic.http_get(lab.host("ext1"), "http://203.0.113.1:8081/node", timeout=2)),
            timeout=10,
            what="the TLR namespace's web server through the SR's address",
        )
        assert got["status"] == 200 and got["body"].strip() == "tlr1"
        after = gw.show("counters")["kernel"]
        assert after["to_kernel"] > before["to_kernel"] and after["from_kernel"] > before["from_kernel"]
        assert after["namespaces"] == {"edge1-tlr1": 1, "edge1-mgmt": 4094}
        # The management page serves the control socket's show, in band.
        summary = traffic.http_get(lab.host("ext2"), "http://203.0.113.5:8080/show/summary")
        assert summary["ok"] and '"node": "edge1"' in summary["body"], summary
        forwarding = traffic.run(edge1, ["ip", "netns", "exec", "edge1-tlr1", "sysctl", "-n", "net.ipv4.ip_forward"])
        assert forwarding.stdout.strip() == "0", "the namespace terminates; the datapath forwards"
    finally:
        server.terminate()
        server.wait(timeout=5)


@pytest.mark.needs("internals.show")
def test_mirror_session_copies_byte_for_byte_to_the_monitor_tap(lab, plan, gw):
    """K marked frames from t1 through the trunk: K byte-identical frames on edge1-mon (rx, tag inline)."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw

    from suites.lib.plans import router_port

    marker = b"edgelab-mirror"
    frames = [
        Ether(src=plan["hosts"]["t1"]["mac"], dst=router_port(plan, "web")["mac"])
        / IP(src="172.16.10.11", dst="172.16.20.13")
        / UDP(sport=7000 + i, dport=7)
        / Raw(marker)
        for i in range(5)
    ]
    gw.request({"cmd": "mirror", "action": "add", "name": "e2e", "port": "trunk", "direction": "rx"})
    try:
        cap = traffic.Capture(lab.host("edge1"), "edge1-mon", seconds=10, max_frames=100)
        traffic.send(lab.host("t1"), frames, gap_ms=10)
        # Only t1's frames (t3's ICMP port-unreachable answers quote the marker too).
        got = [bytes(f) for f in cap.stop() if marker in bytes(f) and f.src == plan["hosts"]["t1"]["mac"]]
    finally:
        gw.request({"cmd": "mirror", "action": "del", "name": "e2e"})
    # t1 is on an access port of VLAN 10: on the trunk the frames carry tag 10.
    want = [bytes(f)[:12] + b"\x81\x00\x00\x0a" + bytes(f)[12:] for f in frames]
    assert got == want, f"{len(got)} copies of {len(want)}"


# -- BGP through the datapath ---------------------------------------------------------------
def _bgp_routes(gw) -> dict:
    return {r["prefix"]: r for r in gw.show("fib") if r["origin"] == "bgp"}


def _vtysh(node, *commands: str) -> str:
    from topologies.nodes import run_root

    argv = ["vtysh", "--vty_socket", node.frr_dir]
    for command in commands:
        argv += ["-c", command]
    return run_root(argv).stdout


@pytest.mark.needs("bgp", "internals.show")
def test_bgp_session_through_the_datapath(lab, plan, gw):
    """FRR in the TLR namespace peers with the provider router across the datapath: the provider
    learns the SR's public prefixes, the SR's FIB gets the provider's prefix by FPM, and a tenant
    reaches it while the namespace forwards nothing."""
    import json

    ext1 = lab.host("ext1")
    poll(lambda: "192.0.2.0/24" in _bgp_routes(gw), timeout=30, what="the provider prefix in the SR's FIB")
    assert _bgp_routes(gw)["192.0.2.0/24"]["via"] == "203.0.113.10"
    peer = json.loads(_vtysh(ext1, "show bgp summary json"))["ipv4Unicast"]["peers"]["203.0.113.1"]
    assert peer["state"] == "Established", peer
    learned = json.loads(_vtysh(ext1, "show ip route bgp json"))
    assert set(learned) == set(plan["gateways"]["edge1"]["bgp"]["announce"]), learned
    forwarding = traffic.run(
        lab.host("edge1"), ["ip", "netns", "exec", "edge1-tlr1", "sysctl", "-n", "net.ipv4.ip_forward"]
    )
    assert forwarding.stdout.strip() == "0"
    assert traffic.ping(lab.host("t1"), "192.0.2.1", count=2).ok


@pytest.mark.needs("bgp", "internals.show")
def test_bgp_withdrawal_and_a_dead_peer_remove_the_route(lab, gw):
    from topologies.nodes import run

    ext1 = lab.host("ext1")
    poll(lambda: "192.0.2.0/24" in _bgp_routes(gw), timeout=30, what="the provider prefix learned")
    bgp = ("conf t", "router bgp 64500", "address-family ipv4 unicast")
    _vtysh(ext1, *bgp, "no network 192.0.2.0/24")
    try:
        poll(lambda: "192.0.2.0/24" not in _bgp_routes(gw), timeout=10, what="the withdrawn prefix gone")
    finally:
        _vtysh(ext1, *bgp, "network 192.0.2.0/24")
    poll(lambda: "192.0.2.0/24" in _bgp_routes(gw), timeout=10, what="the prefix back")
    # The provider goes silent (its BGP packets dropped): after the hold time (3 s) the SR's
    # bgpd declares it dead and the route leaves the FIB.
    run(ext1, ["nft", "add", "table", "inet", "edgelab_test"])
    run(ext1, ["nft", "add", "chain", "inet", "edgelab_test", "out", "{ type filter hook output priority 0; }"])
    for port in ("dport", "sport"):
        run(ext1, ["nft", "add", "rule", "inet", "edgelab_test", "out", "tcp", port, "179", "drop"])
    try:
        poll(lambda: "192.0.2.0/24" not in _bgp_routes(gw), timeout=15, what="the dead peer's routes gone")
    finally:
        run(ext1, ["nft", "delete", "table", "inet", "edgelab_test"])
    poll(lambda: "192.0.2.0/24" in _bgp_routes(gw), timeout=30, what="the routes back with the session")


def _cpu_seconds(pid: int) -> float:
    import os

    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.needs("internals.show", "fault.crash")
def test_a_tap_and_a_namespace_deleted_under_the_daemon(lab, gw):
    """The kernel transport's TAP deleted (from Open vSwitch's namespace, where it lives) and the
    TLR namespace deleted: the daemon says so, counts what it cannot punt, does not spin on the
    dead descriptor, and tenants keep forwarding.  The gateway is restarted afterwards."""
    pid = subprocess.run(["pidof", "ovs-vswitchd"], capture_output=True, text=True).stdout.split()[0]
    tap = gw.show("counters")["kernel"]
    try:
        subprocess.run(["nsenter", "-t", pid, "-n", "ip", "link", "del", "edge1-kni"], check=True)
        subprocess.run(["ip", "netns", "del", "edge1-tlr1"], check=True)
        poll(lambda: gw.show("counters")["kernel"]["tap"] == "gone" or None, timeout=5, what="the TAP seen gone")
        poll(lambda: "edge1-tlr1" in gw.show("counters")["kernel"]["namespaces_missing"] or None, timeout=5,
             what="the namespace seen gone")  # fmt: skip
        daemon = gw.proc.pid
        before, t0 = _cpu_seconds(daemon), time.monotonic()
        time.sleep(1.0)
        busy = (_cpu_seconds(daemon) - before) / (time.monotonic() - t0)
        assert busy < 0.5, f"the daemon spins on the dead TAP: {busy:.0%} of a CPU"
        drops = gw.show("drops").get("sr/no-punt-client", 0)
        traffic.http_get(lab.host("ext2"), _url(plan=lab.plan), timeout=1)  # for the management namespace
        poll(lambda: gw.show("drops").get("sr/no-punt-client", 0) > drops, timeout=5, what="the punt counted")
        assert traffic.ping(lab.host("t1"), "198.51.100.10", count=3).ok, "tenant traffic stopped"
        log = gw.log_text()
        assert "TAP edge1-kni is gone" in log and "edge1-tlr1 was deleted under the daemon" in log, log[-1500:]
        assert gw.alive() and tap["tap"] == "up"
    finally:
        lab.start_gateway("edge1")  # a restart builds the TAP and the namespaces again
    poll(lambda: lab.gateway("edge1").show("counters")["kernel"]["tap"] == "up" or None, timeout=10,
         what="the kernel transport back after the restart")  # fmt: skip
