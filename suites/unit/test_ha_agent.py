"""The HA agent's decisions, with its datapath socket replaced by a socketpair."""

from __future__ import annotations

import socket

import pytest

import topologies
from gateway import config
from gateway.ha import agent as agent_mod
from gateway.ha.bfd import DOWN, UP
from gateway.io.ipc import decode
from suites.duts.reference import render


@pytest.fixture
def ha_agent(monkeypatch):
    plan = topologies.plan("edge-ha")
    cfg = config.build(render(plan, "edge2"), "edge2.yaml")
    agent = agent_mod.Agent(cfg)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ours.setblocking(False)
    theirs.settimeout(1)
    agent.sock = ours
    links = {"up": True}
    monkeypatch.setattr(agent_mod, "link_up", lambda name: links["up"])
    yield agent, theirs, links
    ours.close()
    theirs.close()


def messages(sock) -> list[dict]:
    out = []
    sock.setblocking(False)
    while True:
        try:
            meta, _ = decode(sock.recv(65536))
        except BlockingIOError:
            return out
        out.append(meta)


def set_state(peer, state: int, now: float) -> None:
    for path in peer.paths:
        path.session._set_state(state, 0, now)


def test_paths_per_peer_address(ha_agent):
    agent, _, _ = ha_agent
    (peer,) = agent.peers
    assert [agent_mod.addr_str(p.remote) for p in peer.paths] == ["169.254.0.2", "203.0.113.1"]
    assert [agent_mod.addr_str(p.local) for p in peer.paths] == ["169.254.0.3", "203.0.113.2"]


def test_takeover_only_after_the_peer_was_up_and_every_path_is_down(ha_agent):
    agent, dp, _ = ha_agent
    (peer,) = agent.peers
    agent.react(peer, 0.0)
    assert not [m for m in messages(dp) if m["type"] == "takeover"], "a peer never seen up is not presumed dead"
    set_state(peer, UP, 1.0)
    agent.react(peer, 1.0)
    peer.paths[0].session._set_state(DOWN, 1, 2.0)  # transit path lost, uplink path still up
    agent.react(peer, 2.0)
    assert not [m for m in messages(dp) if m["type"] == "takeover"], "one path down is not a dead peer"
    peer.paths[1].session._set_state(DOWN, 1, 3.0)
    agent.react(peer, 3.0)
    taken = [m["ip"] for m in messages(dp) if m["type"] == "takeover"]
    # Its addresses (IPv6 ones too) and the public NAT addresses it answered for (the plan's peer publics).
    assert (
        taken
        == [
            "169.254.0.2",
            "203.0.113.1",
            "2001:db8:cb::1",
            "fd00:a9fe::2",
            "203.0.113.10",
            "203.0.113.11",
        ]
        and peer.held
    )


def test_release_on_recovery_with_preemption(ha_agent):
    agent, dp, _ = ha_agent
    (peer,) = agent.peers
    set_state(peer, UP, 1.0)
    agent.react(peer, 1.0)
    set_state(peer, DOWN, 2.0)
    agent.react(peer, 2.0)
    messages(dp)
    set_state(peer, UP, 3.0)
    agent.react(peer, 3.0)
    kinds = [m["type"] for m in messages(dp)]
    assert kinds.count("release") == 6 and "announce" in kinds and not peer.held


def test_fencing_on_link_loss(ha_agent):
    agent, dp, links = ha_agent
    (peer,) = agent.peers
    set_state(peer, UP, 1.0)
    agent.react(peer, 1.0)
    links["up"] = False
    agent.check_links(2.0)
    assert agent.fenced and all(p.session.state == 0 for p in peer.paths), "AdminDown on every session"
    set_state(peer, DOWN, 2.5)
    agent.react(peer, 2.5)
    assert not [m for m in messages(dp) if m["type"] == "takeover"], "a fenced SR takes over nothing"
    links["up"] = True
    agent.check_links(3.0)
    assert not agent.fenced and all(p.session.state == DOWN for p in peer.paths)


def test_a_bfd_neighbor_is_watched_from_our_address_on_its_segment_and_never_taken_over(ha_agent):
    """edge-ha's SRs run BFD with the provider router too (ha.bfd.neighbors)."""
    from gateway.ha.bfd import Packet
    from gateway.headers import IPv4, Udp

    agent, dp, _ = ha_agent
    (router, path), _v6 = agent.neighbors
    assert (router, agent_mod.addr_str(path.local), agent_mod.addr_str(path.remote)) == (
        "t1",
        "203.0.113.2",
        "203.0.113.254",
    )
    # A control packet from the neighbor (as bfdd sends it, TTL 255) reaches its session.
    body = Packet(state=DOWN, diag=0, mult=3, my_disc=77, your_disc=0, min_tx=100_000, min_rx=100_000).serialize()
    udp = Udp(49200, agent_mod.BFD_PORT).serialize(body, path.remote, path.local)
    ip = IPv4(src=path.remote, dst=path.local, proto=17, ttl=255).serialize(len(udp)) + udp
    agent.on_packet({"type": "packet", "router": "t1-sr"}, ip, 1.0)
    assert path.session.remote_disc == 77
    assert "203.0.113.254" in agent.status()["neighbors"]
    path.session._set_state(DOWN, 1, 2.0)
    (peer,) = agent.peers
    agent.react(peer, 2.0)
    assert not [m for m in messages(dp) if m["type"] == "takeover"], "a neighbor is never taken over"


def test_a_bfd_neighbor_over_ipv6_runs_from_our_ipv6_address_with_hop_limit_255(ha_agent):
    """The provider router is a BFD neighbor over IPv6 too: the session runs between the SR's
    IPv6 uplink address and the neighbor's, its packets leave with hop limit 255 and a UDP
    checksum (mandatory in IPv6), and one that came with another hop limit is not taken."""
    from scapy.layers.inet import UDP
    from scapy.layers.inet6 import IPv6

    from gateway.ha.bfd import Packet

    agent, _dp, _ = ha_agent
    _v4, (router, path) = agent.neighbors
    assert (router, agent_mod.addr_str(path.local), agent_mod.addr_str(path.remote)) == (
        "t1",
        "2001:db8:cb::2",
        "2001:db8:cb::fe",
    )
    out = IPv6(agent.bfd_packet(path, b"x" * 24))
    assert out.hlim == 255 and out.src == "2001:db8:cb::2" and out[UDP].dport == agent_mod.BFD_PORT
    sent = out[UDP].chksum
    del out[UDP].chksum
    assert IPv6(bytes(out))[UDP].chksum == sent != 0
    body = Packet(state=DOWN, diag=0, mult=3, my_disc=99, your_disc=0, min_tx=100_000, min_rx=100_000).serialize()
    for hlim, disc in ((254, 0), (255, 99)):
        pkt = IPv6(src="2001:db8:cb::fe", dst="2001:db8:cb::2", hlim=hlim) / UDP(sport=49300, dport=3784) / body
        agent.on_packet({"type": "packet", "router": "t1-sr"}, bytes(pkt), 1.0)
        assert path.session.remote_disc == disc, f"hop limit {hlim}"
    assert "2001:db8:cb::fe" in agent.status()["neighbors"]
