"""The EVI control plane without a network: the control process's discovery and MAC
advertisement logic (fed crafted packets, its messages to the datapath collected), the
datapath's handlers for it, and the transport's named clients."""

from __future__ import annotations

import socket

import pytest

from gateway import config
from gateway.evi import EVI_PORT
from gateway.evi.agent import MAX_RATE, Agent
from gateway.headers import IPPROTO_UDP, IPv4, Udp, ip_int
from gateway.io.ipc import decode, encode
from suites.unit.conftest import Rig
from suites.unit.test_evi import SITE_YAML
from suites.unit.test_tables import serving

KEY = "unit-test-key"


def site_config(n: int, servers: list[int], static: list[int] | None = None) -> str:
    links = [{"site": m, "address": f"10.255.0.{m}"} for m in (static or [])]
    text = SITE_YAML.format(n=n, mtu=1500, links=links) + f"  key: {KEY}\n"
    srv = ", ".join(f"10.255.0.{s}" for s in servers)
    return text + (f"  discovery: {{servers: [{srv}], interval: 1, hold: 3}}\n" if servers else "")


class Recorder(Agent):
    """An agent whose messages to the datapath are kept instead of sent."""

    def __init__(self, text: str) -> None:
        super().__init__(config.parse(text, "unit.yaml"))
        self.started = 0.0  # the tests' clock starts at 0
        self.out: list[dict] = []
        self.packets: list[tuple[int, dict]] = []

    def to_datapath(self, meta, payload=b""):  # type: ignore[no-untyped-def]
        self.out.append(meta)
        if meta["type"] == "send":
            body = self.open(payload[28:])
            self.packets.append((int.from_bytes(payload[16:20], "big"), body))

    def deliver(self, src: str, body: dict | bytes, now: float, key: str | None = None) -> None:
        if isinstance(body, dict):
            saved, self.key = self.key, (key or KEY).encode()
            data = self.seal(body)
            self.key = saved
        else:
            data = body
        s, d = ip_int(src), self.me.address
        udp = Udp(EVI_PORT, EVI_PORT).serialize(data, s, d)
        self.on_packet(IPv4(src=s, dst=d, proto=IPPROTO_UDP, ttl=64).serialize(len(udp)) + udp, now)

    def links(self) -> list[str]:
        sent = [m for m in self.out if m["type"] == "evi-links"]
        return [link["address"] for link in sent[-1]["links"]] if sent else []


def me(n: int) -> dict:
    return {"site": n, "address": f"10.255.0.{n}", "mtu": 1500, "netids": [5100]}


def test_a_server_answers_registrations_and_the_sites_learn_the_mesh():
    server = Recorder(site_config(1, [1]))
    server.deliver("10.255.0.2", {"type": "register", "me": me(2)}, 10.0)
    server.deliver("10.255.0.3", {"type": "register", "me": me(3)}, 10.0)
    dst, answer = server.packets[-1]
    assert dst == ip_int("10.255.0.3") and answer["type"] == "sites"
    assert sorted(s["address"] for s in answer["sites"]) == ["10.255.0.1", "10.255.0.2", "10.255.0.3"]
    server.discovery_round(10.5)
    assert server.links() == ["10.255.0.2", "10.255.0.3"]
    client = Recorder(site_config(2, [1]))
    client.discovery_round(10.0)
    assert [(d, b["type"]) for d, b in client.packets] == [(ip_int("10.255.0.1"), "register")]
    client.deliver("10.255.0.1", answer, 10.1)
    client.discovery_round(10.2)
    assert client.links() == ["10.255.0.1", "10.255.0.3"]  # everyone but itself


def test_a_silent_site_is_removed_after_its_hold_time_and_links_stay_without_a_server():
    server = Recorder(site_config(1, [1]))
    for t in (10.0, 11.0):
        server.deliver("10.255.0.2", {"type": "register", "me": me(2)}, t)
        server.deliver("10.255.0.3", {"type": "register", "me": me(3)}, t)
    server.discovery_round(11.5)
    assert server.links() == ["10.255.0.2", "10.255.0.3"]
    server.deliver("10.255.0.2", {"type": "register", "me": me(2)}, 13.5)  # site 3 went quiet at 11
    server.discovery_round(14.5)
    assert server.links() == ["10.255.0.2"]
    client = Recorder(site_config(2, [1]))
    client.deliver("10.255.0.1", {"type": "sites", "sites": [me(1), me(2), me(3)]}, 10.0)
    client.discovery_round(10.1)
    assert client.links() == ["10.255.0.1", "10.255.0.3"]
    client.discovery_round(60.0)  # the server has not answered for 50 s: the links stay
    assert client.links() == ["10.255.0.1", "10.255.0.3"]


def test_bad_key_garbage_spoofed_registrations_and_storms_are_counted_and_change_nothing():
    server = Recorder(site_config(1, [1]))
    server.deliver("10.255.0.2", {"type": "register", "me": me(2)}, 10.0, key="the-wrong-key")
    server.deliver("10.255.0.2", b"EVI1" + b"\x00" * 40 + b"{}", 10.0)
    server.deliver("10.255.0.2", b"garbage", 10.0)
    server.deliver("10.255.0.2", {"type": "register", "me": me(3)}, 10.0)  # claims another address
    server.deliver("10.255.0.2", {"type": "register", "me": {"site": "x"}}, 10.0)
    server.deliver("10.255.0.2", {"type": "nonsense"}, 10.0)
    assert server.counts["auth_failed"] == 2 and server.counts["malformed"] == 4
    assert server.registered == {} and server.packets == []
    for _ in range(MAX_RATE + 10):
        server.deliver("10.255.0.4", {"type": "register", "me": me(4)}, 20.0)
    assert server.counts["rate_limited"] == 10
    assert list(server.registered) == [ip_int("10.255.0.4")]  # the site itself is not shut out


def advert(macs: list) -> dict:
    return {"type": "macs", "site": 9, "macs": macs}


def test_mac_advertisements_install_move_by_sequence_number_and_age_out():
    agent = Recorder(site_config(1, [], static=[2, 3]))
    agent.deliver("10.255.0.2", advert([[5100, "02:00:00:00:00:aa", 0]]), 10.0)
    assert agent.out[-1] == {
        "type": "evi-install",
        "address": "10.255.0.2",
        "add": [[5100, "02:00:00:00:00:aa"]],
        "move": [],
        "withdraw": [],
    }
    # The MAC appears at site 3 with a higher number: it moved there.
    agent.deliver("10.255.0.3", advert([[5100, "02:00:00:00:00:aa", 1]]), 10.5)
    assert agent.out[-1]["address"] == "10.255.0.3" and agent.out[-1]["add"] == [[5100, "02:00:00:00:00:aa"]]
    n = len(agent.out)
    agent.deliver("10.255.0.2", advert([[5100, "02:00:00:00:00:aa", 0]]), 10.6)  # stale: ignored
    assert len(agent.out) == n
    # It moves here: advertised with the number after the last claim; the sites are told.
    agent.packets.clear()
    agent.on_local_macs([[5100, "02:00:00:00:00:aa"]], 11.0)
    rows = {(d, tuple(map(tuple, b["macs"]))) for d, b in agent.packets if b.get("macs")}
    assert rows == {(ip_int(f"10.255.0.{m}"), ((5100, "02:00:00:00:00:aa", 2),)) for m in (2, 3)}
    # ... and moves away again with a higher number: the datapath must move it off the local port.
    agent.deliver("10.255.0.2", advert([[5100, "02:00:00:00:00:aa", 3]]), 11.5)
    assert agent.out[-1]["move"] == [[5100, "02:00:00:00:00:aa"]] and agent.local == {}
    # Not advertised again within the hold time: withdrawn.
    agent.age_claims(11.5 + agent.hold + 0.1)
    assert agent.out[-1]["withdraw"] == [[5100, "02:00:00:00:00:aa"]]
    # A site that is no link of ours cannot install anything.
    agent.deliver("10.255.0.7", advert([[5100, "02:00:00:00:00:bb", 0]]), 20.0)
    assert agent.counts["not_a_site"] == 1 and not agent.claims


def test_an_advertisement_storm_is_bounded():
    agent = Recorder(site_config(1, [], static=[2]))
    agent.deliver(
        "10.255.0.2", advert([[5100, f"02:00:00:00:{i // 256:02x}:{i % 256:02x}", 0] for i in range(49)]), 1.0
    )
    assert agent.counts["malformed"] == 1 and not agent.claims  # more than a message may carry
    for k in range(MAX_RATE + 5):
        agent.deliver("10.255.0.2", advert([[5100, f"02:00:00:01:00:{k:02x}", 0]]), 2.0)
    assert len(agent.claims) == MAX_RATE and agent.counts["rate_limited"] == 5


# -- the datapath's side ----------------------------------------------------------------------
def test_datapath_links_from_discovery_and_installed_macs(tmp_path):
    rig = Rig(SITE_YAML.format(n=1, mtu=1500, links=[{"site": 2, "address": "10.255.0.2"}]))
    ctl = rig.dp.evi_control
    ok = ctl.set_links({"links": [me(2), me(3), me(1)]}, b"")
    assert ok["result"]["changed"] == ["+10.255.0.3"]  # 2 is static, 1 is this site
    evi = rig.dp.model.evi
    assert {ln.origin for ln in evi.links.values()} == {"static", "discovery"}
    ctl.install({"address": "10.255.0.3", "add": [[5100, "02:00:00:00:00:aa"], [4242, "02:00:00:00:00:ab"]]}, b"")
    macs = rig.handle({"cmd": "show", "what": "mac"})["result"]
    assert [(m["mac"], m["port"]) for m in macs] == [("02:00:00:00:00:aa", "evi-10.255.0.3")]  # 4242: not ours
    # A MAC learned on a local port is not taken by an add, only by a move.
    rig.send("trunk", bytes.fromhex("ffffffffffff020000000001810000640806") + b"\x00" * 28)
    ctl.install({"address": "10.255.0.3", "add": [[5100, "02:00:00:00:00:01"]]}, b"")
    assert ctl.show()["kept_local"] == 1
    assert [r for r in ctl.local_macs({}, b"")["macs"]] == [[5100, "02:00:00:00:00:01"]]
    ctl.install({"address": "10.255.0.3", "move": [[5100, "02:00:00:00:00:01"]]}, b"")
    assert ctl.local_macs({}, b"")["macs"] == []
    ctl.set_links({"links": [me(2)]}, b"")  # site 3 went away: its link and MACs with it
    assert ip_int("10.255.0.3") not in evi.links
    assert rig.handle({"cmd": "show", "what": "mac"})["result"] == []
    for bad in (
        {"links": "x"},
        {"links": [{"address": "10.255.0.9", "site": 0, "mtu": 1500, "netids": []}]},
        {"links": [{"address": 5, "site": 9, "mtu": 1500, "netids": []}]},
    ):
        with pytest.raises(ValueError):
            ctl.set_links(bad, b"")
    for bad in (
        {"address": "10.255.0.8", "add": []},
        {"address": "10.255.0.2", "add": [["x", "02:00:00:00:00:01"]]},
        {"address": "10.255.0.2", "add": [[5100, "zz"]]},
        {"address": "10.255.0.2", "add": [[5100, 7]]},
    ):
        with pytest.raises(ValueError):
            ctl.install(bad, b"")


def test_named_clients_get_only_their_punts(tmp_path):
    rig = Rig(SITE_YAML.format(n=1, mtu=1500, links=[]))
    path = str(tmp_path / "evi.sock")
    server = rig.dp.open_ipc(path)
    assert rig.dp.open_ipc(path) is server  # one server per path
    with serving(server):
        socks = {}
        for name in ("evi", "ha", None):
            s = socks[name] = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            s.settimeout(5)
            s.connect(path)
            if name is not None:
                s.send(encode({"type": "hello", "client": name}))
                assert decode(s.recv(4096))[0] == {"type": "hello", "client": name}
        from suites.lib.expect import poll

        poll(lambda: len(server.clients) == 3, what="the three clients accepted")  # (the nameless one too)
        bad = socks["ha"]
        bad.send(encode({"type": "hello", "client": 5}))
        assert decode(bad.recv(4096))[0]["type"] == "error"
        assert rig.dp.punt("evi", {"type": "packet"}, b"x")
        assert decode(socks["evi"].recv(4096))[1] == b"x"
        assert decode(socks[None].recv(4096))[1] == b"x"  # no name: a listener that gets all
        socks["ha"].settimeout(0.3)
        with pytest.raises(TimeoutError):
            socks["ha"].recv(4096)
        for s in socks.values():
            s.close()


TWO_VLANS = SITE_YAML.replace(
    "  v200: {{records: [{{port: trunk, vlan: 200}}]}}", "  v200: {{records: [{{port: trunk, vlan: 200}}]}}"
).replace("  instances: {{v100: 5100}}", "  instances: {{v100: 5100, v200: 5201}}")


def test_two_edges_of_a_site_split_the_instances_and_one_takes_all_when_the_other_goes():
    text = (
        TWO_VLANS.format(n=2, mtu=1500, links=[])
        + f"  key: {KEY}\n  discovery: {{servers: [10.255.0.1], interval: 1, hold: 3}}\n"
    )
    agent = Recorder(text)
    agent.discovery_round(0.5)  # nothing heard yet: this edge forwards nothing until it knows its site
    assert [m for m in agent.out if m["type"] == "evi-af"] == [{"type": "evi-af", "netids": []}]
    assert agent.status()["appointed"] is None
    twin = {"site": 2, "address": "10.255.0.5", "mtu": 1500, "netids": []}
    agent.deliver("10.255.0.1", {"type": "sites", "sites": [me(1), me(2), twin]}, 10.0)
    agent.discovery_round(10.1)
    # 5100 % 2 == 0 -> the lower address (10.255.0.2, us); 5201 % 2 == 1 -> the twin.
    assert [m for m in agent.out if m["type"] == "evi-af"][-1] == {"type": "evi-af", "netids": [5100]}
    assert agent.links() == ["10.255.0.1"]  # the twin is no EVI link: a loop through the site
    registered = [b for _d, b in agent.packets if b["type"] == "register"][-1]["me"]
    assert registered["netids"] == [5100]  # remote sites carry only what we forward to us
    agent.deliver("10.255.0.1", {"type": "sites", "sites": [me(1), me(2)]}, 12.0)  # the twin is gone
    agent.discovery_round(12.1)
    assert [m for m in agent.out if m["type"] == "evi-af"][-1]["netids"] == [5100, 5201]


def test_a_standby_edge_learns_but_forwards_nothing_and_announces_what_it_takes_over():
    from scapy.layers.l2 import ARP, Dot1Q, Ether

    rig = Rig(SITE_YAML.format(n=1, mtu=1500, links=[{"site": 2, "address": "10.255.0.2"}]))
    ctl = rig.dp.evi_control
    ctl.install({"address": "10.255.0.2", "add": [[5100, "02:00:00:00:02:01"]]}, b"")
    assert ctl.appointed({"netids": []}, b"")["result"]["given"] == ["v100"]
    frame = bytes(Ether(src="02:00:00:00:01:01", dst="ff:ff:ff:ff:ff:ff") / Dot1Q(vlan=100) / ARP(pdst="10.0.0.9"))
    rig.send("trunk", frame)
    assert rig.take("core") == [] and rig.drops()["l2switch/not-appointed-forwarder"] == 1
    assert ctl.local_macs({}, b"")["macs"] == [[5100, "02:00:00:00:01:01"]]  # learned all the same
    assert ctl.appointed({"netids": [5100]}, b"")["result"]["taken"] == ["v100"]
    (announce,) = [Ether(f) for f in rig.take("trunk")]
    assert announce.src == "02:00:00:00:02:01" and announce.type == 0x8100 and announce[Dot1Q].type == 0x8035
    rig.send("trunk", frame)
    assert len(rig.take("core")) == 1  # the ARP broadcast crosses now (an ARP request to site 2)


def test_the_rate_windows_are_bounded_against_many_sources():
    from gateway.evi.agent import MAX_SOURCES

    agent = Recorder(site_config(1, [1]))
    for i in range(MAX_SOURCES + 50):
        agent.deliver(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", b"garbage", 5.0)
    assert len(agent.rate) <= MAX_SOURCES and agent.counts["rate_limited"] == 50
    agent.deliver("10.255.0.2", {"type": "register", "me": me(2)}, 7.0)  # a second on: room again
    assert ip_int("10.255.0.2") in agent.registered
