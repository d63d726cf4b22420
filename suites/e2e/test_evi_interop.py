"""EVI against an independent implementation: site 3's edge replaced by Open vSwitch with
userspace GRE ports (``suites/lib/ovs_peer.py``), the other edges given a static link to it.

The gateways under test must exchange MAC-in-GRE with it both ways: their
encapsulation is what OVS decapsulates and theirs must accept what OVS builds.
"""

from __future__ import annotations

import copy
import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from scapy.layers.inet import GRE, IP

from suites.lib import evi, traffic
from suites.lib.expect import poll
from suites.lib.ovs_peer import gre_peer

pytestmark = pytest.mark.needs("evi.l2", "evi.gre")


@pytest.fixture(scope="module")
def interop(request: pytest.FixtureRequest) -> Iterator[Any]:
    from suites.e2e.conftest import _missing_prerequisites

    missing = _missing_prerequisites() or (None if shutil.which("ovsdb-tool") else "Open vSwitch is not installed")
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{missing}; CI must run the EVI interop tests")
        pytest.skip(missing)
    import topologies

    plan = topologies.plan("evi-dci")
    ovs_site = plan["gateways"].pop("edge3")["evi"]
    for gw in plan["gateways"].values():
        gw["evi"]["links"] = [{"site": 3, "address": "10.255.3.1", "mtu": ovs_site["mtu"]}]
    with topologies.start("evi-dci", dut=request.config.getoption("--dut"), plan=copy.deepcopy(plan)) as lab:
        poll(lambda: all(lab.gateway(g).settled() for g in lab.plan["gateways"]), timeout=30, what="edges settled")
        # OVS is site 3's only edge: it carries VLAN 100 to the forwarders of sites 1 and 2.
        remotes = ["10.255.1.1", "10.255.2.1", "10.255.22.1"]
        with gre_peer(lab.host("edge3"), "edge3-eth0", "edge3-eth1", ovs_site["address"], ovs_site["gateway"],
                      remotes, evi.NETID_KEY(lab), 100, ovs_site["mtu"]) as peer:  # fmt: skip
            yield lab, peer


def test_hosts_reach_a_site_whose_edge_is_open_vswitch(interop: Any) -> None:
    lab, peer = interop
    for src in ("h1a", "h2a"):
        poll(lambda src=src: traffic.ping(lab.host(src), evi.ip(lab, "h3a"), count=1, wait=0.5).ok, timeout=10,
             what=f"{src} reaching h3a behind Open vSwitch")  # fmt: skip
    assert traffic.ping(lab.host("h3a"), evi.ip(lab, "h1a"), count=3).ok
    flows = peer["flows"]()
    for match in ("in_port=1,dl_vlan=100", "in_port=2 "):  # the site's frames out, site 1's in
        line = next(ln for ln in flows.splitlines() if match in ln)
        assert "n_packets=0," not in line, f"the peer's flow {match} never matched: {line}"


def test_what_open_vswitch_sends_is_the_same_wire_format(interop: Any) -> None:
    lab, _peer = interop
    caps = evi.core_captures(lab, seconds=4)
    try:
        traffic.ping(lab.host("h1a"), evi.ip(lab, "h3a"), count=2)
    finally:
        for cap in caps:
            cap.stop()
    from_ovs = [f for cap in caps for f in cap.frames if f.haslayer(GRE) and f[IP].src == "10.255.3.1"]
    assert from_ovs, "nothing from Open vSwitch on the core"
    for p in from_ovs:
        assert p[GRE].proto == 0x6558 and p[GRE].key == evi.NETID_KEY(lab), p.summary()
    # ... and the gateways took it: h1a's pings were answered (above), nothing refused by name.
    for name in ("edge1", "edge2"):
        handle = lab.gateway(name)
        if "internals.show" in handle.capabilities:
            drops = handle.show("drops")
            assert not [r for r in drops if r.startswith("evi_decap/")], drops
