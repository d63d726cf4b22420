"""The ovs DUT without a switch: the intent rendered, the pipeline built into OpenFlow.

Each flow is turned into the os-ken FlowMod the app sends and serialized to
bytes, so a field or action os-ken cannot encode fails here; the checks on
the pipeline's shape are the ones Open vSwitch enforces (a ct action needs an
IPv4 match) or the ones the suites rely on (rule order, the exhaustion guard).
"""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
from os_ken.ofproto import ofproto_v1_3, ofproto_v1_3_parser

import topologies
from suites.duts import capabilities
from suites.duts.ovs import OvsDriver
from suites.duts.ovs_render import render
from suites.duts.ovsken import flows as F


def _cfg() -> dict:
    cfg = render(topologies.plan("edge-basic"), "edge1")
    cfg["ofports"] = {ifname: i + 1 for i, ifname in enumerate(cfg["ifnames"])}
    return cfg


def _sr(cfg: dict) -> dict:
    return next(r for r in cfg["routers"] if r["kind"] == "sr")


def test_ovs_found_by_name_and_declares_no_ha():
    assert topologies.dut_driver("ovs") is OvsDriver
    have = capabilities("ovs")
    assert {"switching", "routing", "nat.snat", "nat.dnat", "fw.stateful"} <= have
    assert not {c for c in have if c.startswith(("ha.", "internals.", "evi."))}


def test_render_of_edge_basic():
    cfg = render(topologies.plan("edge-basic"), "edge1")
    inst = cfg["instances"]
    recs = {(r["ifname"], r["vlan"]): r["instance"] for r in cfg["records"]}
    assert recs == {
        ("edge1-eth0", 10): inst["web"],
        ("edge1-eth2", None): inst["web"],
        ("edge1-eth0", 20): inst["app"],
        ("edge1-eth1", None): inst["provider"],
    }
    dr, sr = cfg["routers"]
    assert (dr["kind"], sr["kind"]) == ("dr", "sr")
    assert [p["ip"] for p in dr["ports"]] == ["172.16.10.1", "172.16.20.1"]
    assert dr["transit"]["ip"] == "169.254.0.1" and sr["transit"]["ip"] == "169.254.0.2"
    # the DR sends the rest to its SR, the SR the tenant subnets to its DR
    assert {"prefix": "0.0.0.0/0", "peer": sr["id"], "via_port": sr["transit"]["id"]} in dr["routes"]
    assert {r["prefix"] for r in sr["routes"] if r.get("peer") == dr["id"]} == {"172.16.10.0/24", "172.16.20.0/24"}
    assert "203.0.113.90" in sr["publics"] and "203.0.113.64" in sr["publics"]


def test_render_refuses_what_ovs_does_not_do():
    plan = copy.deepcopy(topologies.plan("edge-basic"))
    plan["gateways"]["edge1"]["routers"][0]["ha"] = {"peers": ["edge2"]}
    with pytest.raises(ValueError, match="ovs DUT has no HA"):
        render(plan, "edge1")


def test_every_flow_is_an_openflow_message_os_ken_can_encode():
    dp = SimpleNamespace(ofproto=ofproto_v1_3, ofproto_parser=ofproto_v1_3_parser, id=1)
    cfg = _cfg()
    flows = F.pipeline(cfg, cfg["ofports"])
    router, rp = cfg["routers"][0], cfg["routers"][0]["ports"][0]
    flows.append(F.neighbour(router, rp, "172.16.10.11", "02:00:00:10:00:11"))
    assert len(flows) > 50
    for flow in flows:
        acts, goto = F.actions(ofproto_v1_3_parser, flow.actions)
        inst = [ofproto_v1_3_parser.OFPInstructionActions(ofproto_v1_3.OFPIT_APPLY_ACTIONS, acts)] if acts else []
        if goto is not None:
            inst.append(ofproto_v1_3_parser.OFPInstructionGotoTable(goto))
        msg = ofproto_v1_3_parser.OFPFlowMod(
            dp, table_id=flow.table, priority=flow.priority, match=ofproto_v1_3_parser.OFPMatch(**flow.match),
            instructions=inst, cookie=flow.cookie,
        )  # fmt: skip
        msg.set_xid(1)
        msg.serialize()
        assert len(msg.buf) >= 56, flow


def test_conntrack_flows_match_ipv4():
    """Open vSwitch refuses a ct action on a flow that does not match IPv4 (a bug seen live)."""
    cfg = _cfg()
    ct = [f for f in F.pipeline(cfg, cfg["ofports"]) if any(a[0] == "ct" for a in f.actions)]
    assert ct
    for flow in ct:
        assert flow.match.get("eth_type") == F.ETH_IP, flow


def test_firewall_rules_keep_their_order_and_direction():
    cfg = _cfg()
    sr = _sr(cfg)
    sr["firewall"] = [
        {"name": "a", "action": "allow", "direction": "out", "proto": "tcp", "dport": 22},
        {"name": "b", "action": "drop", "proto": "icmp", "dst": "203.0.113.10/32"},
        {"name": "c", "action": "reject", "direction": "in", "proto": "udp", "dport": 53},
    ]
    fw = [f for f in F.firewall(sr)]
    prio = {f.detail: f.priority for f in fw}
    assert prio[0] > prio[1] > prio[2]
    out = next(f for f in fw if f.detail == 0)
    assert out.match["reg7"] == sr["transit"]["id"] and out.match["tcp_dst"] == 22
    assert ("set", {"reg8": 1}) in out.actions
    inbound = [f for f in fw if f.detail == 2]
    assert {f.match["reg7"] for f in inbound} == {p["id"] for p in sr["ports"]}
    assert all(f.kind == F.K_REJECT and f.actions == [("controller", None)] for f in inbound)
    assert next(f for f in fw if f.detail == 1).kind == F.K_FIREWALL


def test_snat_has_an_exhaustion_guard_and_added_rules_come_first():
    cfg = _cfg()
    sr = _sr(cfg)
    sr["snat"].insert(
        0, {"name": "tiny", "source": "172.16.10.14/32", "pool": ["203.0.113.71"], "ports": "30000-30002"}
    )
    nat = F.nat(sr)
    snat = [f for f in nat if f.table == F.T_SNAT and f.match.get("ipv4_src") == "172.16.10.14"]
    assert {f.match.get("ip_proto") for f in snat} == {6, 17, None}
    ported = next(f for f in snat if f.match.get("ip_proto") == 17)
    ct = dict(ported.actions)["ct"]
    assert ct["commit"] and ct["nat"] == {
        "src": "203.0.113.71",
        "src_max": "203.0.113.71",
        "port": 30000,
        "port_max": 30002,
    }
    tenants = [f for f in nat if f.table == F.T_SNAT and f.match.get("ipv4_src") == ("172.16.0.0", "255.255.0.0")]
    assert min(f.priority for f in snat) > max(f.priority for f in tenants)
    guards = [f for f in F.services(sr) if f.table == F.T_COMMIT and f.kind == F.K_NAT and "ipv4_src" in f.match]
    assert {f.match["ipv4_src"] for f in guards} == {"172.16.10.14", ("172.16.0.0", "255.255.0.0")}
    # a hairpinned connection's SNAT (second zone) is guarded the same way
    hairpin = [f for f in nat if f.table == F.T_HAIRPIN and f.priority > 0]
    assert hairpin and all(("set", {"reg9": 1}) in f.actions for f in hairpin)
    assert {dict(f.actions)["ct"]["zone"] for f in hairpin} == {F.HAIRPIN_ZONE | sr["zone"]}


def test_routes_prefer_the_longest_prefix():
    cfg = _cfg()
    sr = _sr(cfg)
    sr["routes"].append({"prefix": "198.51.100.0/24", "via": "203.0.113.10"})
    rts = {f.match.get("ipv4_dst"): f.priority for f in F.routes(cfg, sr) if f.table == F.T_ROUTE}
    assert rts[("198.51.100.0", "255.255.255.0")] > rts[("0.0.0.0", "0.0.0.0")]
    # a connected /24 beats a static /24 to the same prefix
    connected = rts[("203.0.113.0", "255.255.255.0")]
    sr["routes"].append({"prefix": "203.0.113.0/24", "via": "203.0.113.10"})
    static = [f.priority for f in F.routes(cfg, sr) if f.match.get("ipv4_dst") == ("203.0.113.0", "255.255.255.0")]
    assert max(static) == connected and min(static) == connected - 1


def test_the_app_answers_bad_requests_and_runs_on(tmp_path):
    """The os-ken app without a switch: garbage on its control socket (not UTF-8, not JSON, not
    an object, an unknown op, a change before the bridge connected) is answered with the
    reason, and the app still answers status after."""
    import json
    import socket
    import subprocess
    import sys
    import time

    from suites.duts.ovs import _free_port

    cfg = _cfg()
    cfg.update(of_port=_free_port(), control=str(tmp_path / "app.sock"))
    path = tmp_path / "app.json"
    path.write_text(json.dumps(cfg))
    proc = subprocess.Popen([sys.executable, "-m", "suites.duts.ovsken", str(path)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not (tmp_path / "app.sock").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the app did not start"
            time.sleep(0.05)
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(str(tmp_path / "app.sock"))
            f = s.makefile("rb")
            answers = []
            for line in (b"\xff\xfe\n", b"{not json\n", b"[1, 2]\n", b'{"op": "nosuch"}\n',
                         b'{"op": "add_route", "prefix": "10.9.0.0/16", "via": "203.0.113.10"}\n',
                         b'{"op": "status"}\n'):  # fmt: skip
                s.sendall(line)
                answers.append(json.loads(f.readline()))
        assert [a["ok"] for a in answers] == [False, False, False, False, False, True]
        assert "UnicodeDecodeError" in answers[0]["error"] and "JSONDecodeError" in answers[1]["error"]
        assert "JSON object with an op" in answers[2]["error"] and "not connected" in answers[4]["error"]
        assert answers[5]["connected"] is False and proc.poll() is None
        assert answers[5]["errors"] == {"request": 5}, "each refused request counted"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
