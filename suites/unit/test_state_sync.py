"""Connection state replicated between edge-ha's two SRs (gateway/ha/sync.py), in process:
two datapaths built from the plan, their transit ports wired to each other in memory."""

from __future__ import annotations

import ipaddress
import time

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether

import topologies
from gateway import config
from gateway.datapath import Datapath
from gateway.ha import syncwire as sync_mod
from gateway.headers import ip_int
from suites.duts.reference import render
from suites.unit.conftest import FakeWire

PLAN = topologies.plan("edge-ha")
DR_MAC = PLAN["transit"]["mac"]["hv1"]
TRANSIT_MAC = PLAN["transit"]["mac"]
PR_MAC = PLAN["hosts"]["pr"]["mac"]
UPLINK_MAC = {e: PLAN["gateways"][e]["routers"][0]["sr"]["ports"][0]["mac"] for e in ("edge1", "edge2")}
POOL = "203.0.113.10"
T1, EXT1 = "172.16.10.11", "198.51.100.10"


class Edge:
    def __init__(self, name: str) -> None:
        self.name = name
        self.dp = Datapath(config.build(render(PLAN, name), f"{name}.yaml"))
        self.wires = {p: FakeWire() for p in self.dp.model.ports}
        for p, w in self.wires.items():
            self.dp.attach(p, w)
        self.sr = self.dp.model.router("t1", "sr")
        self.ct = self.sr.services.ct  # type: ignore[union-attr]
        self.sync = self.dp.sync
        assert self.sync is not None
        self.channel = self.sync.channels["t1-sr"]
        self.to_dr: list[bytes] = []
        # The DR and the provider router are known neighbours (as after their first ARP).
        for port, mac, ip, me in (
            ("transit", DR_MAC, "169.254.0.1", TRANSIT_MAC[name]),
            ("uplink", PR_MAC, "203.0.113.254", UPLINK_MAC[name]),
        ):
            own = PLAN["transit"]["sr"][name] if port == "transit" else PLAN["uplinks"][name]
            self.recv(port, Ether(src=mac, dst=me) / ARP(op=2, hwsrc=mac, psrc=ip, hwdst=me, pdst=own))
        self.take("transit")
        self.take("uplink")

    def recv(self, port: str, frame) -> None:
        self.dp.receive(self.dp.model.ports[port], bytearray(bytes(frame)), None)

    def take(self, port: str) -> list[bytes]:
        w = self.wires[port]
        out = list(w.sent)
        w.sent.clear()
        return out

    def drops(self) -> dict[str, int]:
        return self.dp.pipeline.drops()


class Pair:
    """edge1 and edge2 with their transit ports on one in-memory segment."""

    def __init__(self) -> None:
        self.e1, self.e2 = Edge("edge1"), Edge("edge2")
        self.now = time.monotonic()  # the datapaths' clock
        self.lost: list[bytes] = []
        self.drop_next = 0  # sync frames to lose on the way
        self.settle()

    def exchange(self, rounds: int = 10) -> None:
        """Carry what each sent on its transit port to the other (the DR's frames are kept)."""
        for _ in range(rounds):
            moved = False
            for a, b in ((self.e1, self.e2), (self.e2, self.e1)):
                a.sync.flush(self.now)
                for f in a.take("transit"):
                    is_sync = len(f) > 37 and f[23] == 17 and f[36:38] == b"\x0e\xc4"
                    if is_sync and self.drop_next:
                        self.drop_next -= 1
                        self.lost.append(f)
                        continue
                    if f[0:6] == bytes.fromhex(DR_MAC.replace(":", "")):
                        a.to_dr.append(f)  # for the DR (not on this in-memory segment)
                        continue
                    b.dp.receive(b.dp.model.ports["transit"], bytearray(f), None)
                    moved = True
            if not moved:
                return

    def tick(self, seconds: float = 1.0) -> None:
        self.now += seconds
        for e in (self.e1, self.e2):
            e.sync.tick(self.now)
        self.exchange()

    def settle(self) -> None:
        """Both have heard each other and synced (each asked for the other's table at start)."""
        self.tick(0.0)
        self.tick(2.5)
        assert all(p.synced for e in (self.e1, self.e2) for p in e.channel.peers.values())


def tcp_out(flags: str, sport: int = 40000, seq: int = 1000, ack: int = 0, payload: bytes = b"", edge: str = "edge1"):
    return (
        Ether(src=DR_MAC, dst=TRANSIT_MAC[edge])
        / IP(src=T1, dst=EXT1, ttl=63)
        / TCP(sport=sport, dport=80, flags=flags, seq=seq, ack=ack)
        / payload
    )


def tcp_in(edge: str, flags: str, dport: int, seq: int = 5000, ack: int = 0, payload: bytes = b""):
    return (
        Ether(src=PR_MAC, dst=UPLINK_MAC[edge])
        / IP(src=EXT1, dst=POOL, ttl=63)
        / TCP(sport=80, dport=dport, flags=flags, seq=seq, ack=ack)
        / payload
    )


def establish(pair: Pair, sport: int = 40000) -> int:
    """A TCP connection t1 -> ext1:80 through edge1's SNAT; its public port."""
    e1 = pair.e1
    e1.recv("transit", tcp_out("S", sport))
    (syn,) = e1.take("uplink")
    public = IP(syn[14:])
    assert public.src == POOL, e1.drops()
    port = public[TCP].sport
    e1.recv("uplink", tcp_in("edge1", "SA", port, ack=1001))
    assert len(e1.take("transit")) == 1
    e1.recv("transit", tcp_out("A", sport, seq=1001, ack=5001))
    assert len(e1.take("uplink")) == 1
    return port


@pytest.fixture
def pair() -> Pair:
    return Pair()


def test_an_established_snat_connection_is_on_the_standby_and_continues_after_takeover(pair):
    port = establish(pair)
    pair.exchange()
    (conn,) = [c for c in pair.e2.ct.conns() if c.orig.sport == 40000]
    assert conn.state == "established" and conn.peer == ip_int("169.254.0.2")
    assert (conn.reply.dst, conn.reply.dport) == (ip_int(POOL), port), "the same public address and port"
    # The standby holds the public port: its own new connections cannot be given it.
    assert port in pair.e2.sr.services.nat._used[(6, ip_int(POOL))]
    # It does not answer for the active SR's public addresses while the active is up.
    e2 = pair.e2
    who_has = Ether(src=PR_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(hwsrc=PR_MAC, psrc="203.0.113.254", pdst=POOL)
    e2.recv("uplink", who_has)
    assert e2.take("uplink") == []
    # edge1 fails: edge2 takes over its addresses, the public NAT addresses among them.
    for ip in ("169.254.0.2", "203.0.113.1", POOL, "203.0.113.11"):
        e2.dp.ownership.takeover("t1", ip)
    e2.take("uplink")
    e2.take("transit")
    e2.recv("uplink", who_has)
    (answer,) = e2.take("uplink")
    assert ARP(answer[14:]).op == 2 and ARP(answer[14:]).psrc == POOL
    # The far side speaks first on the connection: the standby lets it in, to t1.
    e2.recv("uplink", tcp_in("edge2", "PA", port, seq=5001, ack=1001, payload=b"hello"))
    (down,) = e2.take("transit")
    assert IP(down[14:]).dst == T1 and IP(down[14:])[TCP].dport == 40000, e2.drops()
    # And t1's answer leaves from the same public address and port.
    e2.recv("transit", tcp_out("PA", seq=1001, ack=5006, payload=b"hi", edge="edge2"))
    (up,) = e2.take("uplink")
    assert (IP(up[14:]).src, IP(up[14:])[TCP].sport) == (POOL, port)


def test_state_changes_and_removal_are_replicated(pair):
    port = establish(pair)
    pair.exchange()
    pair.e1.recv("uplink", tcp_in("edge1", "R", port, seq=5001))
    pair.exchange()
    (conn,) = [c for c in pair.e2.ct.conns() if c.orig.sport == 40000]
    assert conn.state == "closed"
    pair.e1.ct.expire(time.monotonic() + 1e6)  # far in the future: every entry times out
    pair.exchange()
    assert [c for c in pair.e2.ct.conns() if c.orig.sport == 40000] == []
    assert port not in pair.e2.sr.services.nat._used.get((6, ip_int(POOL)), set()), "its public port is free again"


def test_a_lost_message_is_asked_for_again_and_applied_in_order(pair):
    pair.drop_next = 1
    establish(pair, 40001)  # its messages: lost ...
    pair.exchange()
    assert pair.lost
    assert not [c for c in pair.e2.ct.conns() if c.orig.sport == 40001]
    establish(pair, 40002)  # ... the next one arrives early: it waits, the gap is asked for
    pair.exchange()
    peer = pair.e2.channel.peers[ip_int("169.254.0.2")]
    assert peer.nacks_sent >= 1 and pair.e1.channel.resent >= 1
    ports = {c.orig.sport: c.state for c in pair.e2.ct.conns()}
    assert ports.get(40001) == "established" and ports.get(40002) == "established"
    assert not peer.stash


def test_a_lost_last_message_is_noticed_by_the_next_hello(pair):
    pair.drop_next = 1
    establish(pair, 40003)
    pair.exchange()
    assert not [c for c in pair.e2.ct.conns() if c.orig.sport == 40003]
    pair.tick(1.0)  # edge1's hello says how far it is: edge2 asks for the rest
    pair.tick(0.3)
    assert [c.state for c in pair.e2.ct.conns() if c.orig.sport == 40003] == ["established"]


def test_a_restarted_peer_gets_the_whole_table(pair):
    for sport in range(41000, 41020):
        establish(pair, sport)
    pair.exchange()
    pair.e2 = Edge("edge2")  # restarted: empty
    assert len(pair.e2.ct) == 0
    pair.settle()
    assert {c.orig.sport for c in pair.e2.ct.conns()} >= set(range(41000, 41020))
    assert pair.e1.channel.dumps >= 2  # one at start, one for the restarted peer


def test_a_connection_opened_on_the_standby_after_takeover_gets_another_public_port(pair):
    port = establish(pair, 40010)
    pair.exchange()
    e2 = pair.e2
    for ip in ("169.254.0.2", "203.0.113.1", POOL, "203.0.113.11"):
        e2.dp.ownership.takeover("t1", ip)
    e2.take("uplink")
    # A connection from t2 from the same source port: port preservation would give it the
    # same public port, were it not held by t1's replicated session.
    syn = tcp_out("S", sport=port, edge="edge2")
    syn[IP].src = "172.16.20.12"
    e2.recv("transit", syn)
    (syn,) = e2.take("uplink")
    assert IP(syn[14:]).src == POOL and IP(syn[14:])[TCP].sport != port, "a held public port is never given twice"


# -- bad input ------------------------------------------------------------------------------
def sync_frame(_pair: Pair, payload: bytes, src: str = "169.254.0.2", ttl: int = 255) -> Ether:
    return (
        Ether(src=TRANSIT_MAC["edge1"], dst=TRANSIT_MAC["edge2"])
        / IP(src=src, dst="169.254.0.3", ttl=ttl)
        / UDP(sport=3780, dport=3780)
        / payload
    )


def update(channel, seq: int, records: list[bytes], boot: int | None = None) -> bytes:
    return sync_mod.HEADER.pack(
        sync_mod.MAGIC, sync_mod.VERSION, sync_mod.UPDATE, 0, channel.boot if boot is None else boot, seq, len(records)
    ) + b"".join(records)


def record(name: str = "tenants", state: int = 3, sport: int = 42000, op: int = sync_mod.UPSERT) -> bytes:
    fixed = sync_mod.RECORD.pack(
        op, 6, ip_int(T1), sport, ip_int(EXT1), 80, ip_int(EXT1), 80, ip_int(POOL), sport, state, 0, 0, 0, 0
    )
    raw = name.encode()
    return fixed + bytes((len(raw),)) + raw + b"\0\0\0"


def test_bad_replication_messages_are_refused_and_counted_and_change_nothing(pair):
    e1, e2 = pair.e1, pair.e2
    peer = e2.channel.peers[ip_int("169.254.0.2")]
    before = {c.orig for c in e2.ct.conns()}
    seq = peer.expected
    cases = [
        (sync_frame(pair, update(e1.channel, seq, [record()]), src="169.254.0.9"), None, "not-peer"),
        (sync_frame(pair, update(e1.channel, seq, [record()]), ttl=254), None, "not-peer"),
        (sync_frame(pair, b"ELct\x01"), peer, "malformed"),
        (sync_frame(pair, b"XXXX" + update(e1.channel, seq, [record()])[4:]), peer, "malformed"),
        (sync_frame(pair, update(e1.channel, seq, [record()])[:-3]), peer, "malformed"),  # a record cut short
    ]
    for frame, who, reason in cases:
        counts = (who.refused if who is not None else e2.channel.refused).copy()
        e2.recv("transit", frame)
        after = who.refused if who is not None else e2.channel.refused
        assert after[reason] == counts[reason] + 1, (reason, dict(after))
    assert {c.orig for c in e2.ct.conns()} == before
    # A record naming a rule edge2 does not have, and one with a state out of range.
    seq = peer.expected
    e2.recv("transit", sync_frame(pair, update(e1.channel, seq, [record(name="nope"), record(state=99, sport=42001)])))
    assert peer.refused["unknown-rule"] == 1 and peer.refused["bad-record"] == 1
    assert {c.orig for c in e2.ct.conns()} == before
    # A good one is applied once; sent again (replayed) it is refused.
    good = sync_frame(pair, update(e1.channel, peer.expected, [record(sport=42002)]))
    e2.recv("transit", good)
    assert any(c.orig.sport == 42002 for c in e2.ct.conns())
    e2.recv("transit", good)
    assert peer.refused["replayed"] == 1
    # One message of another boot (a forgery, say) does not end the peer's life as we know it.
    old = e1.channel.boot
    e2.recv("transit", sync_frame(pair, update(e1.channel, 1, [], boot=old ^ 1)))
    assert peer.refused["unconfirmed-boot"] == 1 and peer.boot == old
    e2.recv("transit", sync_frame(pair, update(e1.channel, peer.expected, [record(sport=42004)])))
    assert any(c.orig.sport == 42004 for c in e2.ct.conns()), "the real peer goes on"
    # Two are a restart; then a message of the boot the peer had before is a replay.
    e2.recv("transit", sync_frame(pair, update(e1.channel, 1, [], boot=old ^ 1)))
    e2.recv("transit", sync_frame(pair, update(e1.channel, 2, [], boot=old ^ 1)))
    assert peer.boot == old ^ 1
    e2.recv("transit", sync_frame(pair, update(e1.channel, 99, [record(sport=42003)], boot=old)))
    assert peer.refused["replayed"] == 2 and not any(c.orig.sport == 42003 for c in e2.ct.conns())
    # The daemon's own accounting is whole: nothing reached the pipeline's error counter.
    assert e2.dp.pipeline.internal_errors == 0


def test_installs_beyond_the_quota_are_refused_and_counted(pair):
    e1, e2 = pair.e1, pair.e2
    e2.ct.limit = len(e2.ct) + 2
    peer = e2.channel.peers[ip_int("169.254.0.2")]
    e2.recv("transit", sync_frame(pair, update(e1.channel, peer.expected, [record(sport=43000 + i) for i in range(5)])))
    assert len(e2.ct) == e2.ct.limit and peer.refused["table-full"] == 3


def test_the_rate_bounds_what_leaves_and_the_rest_follows(pair):
    ch = pair.e1.channel
    ch.rate, ch.burst, ch.tokens = 1000, 10, 10.0
    for sport in range(44000, 44030):
        establish(pair, sport)
    before = ch.sent_records
    ch.flush(pair.now, pair.e1.dp._sync_send)
    assert ch.sent_records - before == 10 and ch.pending()
    for _ in range(10):
        pair.now += 0.02
        pair.exchange()
    assert {c.orig.sport for c in pair.e2.ct.conns()} >= set(range(44000, 44030))


def test_a_reply_through_the_other_sr_waits_for_the_replication_then_crosses(pair):
    """Active/active: t1's SYN left through edge2, the SYN-ACK comes back through edge1 (it
    answers for the public address) before edge2's message about the connection.  edge1
    holds it a moment and forwards it once the entry is in: nothing is dropped."""
    e1, e2 = pair.e1, pair.e2
    e2.recv("transit", tcp_out("S", sport=45000, edge="edge2"))
    (syn,) = e2.take("uplink")
    port = IP(syn[14:])[TCP].sport
    e1.recv("uplink", tcp_in("edge1", "SA", port, ack=1001))  # before any replication
    assert e1.take("transit") == [] and e1.drops().get("sr/nat-no-session", 0) == 0
    assert e1.sync.waiting.show()["waiting"] == 1
    now = time.monotonic()  # (within the reply's wait: the datapaths' clock, not the pair's)
    e2.sync.flush(now)
    for f in e2.take("transit"):  # edge2's message arrives ...
        e1.recv("transit", f)
    e1.sync.flush(now)  # ... and the held reply runs again
    (down,) = [f for f in e1.take("transit") if IP(f[14:]).dst == T1]
    assert IP(down[14:])[TCP].dport == 45000
    assert e1.sync.waiting.show() == {"held": 1, "released": 1, "dropped": 0, "not_held": 0, "waiting": 0}


def test_a_packet_of_no_connection_anywhere_is_dropped_and_counted_after_its_wait(pair):
    e1 = pair.e1
    e1.recv("uplink", tcp_in("edge1", "SA", 50999, ack=1))
    assert e1.drops().get("sr/nat-no-session", 0) == 0
    e1.sync.flush(time.monotonic() + 0.06)  # past its wait
    assert e1.drops()["sr/ct-invalid"] == 1 and e1.take("transit") == []  # a SYN-ACK of no connection
    assert e1.sync.waiting.show()["dropped"] == 1


def test_fuzzed_replication_messages_never_raise_and_leave_the_table_whole(pair):
    """Mutated copies of a good UPDATE (bytes flipped, cut, grown) into edge2's channel: each is
    applied, refused or counted; nothing raises; every entry is reachable by both its tuples
    and the node's connection count matches the table."""
    import random

    e1, e2 = pair.e1, pair.e2
    rng = random.Random(5)
    peer = e2.channel.peers[ip_int("169.254.0.2")]
    records = [record(sport=46000 + i) for i in range(3)]
    for i in range(2000):
        msg = bytearray(update(e1.channel, max(1, peer.expected + rng.choice((0, 0, 1, -1))), records))
        for _ in range(rng.randint(0, 3)):
            at = rng.randrange(len(msg))
            msg[at] = rng.randrange(256)
        if rng.random() < 0.2:
            msg = msg[: rng.randrange(len(msg))]
        if rng.random() < 0.1:
            msg += bytes(rng.randrange(256) for _ in range(rng.randint(1, 40)))
        e2.channel.receive(ip_int("169.254.0.2"), 255, None, bytes(msg), pair.now + i * 0.001, lambda *a: None)
    ct = e2.ct
    for conn in ct.conns():
        assert ct.lookup(conn.orig)[0] is conn and ct.lookup(conn.reply)[0] is conn
    assert ct.budget.used == len(ct) + len(e2.dp.model.router("t1", "sr").services.ct.conns()) - len(ct)
    assert sum(peer.refused.values()) > 0 and peer.applied > 0


def ns_from(edge: Edge, port: str, src: str, mac: str, target: str) -> None:
    """A neighbour solicitation for ``target`` from ``src``: the SR learns the solicitor."""
    from socket import AF_INET6, inet_ntop, inet_pton

    from scapy.layers.inet6 import ICMPv6ND_NS, ICMPv6NDOptSrcLLAddr, IPv6, in6_getnsma, in6_getnsmac

    group = inet_ntop(AF_INET6, in6_getnsma(inet_pton(AF_INET6, target)))
    frame = (
        Ether(src=mac, dst=in6_getnsmac(inet_pton(AF_INET6, group)))
        / IPv6(src=src, dst=group, hlim=255)
        / ICMPv6ND_NS(tgt=target)
        / ICMPv6NDOptSrcLLAddr(lladdr=mac)
    )
    edge.recv(port, frame)
    edge.take(port)


def test_an_ipv6_connection_is_replicated_and_continues_on_the_standby_after_takeover(pair):
    """An IPv6 TCP connection t1 -> ext1 (tracked, not translated) is on the standby with its
    state, and after the takeover of edge1's IPv6 addresses the far side's next segment is let
    in by edge2: without the replication it would be ct-invalid (no SYN, no connection)."""
    from scapy.layers.inet6 import IPv6

    t1, ext1 = "2001:db8:0:10::11", "2001:db8:c6::10"
    for e in (pair.e1, pair.e2):
        ns_from(e, "transit", "fd00:a9fe::1", DR_MAC, PLAN["transit"]["sr6"][e.name])
        ns_from(e, "uplink", "2001:db8:cb::fe", PR_MAC, PLAN["uplinks6"][e.name])

    def out6(edge: str, flags: str, seq: int, ack: int = 0):
        return (
            Ether(src=DR_MAC, dst=TRANSIT_MAC[edge])
            / IPv6(src=t1, dst=ext1, hlim=63)
            / TCP(sport=41000, dport=80, flags=flags, seq=seq, ack=ack)
        )

    def in6(edge: str, flags: str, seq: int, ack: int, payload: bytes = b""):
        return (
            Ether(src=PR_MAC, dst=UPLINK_MAC[edge])
            / IPv6(src=ext1, dst=t1, hlim=63)
            / TCP(sport=80, dport=41000, flags=flags, seq=seq, ack=ack)
            / payload
        )

    e1, e2 = pair.e1, pair.e2
    e1.recv("transit", out6("edge1", "S", 1000))
    (syn,) = e1.take("uplink")
    assert IPv6(syn[14:]).src == t1, "untranslated"
    e1.recv("uplink", in6("edge1", "SA", 5000, 1001))
    assert len(e1.take("transit")) == 1
    e1.recv("transit", out6("edge1", "A", 1001, 5001))
    assert len(e1.take("uplink")) == 1
    pair.exchange()
    (conn,) = [c for c in e2.ct.conns() if c.orig.sport == 41000]
    assert conn.state == "established" and conn.orig.src == int(ipaddress.IPv6Address(t1))
    assert conn.peer == ip_int("169.254.0.2")
    for ip in ("169.254.0.2", "203.0.113.1", "fd00:a9fe::2", "2001:db8:cb::1"):
        e2.dp.ownership.takeover("t1", ip)
    e2.take("uplink")
    e2.take("transit")
    e2.recv("uplink", in6("edge2", "PA", 5001, 1001, b"hello"))
    (down,) = e2.take("transit")
    assert IPv6(down[14:]).dst == t1 and bytes(IPv6(down[14:])[TCP].payload) == b"hello", e2.drops()
    # Its end and its removal go too.
    e1.recv("uplink", in6("edge1", "R", 5006, 0))
    pair.exchange()
    assert [c.state for c in e2.ct.conns() if c.orig.sport == 41000] == ["closed"]
    e1.ct.expire(time.monotonic() + 1e6)
    pair.exchange()
    assert not [c for c in e2.ct.conns() if c.orig.sport == 41000]


def test_an_ipv6_record_whose_addresses_fit_in_32_bits_is_refused(pair):
    """An IPv6 record with an address in ::/96 would be taken for an IPv4 connection by the
    table (which tells the families apart by width): refused as a bad record, nothing added."""
    e1, e2 = pair.e1, pair.e2
    peer = e2.channel.peers[ip_int("169.254.0.2")]
    fixed = sync_mod.RECORD.pack(sync_mod.UPSERT, 6, 0, 42100, 0, 80, 0, 80, 0, 42100, 3, 0, 0, sync_mod.IPV6, 0)
    addrs = [x.to_bytes(16, "big") for x in (ip_int(T1), 1 << 100, 1 << 100, ip_int(T1))]
    rec = fixed + b"".join(addrs) + b"\0\0\0\0"
    before = len(e2.ct)
    e2.recv("transit", sync_frame(pair, update(e1.channel, peer.expected, [rec])))
    assert peer.refused["bad-record"] == 1 and len(e2.ct) == before


def test_an_ipv6_reply_through_the_other_sr_waits_for_the_replication_then_crosses(pair):
    """Active/active over IPv6: the SYN-ACK of a connection edge2 opened comes back through
    edge1 before edge2's message about it; edge1 holds it (not ct-invalid) and lets it in."""
    from scapy.layers.inet6 import IPv6

    t1, ext1 = "2001:db8:0:10::11", "2001:db8:c6::10"
    e1, e2 = pair.e1, pair.e2
    for e in (e1, e2):
        ns_from(e, "transit", "fd00:a9fe::1", DR_MAC, PLAN["transit"]["sr6"][e.name])
        ns_from(e, "uplink", "2001:db8:cb::fe", PR_MAC, PLAN["uplinks6"][e.name])
    e2.recv(
        "transit",
        Ether(src=DR_MAC, dst=TRANSIT_MAC["edge2"]) / IPv6(src=t1, dst=ext1) / TCP(sport=41500, dport=80, flags="S"),
    )
    assert len(e2.take("uplink")) == 1
    e1.recv(
        "uplink",
        Ether(src=PR_MAC, dst=UPLINK_MAC["edge1"])
        / IPv6(src=ext1, dst=t1)
        / TCP(sport=80, dport=41500, flags="SA", ack=1),
    )
    assert e1.take("transit") == [] and e1.drops().get("sr/ct-invalid", 0) == 0
    assert e1.sync.waiting.show()["waiting"] == 1
    now = time.monotonic()
    e2.sync.flush(now)
    for f in e2.take("transit"):  # edge2's message arrives ...
        e1.recv("transit", f)
    e1.sync.flush(now)  # ... and the held reply runs again
    (down,) = [f for f in e1.take("transit") if f[12:14] == b"\x86\xdd" and IPv6(f[14:]).dst == t1]
    assert IPv6(down[14:])[TCP].dport == 41500
    assert e1.sync.waiting.show()["released"] == 1


def test_an_unsolicited_looking_ipv6_udp_reply_through_the_other_sr_waits_for_the_replication(pair):
    """Active/active without NAT: t1's UDP flow left through edge2, its reply comes back through
    edge1 before edge2's message about it.  Without a connection the firewall would drop it
    as unsolicited (after routing); edge1 holds it before routing instead and lets it in once
    the entry is in.  A datagram nobody sent first still ends as fw-unsolicited."""
    from scapy.layers.inet6 import IPv6

    t1, ext1 = "2001:db8:0:10::11", "2001:db8:c6::10"
    e1, e2 = pair.e1, pair.e2
    for e in (e1, e2):
        ns_from(e, "transit", "fd00:a9fe::1", DR_MAC, PLAN["transit"]["sr6"][e.name])
        ns_from(e, "uplink", "2001:db8:cb::fe", PR_MAC, PLAN["uplinks6"][e.name])
    out = Ether(src=DR_MAC, dst=TRANSIT_MAC["edge2"]) / IPv6(src=t1, dst=ext1) / UDP(sport=41600, dport=53) / b"q"
    e2.recv("transit", out)
    assert len(e2.take("uplink")) == 1
    back = Ether(src=PR_MAC, dst=UPLINK_MAC["edge1"]) / IPv6(src=ext1, dst=t1) / UDP(sport=53, dport=41600) / b"a"
    e1.recv("uplink", back)
    assert e1.take("transit") == [] and e1.drops().get("sr/fw-unsolicited", 0) == 0
    assert e1.sync.waiting.show()["waiting"] == 1
    now = time.monotonic()
    e2.sync.flush(now)
    for f in e2.take("transit"):
        e1.recv("transit", f)
    e1.sync.flush(now)
    (down,) = [f for f in e1.take("transit") if f[12:14] == b"\x86\xdd" and IPv6(f[14:]).dst == t1]
    assert bytes(IPv6(down[14:])[UDP].payload) == b"a"
    stray = Ether(src=PR_MAC, dst=UPLINK_MAC["edge1"]) / IPv6(src=ext1, dst=t1) / UDP(sport=53, dport=41601) / b"x"
    e1.recv("uplink", stray)
    e1.sync.flush(time.monotonic() + 0.06)  # past its wait
    assert e1.drops()["sr/fw-unsolicited"] == 1 and e1.sync.waiting.show()["dropped"] == 1
