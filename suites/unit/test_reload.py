"""Config reload: routes, firewall and NAT rules applied at run time from the file, all or
nothing; a broken file or one that changes what needs a restart leaves the running config."""

from __future__ import annotations

import yaml
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import ARP, Dot1Q, Ether

from suites.unit.conftest import Rig
from suites.unit.test_nat import EXT, H1, NAT_YAML, UP_GW, in_frame, one, out_frame


def rig_from_file(tmp_path) -> tuple[Rig, object]:
    path = tmp_path / "edge1.yaml"
    path.write_text(NAT_YAML.replace("MAXSESS", "1000"))
    rig = Rig(path.read_text())
    rig.cfg.source = str(path)
    rig.dp.cfg.source = str(path)
    for frame in _neighbour_frames():
        rig.send(*frame)
    rig.take("trunk"), rig.take("uplink")
    return rig, path


def _neighbour_frames():
    yield (
        "uplink",
        bytes(Ether(src=EXT, dst=UP_GW) / ARP(op=2, hwsrc=EXT, psrc="203.0.113.10", hwdst=UP_GW, pdst="203.0.113.1")),
    )
    arp = ARP(op=1, hwsrc=H1, psrc="172.16.10.11", pdst="172.16.10.1")
    yield "trunk", bytes(Ether(src=H1, dst="ff:ff:ff:ff:ff:ff") / Dot1Q(vlan=10) / arp)


def edit(path, fn) -> None:
    raw = yaml.safe_load(path.read_text())
    fn(raw)
    path.write_text(yaml.safe_dump(raw))


def sr(raw):
    return raw["routers"][0]["sr"]


def test_a_reload_applies_routes_firewall_and_nat_rules(tmp_path):
    rig, path = rig_from_file(tmp_path)
    rig.send("trunk", out_frame(IP(src="172.16.10.11", dst="198.51.100.10") / UDP(sport=4000, dport=53)))
    assert one(rig.take("uplink"))[IP].src == "203.0.113.64"  # a running flow through SNAT
    edit(
        path,
        lambda r: sr(r)["firewall"]["rules"].append(
            {"name": "no-dns-out", "action": "drop", "direction": "out", "proto": "udp", "dport": 53}
        ),
    )
    edit(
        path,
        lambda r: sr(r)["nat"]["dnat"].append(
            {
                "name": "t3-ssh",
                "public": "203.0.113.80",
                "proto": "tcp",
                "port": 2222,
                "to": "172.16.20.13",
                "to_port": 22,
            }
        ),
    )
    edit(path, lambda r: sr(r)["routes"].append({"prefix": "192.0.2.0/24", "via": "203.0.113.10"}))
    answer = rig.handle({"cmd": "reload"})
    assert answer["ok"], answer
    changed = answer["result"]["changed"]["t1-sr"]
    assert changed["firewall"] == {"added": ["no-dns-out"], "removed": []}
    assert changed["nat"] == {"dnat": {"added": ["t3-ssh"], "removed": []}}
    assert changed["routes"]["added"] == ["192.0.2.0/24 via 203.0.113.10"]
    # The new rule stops the running flow; the other rules kept their objects (and sessions).
    rig.send("trunk", out_frame(IP(src="172.16.10.11", dst="198.51.100.10") / UDP(sport=4000, dport=53)))
    assert not rig.take("uplink") and rig.drops().get("sr/fw-drop") == 1
    assert any(r["prefix"] == "192.0.2.0/24" for r in rig.handle({"cmd": "show", "what": "fib"})["result"])
    rig.send("uplink", in_frame(IP(src="203.0.113.10", dst="203.0.113.80") / TCP(sport=5555, dport=2222, flags="S")))
    assert len(rig.take("trunk")) == 1  # the new port forward


def test_a_broken_file_leaves_the_running_config(tmp_path):
    rig, path = rig_from_file(tmp_path)
    before = rig.handle({"cmd": "show", "what": "firewall"})["result"]
    path.write_text(path.read_text().replace("max_sessions: 1000", "max_sessions: [1000"))
    answer = rig.handle({"cmd": "reload"})
    assert not answer["ok"] and "reload refused, the running config stays" in answer["error"], answer
    assert "not valid YAML at line" in answer["error"]
    edit_ok = NAT_YAML.replace("MAXSESS", "1000").replace("via: 203.0.113.10", "via: 198.51.100.1")
    path.write_text(edit_ok)  # valid YAML, but a next hop on no connected subnet
    answer = rig.handle({"cmd": "reload"})
    assert not answer["ok"] and "is not on a connected subnet" in answer["error"], answer
    assert rig.handle({"cmd": "show", "what": "firewall"})["result"] == before
    rig.send("trunk", out_frame(IP(src="172.16.10.11", dst="198.51.100.10") / UDP(sport=4001, dport=53)))
    assert one(rig.take("uplink"))[IP].src == "203.0.113.64"  # still forwarding as before
    assert rig.handle({"cmd": "show", "what": "counters"})["result"]["control"]["errors"] >= 2


def test_what_needs_a_restart_is_refused_and_named(tmp_path):
    rig, path = rig_from_file(tmp_path)
    edit(path, lambda r: (r["ports"]["trunk"].update(ifname="edge1-eth9"), sr(r)["firewall"]["rules"].clear()))
    answer = rig.handle({"cmd": "reload"})
    assert not answer["ok"] and "need a restart: ports" in answer["error"], answer
    # All or nothing: the firewall change in the same file was not applied either.
    assert [r["name"] for r in rig.handle({"cmd": "show", "what": "firewall"})["result"]["t1"]["rules"]] == [
        "no-telnet"
    ]
