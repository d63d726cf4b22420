"""Config validation: good configs load, each bad one names field and value."""

from __future__ import annotations

import pytest
import yaml

from gateway import config
from gateway.datapath import Datapath
from suites.unit.conftest import EDGE_YAML


def _edit(fn) -> str:
    raw = yaml.safe_load(EDGE_YAML)
    fn(raw)
    return yaml.safe_dump(raw)


def test_reference_config_loads():
    cfg = config.parse(EDGE_YAML, "edge1.yaml")
    assert list(cfg.ports) == ["trunk", "uplink"]
    assert cfg.instances["web"].records[0].vlan == 10
    assert cfg.instances["provider"].records[0].vlan is None
    assert cfg.routers[0].tlr_id == 1
    assert cfg.control_socket == "/tmp/edgelab-unit.sock"


def test_topology_plan_config_is_valid():
    """The reference gateway's rendering of every topology's intent is a valid config."""
    import topologies
    from suites.duts.reference import render

    for name in topologies.names():
        plan = topologies.plan(name)
        for gw in plan["gateways"]:
            Datapath(config.build(render(plan, gw), f"{name}-{gw}.yaml"))


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda r: r.pop("node"), "missing required field 'node'"),
        (lambda r: r.update(colour="blue"), "colour: unknown field"),
        (lambda r: r["ports"]["trunk"].update(role="spine"), "ports.trunk.role: 'spine' is not a port role"),
        (
            lambda r: r["ports"]["uplink"].update(ifname="edge1-eth0"),
            "ports.uplink.ifname: 'edge1-eth0' is already used",
        ),
        (lambda r: r["ports"]["trunk"].update(ifname="a-very-long-interface"), "longer than the kernel's 15-character"),
        (
            lambda r: r["instances"]["web"]["records"][0].update(vlan=4095),
            "instances.web.records[0].vlan: 4095 is not an integer in 1..4094",
        ),
        (
            lambda r: r["instances"]["web"]["records"][0].update(port="eth7"),
            "instances.web.records[0].port: 'eth7' is not a configured port",
        ),
        (lambda r: r["instances"]["app"]["records"][0].update(vlan=10), "VLAN 10 is already mapped to instance"),
        (
            lambda r: r["routers"][0]["dr"]["ports"][0].update(ip="172.16.10.1"),
            "routers[0].dr.ports[0].ip: '172.16.10.1' is not an IPv4 address with a prefix length",
        ),
        (
            lambda r: r["routers"][0]["dr"]["ports"][0].update(ip6="2001:db8::1"),
            "routers[0].dr.ports[0].ip6: '2001:db8::1' is not an IPv6 address with a prefix length",
        ),
        (
            lambda r: r["routers"][0]["dr"]["ports"][0].update(ip6="fe80::1/64"),
            "routers[0].dr.ports[0].ip6: fe80::1 is not a unicast global or unique-local address",
        ),
        (
            lambda r: r["routers"][0]["sr"].update(routes=[{"prefix": "::/0", "via": "203.0.113.9"}]),
            "routers[0].sr.routes[0].via: 203.0.113.9 is not of the prefix's family (IPv6)",
        ),
        (
            lambda r: r["routers"][0]["sr"].update(routes=[{"prefix": "2001:db8:1::/48", "via": "2001:db8:cb::9"}]),
            "t1-sr has no IPv6 address on any segment",
        ),
        (
            lambda r: r["routers"][0]["sr"].update(
                firewall={"rules": [{"action": "drop", "src": "10.0.0.0/8", "dst": "2001:db8::/32"}]}
            ),
            "firewall.rules[0].dst: 2001:db8::/32 is not of the source's family (IPv4)",
        ),
        (
            lambda r: r["routers"][0]["sr"].update(
                firewall={"rules": [{"action": "drop", "proto": "icmp", "dst": "2001:db8::/32"}]}
            ),
            "firewall.rules[0].proto: icmp is not a protocol of IPv6",
        ),
        (
            lambda r: r["routers"][0]["sr"].update(nptv6=[{"inside": "fd00:1::/48", "outside": "2001:db8:1::/64"}]),
            "routers[0].sr.nptv6[0].outside: 2001:db8:1::/64 is not as long as the inside prefix fd00:1::/48",
        ),
        (
            lambda r: r["routers"][0]["sr"].update(nptv6=[{"inside": "fd00:1::/56", "outside": "2001:db8:1::/56"}]),
            "routers[0].sr.nptv6[0].inside: fd00:1::/56 is not an IPv6 prefix of length 16, 32, 48 or 64",
        ),
        (
            lambda r: r["routers"][0]["sr"].update(
                nptv6=[
                    {"name": "a", "inside": "fd00:1::/48", "outside": "2001:db8:1::/48"},
                    {"inside": "fd00:1::/48", "outside": "2001:db8:2::/48"},
                ]
            ),
            "routers[0].sr.nptv6[1]: overlaps rule 'a'",
        ),
        (
            lambda r: r["routers"][0]["transit"].update(
                subnet6="fd00:a9fe::/64", dr6="fd00:a9fe::1", sr6="fd00:a9fe::2"
            ),
            "transit.subnet6: IPv6 on the transit needs a real transit segment ('instance')",
        ),
        (lambda r: r["ports"]["uplink"].update(mtu=1000), "ports.uplink.mtu: 1000 is not an integer in 1280..9000"),
        (lambda r: r["routers"][0]["dr"]["ports"][0].update(mac="01:00:5e:00:00:01"), "is a multicast MAC"),
        (lambda r: r["routers"][0]["dr"]["ports"][0].update(mac="zz:00"), "is not a MAC address"),
        (
            lambda r: r["routers"][0]["dr"]["ports"][1].update(instance="web"),
            "instance 'web' already has a router port",
        ),
        (lambda r: r["routers"][0]["dr"]["ports"][0].update(instance="dmz"), "'dmz' is not a configured instance"),
        (lambda r: r["routers"][0].update(tlr_id=0), "routers[0].tlr_id: 0 is not an integer in 1..4094"),
        (lambda r: r["routers"][0]["transit"].update(sr="10.0.0.1"), "10.0.0.1 is not inside the transit subnet"),
        (lambda r: r["routers"][0].pop("transit"), "needs a 'transit'"),
        (
            lambda r: r["routers"][0]["sr"].update(routes=[{"prefix": "0.0.0.0/0", "via": "198.51.100.1"}]),
            "routers[0].sr.routes[0].via: 198.51.100.1 is not on a connected subnet",
        ),
        (
            lambda r: r["routers"][0]["sr"].update(routes=[{"prefix": "10.0.0.1/8", "via": "203.0.113.9"}]),
            "'10.0.0.1/8' is not an IPv4 or IPv6 prefix with host bits zero",
        ),
        (lambda r: r.update(tables={"arp_queue": -1}), "tables.arp_queue: -1 is not an integer"),
    ],
)
def test_bad_config_is_named(edit, expected):
    text = _edit(edit)
    with pytest.raises(config.ConfigError) as err:
        Datapath(config.parse(text, "edge1.yaml"))
    message = str(err.value)
    assert message.startswith("edge1.yaml: "), message
    assert expected in message, message
    assert "\n" not in message


def test_bad_yaml_gives_line_and_column():
    with pytest.raises(config.ConfigError, match=r"edge1.yaml: not valid YAML at line \d+, column \d+"):
        config.parse("node: edge1\nports: [a, b\n", "edge1.yaml")


def test_missing_file_is_one_sentence(tmp_path):
    with pytest.raises(config.ConfigError, match="cannot read the config file"):
        config.load(tmp_path / "nope.yaml")


def test_cli_check_mode(tmp_path, capsys):
    from gateway.__main__ import main

    good = tmp_path / "good.yaml"
    good.write_text(EDGE_YAML)
    assert main(["--config", str(good), "--check"]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(EDGE_YAML.replace("vlan: 20", "vlan: 5000"))
    assert main(["--config", str(bad), "--check"]) == 2
    err = capsys.readouterr().err
    assert "instances.app.records[0].vlan: 5000" in err and "Traceback" not in err


def _second_tenant(r, **sr_port):
    """A second tenant router on the same provider segment (as in the multi-tenant topology)."""
    port = {"instance": "provider", "ip": "203.0.113.3/24", "mac": "02:00:00:00:cb:03", **sr_port}
    r["instances"]["red"] = {"records": [{"port": "trunk", "vlan": 30}]}
    r["routers"].append(
        {
            "name": "red",
            "tlr_id": 2,
            "dr": {"ports": [{"instance": "red", "ip": "172.16.10.1/24", "mac": "02:00:00:00:30:01"}]},
            "sr": {"ports": [port]},
            "transit": {"subnet": "169.254.0.0/28", "dr": "169.254.0.1", "sr": "169.254.0.2"},
        }
    )


def test_two_tenant_srs_share_the_provider_segment():
    dp = Datapath(config.parse(_edit(_second_tenant), "edge1.yaml"))
    provider = dp.model.instances["provider"]
    assert [rp.router.label for rp in provider.router_ports] == ["t1-sr", "red-sr"]
    assert provider.to_dict()["router_ports"][1]["ip"] == "203.0.113.3/24"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda r: _second_tenant(r, ip="203.0.113.1/24"), "has this address or MAC on instance 'provider' already"),
        (lambda r: _second_tenant(r, mac="02:00:00:00:cb:01"), "has this address or MAC on instance 'provider'"),
        (  # a tenant segment has one gateway: a second DR port on it is refused
            lambda r: (_second_tenant(r), r["routers"][1]["dr"]["ports"][0].update(instance="web")),
            "instance 'web' already has a router port (t1.dr)",
        ),
    ],
)
def test_a_shared_segment_refuses_what_would_clash(edit, expected):
    with pytest.raises(config.ConfigError) as err:
        Datapath(config.parse(_edit(edit), "edge1.yaml"))
    assert expected in str(err.value), str(err.value)


def _edge_ha(node: str = "edge2") -> dict:
    import topologies
    from suites.duts.reference import render

    return render(topologies.plan("edge-ha"), node)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda ha: ha.update(sync={"rate": 0}), r"ha\.sync\.rate: 0 is not an integer in 100\.\.10000000"),
        (lambda ha: ha.update(sync={"port": 3784}), r"ha\.sync\.port: 3784 is the HA agent's"),
        (lambda ha: ha.update(sync={"refresh_s": -1}), r"ha\.sync\.refresh_s: -1 is not a number"),
        (lambda ha: ha.update(sync={"often": 1}), r"ha\.sync.*often"),
        (lambda ha: ha["peers"][0].update(publics=["nope"]), r"ha\.peers\[0\]\.publics\[0\]"),
        (lambda ha: ha["bfd"].update(neighbors=[7]), r"ha\.bfd\.neighbors\[0\]"),
    ],
)
def test_bad_ha_replication_config_is_named(edit, expected):
    cfg = _edge_ha()
    edit(cfg["routers"][0]["ha"])
    with pytest.raises(config.ConfigError, match=expected):
        config.build(cfg, "edge2.yaml")


def test_ha_replication_can_be_turned_off_and_a_bfd_neighbor_must_be_on_a_segment():
    from gateway.ha.agent import Agent

    cfg = _edge_ha()
    cfg["routers"][0]["ha"]["sync"] = False
    assert Datapath(config.build(cfg, "edge2.yaml")).sync is None
    assert Datapath(config.build(_edge_ha(), "edge2.yaml")).sync is not None
    cfg = _edge_ha()
    cfg["routers"][0]["ha"]["bfd"]["neighbors"] = ["192.0.2.9"]
    with pytest.raises(config.ConfigError, match="BFD neighbor 192.0.2.9 is on no segment"):
        Agent(config.build(cfg, "edge2.yaml"))
