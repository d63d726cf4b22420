"""The DUT boundary: drivers found by name, capabilities checked, n/a never a pass.

No root here: only the registry, the rendering of intent and the mechanisms
that turn a missing capability into n/a (pytest's collection hook, Robot's
pre-run modifier).
"""

from __future__ import annotations

import pytest

import topologies
from suites.duts import CAPABILITIES, capabilities
from suites.duts.base import DutDriver
from suites.duts.reference import ReferenceDriver, render


class SwitchOnly(DutDriver):
    """A DUT that declares only switching."""

    name = "switch-only"
    capabilities = frozenset({"switching"})


def test_reference_found_by_name_through_its_entry_point():
    assert topologies.dut_driver("reference") is ReferenceDriver
    assert "reference" in topologies.dut_names()


def test_unknown_dut_is_a_clear_error():
    with pytest.raises(topologies.TopologyError, match="no DUT driver 'nosuch'; drivers: .*reference"):
        topologies.dut_driver("nosuch")


def test_a_registered_driver_and_a_class_are_accepted():
    topologies.register_dut("switch-only", SwitchOnly)
    assert topologies.dut_driver("switch-only") is SwitchOnly
    assert topologies.dut_driver(SwitchOnly) is SwitchOnly
    assert capabilities("switch-only") == {"switching"}


def test_declared_capabilities_are_known_names():
    for name in topologies.dut_names():
        assert capabilities(name) <= set(CAPABILITIES), name


def test_reference_render_puts_services_where_the_reference_wants_them():
    plan = topologies.plan("edge-basic")
    cfg = render(plan, "edge1")
    router = cfg["routers"][0]
    assert router["sr"]["nat"]["snat"][0]["pool"] == plan["nat"]["pool"]
    assert router["sr"]["firewall"]["rules"][0]["name"] == "no-telnet-out"
    assert cfg["instances"]["web"] == {"records": [{"port": "trunk", "vlan": 10}, {"port": "access", "vlan": None}]}
    assert "nat" not in router and "firewall" not in router


def test_topologies_carry_no_dut_syntax():
    """A gateway's entry in a plan is intent: no reference-only keys outside gateways.NAME.dut."""
    reference_only = {"node", "control_socket", "io", "cache", "tables", "config"}
    for name in topologies.names():
        for gw, spec in topologies.plan(name)["gateways"].items():
            assert not reference_only & set(spec), (name, gw)


def _run_pytest_on(tmp_path, dut: str) -> str:
    """Collect a tiny test module against ``dut`` with the e2e conftest's hook."""
    import subprocess
    import sys
    from pathlib import Path

    conftest = Path(__file__).resolve().parents[1] / "e2e" / "conftest.py"
    (tmp_path / "conftest.py").write_text(
        conftest.read_text()
        + "\nimport topologies\nfrom suites.unit.test_duts import SwitchOnly\n"
        + "topologies.register_dut('switch-only', SwitchOnly)\n"
    )
    (tmp_path / "test_x.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.needs('switching')\ndef test_switch():\n    pass\n\n"
        "@pytest.mark.needs('nat.snat', 'switching')\ndef test_nat():\n    pass\n"
    )
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", "-q", str(tmp_path), "--dut", dut],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    return res.stdout + res.stderr


def test_pytest_marks_what_the_dut_lacks_as_na(tmp_path):
    out = _run_pytest_on(tmp_path, "switch-only")
    assert "1 passed, 1 skipped" in out, out
    assert "n/a: DUT switch-only lacks nat.snat" in out, out
    out = _run_pytest_on(tmp_path, "reference")
    assert "2 passed" in out, out


def test_robot_marks_what_the_dut_lacks_as_na(tmp_path):
    from robot import run

    topologies.register_dut("switch-only", SwitchOnly)
    suite = tmp_path / "x.robot"
    suite.write_text(
        "*** Test Cases ***\n"
        "Switching\n    [Tags]    needs:switching\n    Log    ok\n"
        "Nat\n    [Tags]    needs:nat.snat\n    Fail    must not run on this DUT\n"
        "    [Teardown]    Fail    the teardown of an n/a test must not run either\n"
    )
    rc = run(
        str(suite),
        outputdir=str(tmp_path),
        prerunmodifier="suites.lib.applicable.NotApplicable:switch-only",
        output="out.xml",
        report="NONE",
        log="NONE",
        console="none",
    )
    assert rc == 0, "the n/a test is skipped, not failed"
    from robot.api import ExecutionResult

    result = ExecutionResult(str(tmp_path / "out.xml"))
    tests = {t.name: t for t in result.suite.all_tests}
    assert tests["Switching"].status == "PASS"
    assert tests["Nat"].status == "SKIP" and "n/a: DUT switch-only lacks nat.snat" in tests["Nat"].message
    assert "teardown" not in tests["Nat"].message, tests["Nat"].message


# -- the Linux DUT's rendering -------------------------------------------------------------
def test_linux_render_of_edge_basic():
    from suites.duts.linux_render import render as linux

    spec = linux(topologies.plan("edge-basic"), "edge1")
    assert spec["uplink"] == "br-provider"
    assert spec["bridges"]["web"]["members"] == ["vt10", "edge1-eth2"], "VLAN 10 of the trunk and the access port"
    assert spec["bridges"]["web"]["mac"] == "02:00:00:10:00:01"
    assert set(spec["trunks"]["trunk"]["vlans"]) == {10, 20}
    assert spec["publics"] == ["203.0.113.64", "203.0.113.65", "203.0.113.80", "203.0.113.90"]
    nft = spec["nft"]
    # 1:1 before the pool, so t2 leaves as its own public address.
    assert nft.index('snat to 203.0.113.90 comment "t2-public"') < nft.index(
        'snat to 203.0.113.64-203.0.113.65 comment "tenants"'
    )
    assert 'tcp dport 23 counter name "fw" reject with icmp type admin-prohibited comment "no-telnet-out"' in nft
    # The configured rules see every packet: a rule added at run time stops a running flow.
    assert nft.index("jump fw_rules") < nft.index("ct state established,related accept")


def test_linux_snat_with_ports_matches_a_transport_first():
    from suites.duts.linux_render import snat_rules

    with_ports, rest = snat_rules(
        {"name": "p", "source": "10.0.0.0/8", "pool": ["192.0.2.1"], "ports": "6000-6002"}, "up"
    )
    assert "meta l4proto { tcp, udp } snat to 192.0.2.1:6000-6002" in with_ports
    assert "snat to 192.0.2.1 " in rest


def test_linux_ruleset_is_valid_nftables(tmp_path):
    """nft itself checks the rendered ruleset (-c: nothing is applied)."""
    import os
    import shutil
    import subprocess

    from suites.duts.linux_render import render as linux

    if os.geteuid() != 0 or shutil.which("nft") is None:
        pytest.skip("checking a ruleset with nft needs root and nftables")
    path = tmp_path / "edge1.nft"
    path.write_text(linux(topologies.plan("edge-basic"), "edge1")["nft"])
    res = subprocess.run(["nft", "-c", "-f", str(path)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_linux_vrrp_render_of_edge_ha():
    """Each SR owns its addresses at priority 200 and stands by for its peer's at 100; the
    addresses VRRP sends from are none the plan uses."""
    from suites.duts.linux_render import _used_addresses
    from suites.duts.linux_render import render as linux

    plan = topologies.plan("edge-ha")
    one, two = linux(plan, "edge1")["vrrp"], linux(plan, "edge2")["vrrp"]
    prio = {(i["vrid"], tuple(sorted(a for a, _ in i["addresses"]))): i["priority"] for i in one["instances"]}
    # edge1's public NAT addresses follow it (edge2 lists them as its peer's publics).
    mine = ("169.254.0.2/28", "203.0.113.1/24", "203.0.113.10/32", "203.0.113.11/32")
    assert prio == {(1, mine): 200, (2, ("169.254.0.3/28", "203.0.113.2/24")): 100}
    assert [i["priority"] for i in two["instances"]] == [100, 200]
    assert tuple(sorted(a for a, _ in two["instances"][0]["addresses"])) == mine
    assert not any(a.startswith("203.0.113.1") and "/32" in a for b in linux(plan, "edge2")["bridges"].values()
                   for a in b["addresses"]), "no static public address: both would answer for it"  # fmt: skip
    bases = {a.split("/")[0] for v in (one, two) for a in v["base"].values()}
    assert len(bases) == 4 and not bases & _used_addresses(plan)
    assert "advert_int 0.1" in one["config"], "the intent's BFD interval"
    assert linux(plan, "hv1")["routes"] == [("0.0.0.0/0", "169.254.0.2")], "the DR sends the rest to its SR"


def test_linux_conntrackd_render_of_edge_ha():
    """conntrackd on each SR edge replicates to the other over the transit bridge, between the
    two nodes' own VRRP base addresses (each one's address the other's destination), and
    ignores what those addresses send themselves (its own sync traffic)."""
    from suites.duts.linux_render import render as linux

    plan = topologies.plan("edge-ha")
    one, two = linux(plan, "edge1"), linux(plan, "edge2")
    c1, c2 = one["conntrackd"], two["conntrackd"]
    assert (c1["address"], c1["peer"]) == (c2["peer"], c2["address"]) and c1["address"] != c2["address"]
    assert c1["address"] == one["vrrp"]["base"]["br-transit"].split("/")[0]
    assert c1["interface"] == "br-transit"
    for text in (c1["config"], c2["config"]):
        assert "Mode FTFW" in text and "DisableExternalCache On" in text
        assert f"IPv4_address {c1['address']}" in text and f"IPv4_address {c2['address']}" in text
    assert linux(plan, "hv1")["conntrackd"] is None, "the DR node has no HA"
    assert linux(topologies.plan("edge-basic"), "edge1")["conntrackd"] is None


def test_the_linux_dut_renders_ipv6_beside_ipv4():
    """Dual-stack intent: the bridges' IPv6 addresses, radvd on the DR's tenant segments only,
    an ip6 table with the firewall rules of IPv6 (a rule of one family in its table only)."""
    from suites.duts.linux_fw import fw_rule
    from suites.duts.linux_render import render as linux

    spec = linux(topologies.plan("edge-basic"), "edge1")
    v6 = spec["ipv6"]
    assert v6["addresses"]["br-web"] == ["2001:db8:0:10::1/64"] and "br-provider" in v6["addresses"]
    assert v6["ra"] == {"br-web": "2001:db8:0:10::/64", "br-app": "2001:db8:0:20::/64"}, "not on the uplink"
    assert ("::/0", "2001:db8:cb::10", "br-provider") in v6["routes"] and all(":" not in p for p, _v in spec["routes"])
    assert "reject with icmpv6 type admin-prohibited" in v6["nft"] and "ct status dnat" not in v6["nft"]
    rule6 = {"name": "x", "action": "drop", "dst": "2001:db8::/32"}
    rule4 = {"name": "y", "action": "drop", "proto": "icmp"}
    assert fw_rule(rule6, "br-provider", 4) is None and "ip6 daddr 2001:db8::/32" in fw_rule(rule6, "br-provider", 6)
    assert fw_rule(rule4, "br-provider", 6) is None and "meta l4proto icmp" in fw_rule(rule4, "br-provider", 4)


def test_the_linux_dut_moves_an_ha_srs_ipv6_addresses_with_its_ipv4_ones():
    """edge-ha dual stack: each SR's own IPv6 addresses are keepalived's, in the VRRP instance of
    its IPv4 ones (virtual_ipaddress_excluded), its peer's in the peer's instance with the
    same prefix lengths; none is a static address of either node, and routes name their
    bridge (the next hop's segment may hold no address of the node while it stands by)."""
    from suites.duts.linux_render import render as linux

    plan = topologies.plan("edge-ha")
    for node, own, peer in (
        ("edge1", {"2001:db8:cb::1/64", "fd00:a9fe::2/64"}, {"2001:db8:cb::2/64", "fd00:a9fe::3/64"}),
        ("edge2", {"2001:db8:cb::2/64", "fd00:a9fe::3/64"}, {"2001:db8:cb::1/64", "fd00:a9fe::2/64"}),
    ):
        spec = linux(plan, node)
        by_prio = {i["priority"]: {a for a, _br in i["addresses6"]} for i in spec["vrrp"]["instances"]}
        assert by_prio == {200: own, 100: peer}, by_prio
        assert not any(spec["ipv6"]["addresses"].values()), "no static IPv6 address on an HA SR"
        assert "virtual_ipaddress_excluded {" in spec["vrrp"]["config"]
        assert ("::/0", "2001:db8:cb::fe", "br-provider") in spec["ipv6"]["routes"]
    assert linux(plan, "hv1")["ipv6"]["addresses"]["br-transit"] == ["fd00:a9fe::1/64"], "the DR's stay static"
