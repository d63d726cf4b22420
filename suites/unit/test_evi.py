"""EVI between sites in process: MAC-in-GRE encapsulation and decapsulation, flooding
control, split horizon, MTU, bad GRE, and the cache through tunnels.

Three datapaths (sites 1-3) on in-memory ports; their core ports share one
segment, which ``Core`` plays: it carries every frame a site puts on its core
port to the site whose MAC it is addressed to (a broadcast to all)."""

from __future__ import annotations

import pytest
from scapy.layers.inet import GRE, IP, UDP
from scapy.layers.l2 import ARP, Dot1Q, Ether

from suites.unit.conftest import Rig

SITE_YAML = """
node: site{n}
ports:
  trunk: {{ifname: s{n}-eth0, role: tenant}}
  core: {{ifname: s{n}-eth1, role: core}}
instances:
  v100: {{records: [{{port: trunk, vlan: 100}}]}}
  v200: {{records: [{{port: trunk, vlan: 200}}]}}
evi:
  site: {n}
  port: core
  address: 10.255.0.{n}/24
  mtu: {mtu}
  instances: {{v100: 5100}}
  links: {links}
"""

HOST = {1: "02:00:00:01:00:01", 2: "02:00:00:02:00:01", 3: "02:00:00:03:00:01"}
IPS = {1: "10.0.100.1", 2: "10.0.100.2", 3: "10.0.100.3"}


def site(n: int, mtu: int = 1500, cache: bool = True) -> Rig:
    links = [{"site": m, "address": f"10.255.0.{m}"} for m in (1, 2, 3) if m != n]
    rig = Rig(SITE_YAML.format(n=n, mtu=mtu, links=links))
    rig.dp.cache.enabled = cache
    return rig


class Core:
    """The core segment between the sites' core ports."""

    def __init__(self, *rigs: Rig) -> None:
        self.rigs = {r.dp.model.evi.site: r for r in rigs}
        self.seen: list[bytes] = []  # every frame put on the core

    def mac(self, n: int) -> bytes:
        return self.rigs[n].dp.model.evi.rport.mac

    def run(self) -> None:
        """Carry frames until the core is quiet."""
        for _ in range(20):
            moved = False
            for n, rig in self.rigs.items():
                for f in rig.take("core"):
                    self.seen.append(f)
                    moved = True
                    for m, other in self.rigs.items():
                        if m != n and (f[0:6] == b"\xff" * 6 or f[0:6] == self.mac(m)):
                            other.send("core", f)
            if not moved:
                return

    def gre(self) -> list[Ether]:
        return [Ether(f) for f in self.seen if Ether(f).haslayer(GRE)]


def host_frame(src: int, dst_mac: str, vlan: int = 100, size: int = 0) -> bytes:
    pad = b"x" * size
    return bytes(
        Ether(src=HOST[src], dst=dst_mac)
        / Dot1Q(vlan=vlan)
        / IP(src=IPS[src], dst="10.0.100.99")
        / UDP(sport=1000, dport=2000)
        / pad
    )


def arp_request(src: int, target: int, vlan: int = 100) -> bytes:
    return bytes(
        Ether(src=HOST[src], dst="ff:ff:ff:ff:ff:ff")
        / Dot1Q(vlan=vlan)
        / ARP(op=1, hwsrc=HOST[src], psrc=IPS[src], pdst=IPS[target])
    )


@pytest.fixture
def sites():
    s = {n: site(n) for n in (1, 2, 3)}
    return s, Core(*s.values())


def test_a_broadcast_reaches_every_remote_site_once_as_mac_in_gre(sites):
    s, core = sites
    s[1].send("trunk", arp_request(1, 2))
    core.run()
    gre = core.gre()
    assert sorted(p[IP].dst for p in gre) == ["10.255.0.2", "10.255.0.3"]  # one copy per remote site
    for p in gre:
        assert p[IP].src == "10.255.0.1" and p[IP].flags == "DF" and p[IP].ttl == 64 and p[IP].proto == 47
        assert p[GRE].key_present == 1 and p[GRE].chksum_present == 0 and p[GRE].seqnum_present == 0
        assert p[GRE].proto == 0x6558 and p[GRE].key == 5100 << 8
        inner = Ether(bytes(p[GRE].payload))
        assert inner.src == HOST[1] and inner.haslayer(ARP) and not inner.haslayer(Dot1Q)
    for n in (2, 3):  # delivered at both sites, tagged with the site's own VLAN 100
        out = [Ether(f) for f in s[n].take("trunk")]
        assert [(f[Dot1Q].vlan, f[ARP].pdst) for f in out] == [(100, IPS[2])]
    # ... and the sites learned host 1 against their link to site 1
    macs = {(m["mac"], m["port"]) for m in s[2].handle({"cmd": "show", "what": "mac"})["result"]}
    assert (HOST[1], "evi-10.255.0.1") in macs


def test_unicast_goes_to_the_one_site_that_has_the_mac_and_back(sites):
    s, core = sites
    s[1].send("trunk", arp_request(1, 2))
    core.run()
    for r in s.values():
        r.take("trunk")
    core.seen.clear()
    s[2].send("trunk", host_frame(2, HOST[1]))  # host 2 answers host 1: known unicast
    core.run()
    assert [p[IP].dst for p in core.gre()] == ["10.255.0.1"]
    got = [Ether(f) for f in s[1].take("trunk")]
    assert len(got) == 1 and got[0].src == HOST[2] and got[0][Dot1Q].vlan == 100 and got[0].haslayer(UDP)
    assert s[3].take("trunk") == []


def test_unknown_unicast_and_multicast_stay_local_but_selective_flooding_crosses(sites):
    s, core = sites
    s[1].send("trunk", host_frame(1, "02:00:00:09:09:09"))
    s[1].send("trunk", host_frame(1, "01:00:5e:01:02:03"))
    core.run()
    assert core.gre() == []
    assert s[1].dp.pipeline.counters()["evi_encap"]["encapsulated"] == 0
    flooding = Rig(
        SITE_YAML.format(n=1, mtu=1500, links=[{"site": 2, "address": "10.255.0.2"}]).replace(
            "  instances: {v100: 5100}", '  instances: {v100: 5100}\n  flood: {v100: ["02:00:00:09:09:09"]}'
        )
    )
    flooding.send("trunk", host_frame(1, "02:00:00:09:09:09"))
    flooding.send("trunk", host_frame(1, "02:00:00:09:09:0a"))
    assert flooding.dp.pipeline.counters()["evi_encap"]["encapsulated"] == 1


def test_a_local_vlan_is_not_extended(sites):
    s, core = sites
    s[1].send("trunk", arp_request(1, 2, vlan=200))
    core.run()
    assert core.gre() == []
    assert s[2].take("trunk") == [] and s[3].take("trunk") == []


def test_split_horizon_nothing_from_one_site_goes_on_to_another(sites):
    s, core = sites
    # Site 1 learns host 3 behind its link to site 3.
    s[3].send("trunk", arp_request(3, 1))
    core.run()
    for r in s.values():
        r.take("trunk")
    core.seen.clear()
    before = s[1].drops().get("l2switch/split-horizon", 0)
    # Site 1 gets GRE from site 2 for a MAC it has behind site 3.
    frame = bytes(
        Ether(src=core.mac(2), dst=core.mac(1))
        / IP(src="10.255.0.2", dst="10.255.0.1", flags="DF")
        / GRE(key_present=1, key=5100 << 8, proto=0x6558)
        / Ether(src=HOST[2], dst=HOST[3])
        / IP()
    )
    s[1].send("core", frame)
    assert s[1].take("core") == []  # not re-encapsulated to site 3
    assert s[1].drops().get("l2switch/split-horizon", 0) == before + 1
    # A broadcast from site 2 reaches site 1's hosts and no other site through site 1.
    s[1].send(
        "core",
        bytes(
            Ether(src=core.mac(2), dst=core.mac(1))
            / IP(src="10.255.0.2", dst="10.255.0.1", flags="DF")
            / GRE(key_present=1, key=5100 << 8, proto=0x6558)
            / Ether(src=HOST[2], dst="ff:ff:ff:ff:ff:ff")
            / ARP(psrc=IPS[2], pdst=IPS[1])
        ),
    )
    assert s[1].take("core") == []
    assert len(s[1].take("trunk")) >= 1


def test_a_frame_too_big_for_the_core_is_dropped_and_counted():
    s = {n: site(n, mtu=1400) for n in (1, 2)}
    core = Core(*s.values())
    s[2].send("trunk", arp_request(2, 1))
    core.run()
    core.seen.clear()
    # 1372 + 28 = 1400 fits (the inner frame carries no tag); one byte more does not.
    fits = host_frame(1, HOST[2], size=1372 - 14 - 20 - 8)
    assert len(fits) - 4 + 28 == 1400
    s[1].send("trunk", fits)
    s[1].send("trunk", fits + b"y")
    core.run()
    assert len(core.gre()) == 1 and len(core.gre()[0][IP]) == 1400
    assert s[1].drops()["evi_encap/mtu-exceeded"] == 1
    link = s[1].handle({"cmd": "show", "what": "evi"})["result"]["links"][0]
    assert link["mtu_drops"] == 1 and link["mtu"] == 1400


def _gre(src: str = "10.255.0.2", key: int = 5100 << 8, proto: int = 0x6558, inner: bytes | None = None, **kw):
    if inner is None:
        inner = bytes(Ether(src=HOST[2], dst="ff:ff:ff:ff:ff:ff") / ARP(psrc=IPS[2], pdst=IPS[1]))
    rig_mac = site(1).dp.model.evi.rport.mac
    return bytes(
        Ether(src="02:00:00:00:ff:02", dst=rig_mac)
        / IP(src=src, dst="10.255.0.1", flags="DF")
        / GRE(key_present=1, key=key, proto=proto, **kw)
        / inner
    )


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (_gre(src="10.255.0.9"), "not-a-neighbour"),
        (_gre(key=4242 << 8), "unknown-network-id"),
        (_gre(proto=0x0800), "gre-not-teb"),
        (_gre(inner=b"\x01\x02\x03"), "inner-truncated"),
        (_gre(seqnum_present=1, sequence_number=7), "gre-bad-header"),
        (_gre()[: 14 + 20 + 5], "gre-truncated"),
    ],
)
def test_bad_gre_is_dropped_by_name_and_the_edge_keeps_forwarding(frame, reason):
    rig = site(1)
    raw = bytearray(frame)
    if reason == "gre-truncated":  # keep the outer IPv4 header valid for its shorter length
        ip = IP(raw[14:])
        del ip.len, ip.chksum
        raw = bytearray(raw[:14] + bytes(ip))
    rig.send("core", bytes(raw))
    assert rig.drops().get(f"evi_decap/{reason}") == 1, rig.drops()
    assert rig.take("trunk") == []
    rig.send("core", _gre())  # a good one still goes through
    assert len(rig.take("trunk")) == 1


def test_cached_tunnels_send_the_same_bytes_as_the_stages():
    outs = {}
    for cache in (True, False):
        s = {n: site(n, cache=cache) for n in (1, 2)}
        core = Core(*s.values())
        s[1].send("trunk", arp_request(1, 2))
        core.run()
        s[2].send("trunk", host_frame(2, HOST[1]))
        core.run()
        for r in s.values():
            r.take("trunk")
        core.seen.clear()
        for i in range(5):  # with Ethernet padding too: it travels inside the tunnel as it came
            s[2].send("trunk", host_frame(2, HOST[1], size=i) + b"\0" * (3 * i))
            core.run()
        outs[cache] = (list(core.seen), s[1].take("trunk"))
        if cache:
            c1, c2 = (s[n].dp.cache.counters() for n in (1, 2))
            assert c2["hits"] >= 4 and c2["subtables"]["l2"] >= 1  # the encapsulating side
            assert c1["hits"] >= 4 and c1["subtables"]["tunnel"] == 1  # the decapsulating side
            rows = s[1].handle({"cmd": "show", "what": "cache"})["result"]["entries"]
            assert any("gre 10.255.0.2 > 10.255.0.1 network id 5100" in r["key"] for r in rows), rows
    assert outs[True] == outs[False]
    assert len(outs[True][1]) == 5


def test_removing_a_link_invalidates_the_flows_through_it():
    s = {n: site(n) for n in (1, 2)}
    core = Core(*s.values())
    s[1].send("trunk", arp_request(1, 2))
    core.run()
    for _ in range(2):
        s[2].send("trunk", host_frame(2, HOST[1]))
        core.run()
    assert s[2].dp.cache.counters()["hits"] >= 1
    core.seen.clear()
    s[2].dp.evi_control.remove_link(int.from_bytes(bytes([10, 255, 0, 1]), "big"))
    macs = s[2].handle({"cmd": "show", "what": "mac"})["result"]
    assert not any(m["port"] == "evi-10.255.0.1" for m in macs)  # forgotten with their link
    s[2].send("trunk", host_frame(2, HOST[1]))
    core.run()
    assert core.gre() == []  # unknown unicast again: not sent across


def test_an_arp_broadcast_for_a_router_of_an_extended_instance_still_crosses():
    """An extended instance with a router port: the ARP broadcast goes to the router and its
    flooded copy to the other sites (the copy knows its instance, so egress can encapsulate)."""
    text = SITE_YAML.format(n=1, mtu=1500, links=[{"site": 2, "address": "10.255.0.2"}]) + (
        "routers:\n  - name: t1\n    tlr_id: 1\n"
        '    dr: {ports: [{instance: v100, ip: 10.0.100.254/24, mac: "02:00:00:00:99:01"}]}\n'
    )
    rig = Rig(text)
    rig.send("trunk", arp_request(1, 2))
    assert rig.dp.pipeline.internal_errors == 0
    assert rig.dp.pipeline.counters()["evi_encap"]["encapsulated"] == 1


def test_the_tunnel_endpoint_forwards_nothing_and_a_link_carries_only_its_network_ids():
    rig = site(1)
    mac = rig.dp.model.evi.rport.mac
    through = Ether(src="02:00:00:00:ff:02", dst=mac) / IP(src="10.255.0.2", dst="192.0.2.1") / UDP()
    rig.send("core", bytes(through))
    assert rig.drops()["sr/not-forwarding"] == 1 and rig.take("core") == []
    # A link that carries no network id of ours (its site extends none we share).
    rig.dp.model.evi.add_link(2, int.from_bytes(bytes([10, 255, 0, 2]), "big"), None, frozenset({9}), "discovery")
    rig.send("core", _gre())
    assert rig.drops()["evi_decap/not-carried"] == 1 and rig.take("trunk") == []


def test_a_frame_for_a_link_removed_under_it_is_dropped_by_name():
    rig = site(1)
    link = next(iter(rig.dp.model.evi.links.values()))
    frame = Ether(src=HOST[1], dst=HOST[2]) / IP() / UDP()
    from gateway.packet import Packet

    pkt = Packet(bytearray(bytes(frame)), rig.port("trunk"), 100)
    pkt.instance = rig.dp.model.instances["v100"]
    pkt.outputs = [(link, None)]
    rig.dp.model.evi.remove_link(link.address)
    rig.dp.pipeline.run(pkt, "evi_encap")
    assert pkt.drop_reason == "evi_encap/no-link" and rig.take("core") == []
