"""Connection state replicated between the SRs of one logical router.

Where this sits: in the datapath process, beside ``ownership.py``; the
datapath calls :meth:`StateSync.flush` after every batch, :meth:`tick` once a
second, and hands it what peers send (:meth:`receive`, a punt of UDP port
3780 to an SR address).  It reads and writes each SR's conntrack table
(``services/conntrack.py``): the table journals what was created, changed
(a state change) and removed since the last message (``ConnTable.changed`` /
``gone``), and :meth:`ConnTable.install` puts a peer's entries in without
journalling them back.  After a takeover the standby already holds every
connection, with its NAT session and public port: nothing is committed, the
next packet of a connection simply finds its entry.

The channel: UDP between the SRs' transit addresses, TTL 255 on send and
checked on receive (RFC 5082, as BFD does), from a configured peer only.
Once a peer has spoken, its messages are answered at its MAC directly (the
peer's address may be one we hold for it after a takeover: it is back, but
not yet up).  The messages (UPDATE, HELLO, RESYNC, NACK: ``syncwire.py``)
carry the sender's ``boot`` (random at start) and ``seq`` (numbering its
UPDATEs); a record names the rules behind its connection, and one naming a
rule this SR does not have is refused (the peers' configs differ).

Repair: a receiver applies UPDATEs in order; one that arrives early waits
(at most :data:`STASH` of them) while the gap is asked for with a NACK; the
sender resends from its last :data:`RESEND` messages, or dumps its whole
table when they no longer hold the gap.  A message of an earlier seq or an
earlier boot is a replay: refused and counted.  Entries the peer refreshes
(used since the last refresh, every ``refresh`` s) stay alive on the standby;
what the peer forgot (its delete lost beyond repair) expires with its timeout.

Bounds: at most ``rate`` records a second leave; what waits is one journal
entry per connection (the table's size), and the deletes waiting are
bounded by :data:`MAX_GONE` (beyond it the journal is dropped and the whole
table dumped instead).  Installs count against the table's quota and the
node's bound like any connection; one beyond them is refused and counted.

Not replicated: the sequence adjustments of an ALG (an FTP control
connection whose PORT commands changed length) and related connections'
links to their control connection.
"""

from __future__ import annotations

import random
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

from gateway.ha import syncwire as wire
from gateway.ha.hold import WaitForPeers
from gateway.ha.syncpeer import Peer
from gateway.headers import IPPROTO_UDP, IPv4, Udp, checksum, ip_str, pseudo_header
from gateway.model import Model, Router
from gateway.services.conntrack import Conn
from gateway.services.rules import SnatRule

RESEND = 512  # messages kept for a NACK
STASH = 64  # early messages waiting for a gap to fill
MAX_GONE = 65536  # deletes waiting to leave
HELLO_EVERY, RESYNC_EVERY, NACK_EVERY = 1.0, 2.0, 0.2  # seconds between them, at least
LIMITED_WAIT = 0.005  # how soon to look again when the rate holds records back

Sender = Callable[[Router, int, "bytes | None", bytes], None]


class Channel:
    """One SR's replication to and from its peers."""

    def __init__(self, router: Router, peers: list[Peer], port: int, rate: int, refresh: float, now: float) -> None:
        assert router.services is not None and router.transit_port is not None
        self.router = router
        self.svc = router.services
        self.ct = router.services.ct
        self.ct.changed, self.ct.gone = {}, {}
        self.peers = {p.transit: p for p in peers}
        self.by_source = {a: p for p in peers for a in p.sources}
        self.port = port
        self.rate = rate
        self.burst = max(1, rate // 10)
        self.tokens = float(self.burst)
        self.refill_at = now
        self.refresh = refresh
        self.refreshed_at = now
        self.next_hello = now
        self.boot = random.randint(1, 2**32 - 1)
        self.seq = 0
        self.resend: deque[tuple[int, int, bytes, int]] = deque(maxlen=RESEND)  # (seq, flags, body, count)
        self.dump: deque[Conn] | None = None
        self.sent_messages = 0
        self.sent_records = 0
        self.resent = 0
        self.dumps = 0
        self.journal_dropped = 0
        self.installs = 0  # entries installed from peers since StateSync last looked
        self.corrupt = 0  # messages whose UDP checksum is wrong
        self.refused: Counter[str] = Counter()  # from no peer

    # -- sending ------------------------------------------------------------------------
    def pending(self) -> bool:
        ct = self.ct
        return bool(ct.changed or ct.gone) or self.dump is not None

    def start_dump(self) -> None:
        self.dump = deque(self.ct.conns())
        self.dumps += 1

    def _records(self, budget: int, now: float) -> tuple[list[bytes], bool]:
        """Up to ``budget`` encoded records: deletes, then changes, then the dump; and whether
        the dump ended with them."""
        ct = self.ct
        out: list[bytes] = []
        gone, changed = ct.gone, ct.changed
        assert gone is not None and changed is not None
        while gone and len(out) < budget:
            _id, conn = gone.popitem()
            out.append(wire.encode(wire.DELETE, conn, now))
        while changed and len(out) < budget:
            _id, conn = changed.popitem()
            if not conn.released:
                out.append(wire.encode(wire.UPSERT, conn, now))
        dump = self.dump
        if dump is None:
            return out, False
        while dump and len(out) < budget:
            conn = dump.popleft()
            if not conn.released:
                out.append(wire.encode(wire.UPSERT, conn, now))
        if dump:
            return out, False
        self.dump = None
        return out, True

    def flush(self, now: float, send: Sender) -> None:
        ct = self.ct
        if ct.gone is not None and len(ct.gone) > MAX_GONE:
            # More deletes waiting than the bound: start over from the table itself.
            ct.gone.clear()
            ct.changed.clear()  # type: ignore[union-attr]
            self.journal_dropped += 1
            self.start_dump()
        if not self.pending():
            return
        self.tokens = min(float(self.burst), self.tokens + (now - self.refill_at) * self.rate)
        self.refill_at = now
        if self.tokens < 1:
            return
        records, ended = self._records(int(self.tokens), now)
        self.tokens -= len(records)
        chunk: list[bytes] = []
        size = 0
        for rec in records:
            if chunk and size + len(rec) > wire.MAX_MESSAGE - wire.HEADER.size:
                self._update(chunk, 0, send)
                chunk, size = [], 0
            chunk.append(rec)
            size += len(rec)
        if chunk or ended:
            self._update(chunk, wire.DUMP_END if ended else 0, send)  # an empty table's dump: no records
        self.sent_records += len(records)

    def _update(self, records: list[bytes], flags: int, send: Sender) -> None:
        self.seq += 1
        body = b"".join(records)
        self.resend.append((self.seq, flags, body, len(records)))
        for peer in self.peers.values():
            self._send(peer, wire.UPDATE, flags, self.seq, len(records), body, send)

    def _send(self, peer: Peer, kind: int, flags: int, seq: int, count: int, body: bytes, send: Sender) -> None:
        payload = wire.HEADER.pack(wire.MAGIC, wire.VERSION, kind, flags, self.boot, seq, count) + body
        local = self.router.transit_port.ip  # type: ignore[union-attr]
        udp = Udp(self.port, self.port).serialize(payload, local, peer.transit)
        packet = IPv4(src=local, dst=peer.transit, proto=IPPROTO_UDP, ttl=255).serialize(len(udp)) + udp
        self.sent_messages += 1
        send(self.router, peer.transit, peer.mac, packet)

    def tick(self, now: float, send: Sender) -> None:
        if now >= self.next_hello:
            self.next_hello = now + HELLO_EVERY
            for peer in self.peers.values():
                self._send(peer, wire.HELLO, 0, self.seq, 0, b"", send)
        for peer in self.peers.values():
            if not peer.synced and now - peer.asked_at >= RESYNC_EVERY:
                peer.asked_at = now
                self._send(peer, wire.RESYNC, 0, self.seq, 0, b"", send)
        if self.refresh and now - self.refreshed_at >= self.refresh:
            # Keep the peers' copies of what is in use alive: their timers run too.
            changed = self.ct.changed
            assert changed is not None
            for conn in self.ct.used_since(self.refreshed_at):
                if conn.peer is None:
                    changed[conn.id] = conn
            self.refreshed_at = now

    # -- receiving ----------------------------------------------------------------------
    def receive(self, src: int, ttl: int, mac: bytes | None, payload: bytes, now: float, send: Sender) -> None:
        peer = self.by_source.get(src)
        if peer is None or ttl != 255:
            self.refused["not-peer"] += 1
            return
        peer.heard = now
        if mac is not None:
            peer.mac = mac
        if len(payload) < wire.HEADER.size:
            peer.refused["malformed"] += 1
            return
        magic, version, kind, flags, boot, seq, count = wire.HEADER.unpack_from(payload)
        if magic != wire.MAGIC or version != wire.VERSION or kind not in wire.KINDS:
            peer.refused["malformed"] += 1
            return
        refused = peer.believe(boot, kind, seq)
        if refused is not None:
            peer.refused[refused] += 1
            if refused == "unconfirmed-boot" and kind == wire.RESYNC:
                self.start_dump()  # (harmless if it was not the peer: it only costs a dump)
            return
        peer.messages += 1
        body = payload[wire.HEADER.size :]
        if kind == wire.HELLO:
            if seq >= peer.expected:
                self._nack(peer, seq, now, send)
        elif kind == wire.RESYNC:
            self.start_dump()
        elif kind == wire.NACK:
            if len(body) != wire.RANGE.size:
                peer.refused["malformed"] += 1
                return
            first, last = wire.RANGE.unpack(body)
            self._resend(peer, first, last, send)
        else:
            self._ordered(peer, seq, flags, body, count, now, send)

    def _nack(self, peer: Peer, upto: int, now: float, send: Sender) -> None:
        if now - peer.nacked_at < NACK_EVERY:
            return
        peer.nacked_at = now
        peer.nacks_sent += 1
        self._send(peer, wire.NACK, 0, self.seq, 0, wire.RANGE.pack(peer.expected, upto), send)

    def _resend(self, peer: Peer, first: int, last: int, send: Sender) -> None:
        have = {m[0]: m for m in self.resend}
        if first < 1 or last > self.seq or first > last or any(s not in have for s in range(first, last + 1)):
            self.start_dump()  # beyond what is kept (or nonsense): everything instead
            return
        for s in range(first, last + 1):
            seq, flags, body, count = have[s]
            self.resent += 1
            self._send(peer, wire.UPDATE, flags, seq, count, body, send)

    def _ordered(self, peer: Peer, seq: int, flags: int, body: bytes, count: int, now: float, send: Sender) -> None:
        if seq < peer.expected or seq in peer.stash:
            peer.refused["replayed"] += 1
            return
        peer.stash[seq] = (flags, body, count)
        if seq > peer.expected and len(peer.stash) > STASH:
            # Too far behind to wait: the gap is given up (the whole table, asked for now, has
            # what it held); what is far beyond anything sent lately (a bogus seq) goes too.
            peer.refused["stash-full"] += 1
            for s in [s for s in peer.stash if s > peer.expected + 4 * STASH]:
                del peer.stash[s]
            peer.synced, peer.asked_at = False, now
            self._send(peer, wire.RESYNC, 0, self.seq, 0, b"", send)
            peer.expected = min(peer.stash, default=peer.expected)
        elif seq > peer.expected:
            self._nack(peer, seq - 1, now, send)
        while peer.expected in peer.stash:
            self._apply(peer, *peer.stash.pop(peer.expected), now)
            peer.expected += 1

    def _apply(self, peer: Peer, flags: int, body: bytes, count: int, now: float) -> None:
        records = wire.decode(body, count)
        if records is None:
            peer.refused["malformed"] += 1
        else:
            peer.records += len(records)
            for rec in records:
                reason = self._install(peer, rec, now)
                if reason is None:
                    peer.applied += 1
                    self.installs += 1
                else:
                    peer.refused[reason] += 1
        if flags & wire.DUMP_END:
            peer.synced = True
            peer.resyncs += 1

    def _install(self, peer: Peer, rec: tuple[Any, ...], now: float) -> str | None:
        op, orig, reply, state, tclass, fin, rflags, idle, snat, dnat, rule, alg = rec
        if op not in (wire.UPSERT, wire.DELETE) or state >= len(wire.STATES) or tclass >= len(wire.CLASSES):
            return "bad-record"
        if rflags & wire.IPV6 and min(orig.src, orig.dst, reply.src, reply.dst) <= wire.V4_MAX:
            return "bad-record"  # it would be taken for an IPv4 connection (never routed: ::/96)
        ct = self.ct
        conn, _direction = ct.lookup(orig)
        if op == wire.DELETE:
            if conn is not None and conn.orig == orig:
                ct.remove(conn, replicate=False)
            return None
        nat, fw = self.svc.nat, self.svc.fw
        snat_rule = _named(snat, [*nat.snat, *nat.one_to_one])
        dnat_rule = _named(dnat, [*nat.dnat, *nat.one_to_one])
        fw_rule = _named(rule, fw.rules)
        if False in (snat_rule, dnat_rule, fw_rule):
            return "unknown-rule"
        if conn is None and ct.full_reason() is not None:
            return "table-full"
        conn = ct.install(
            orig, reply, now - idle / 1000, bool(rflags & wire.INBOUND), wire.STATES[state], wire.CLASSES[tclass]
        )
        conn.fin = fin & 3
        conn.snat, conn.dnat, conn.rule, conn.fw_gen = snat_rule, dnat_rule, fw_rule, fw.generation
        conn.alg = alg or None
        conn.peer = peer.transit
        if isinstance(snat_rule, SnatRule):
            nat.hold(reply.proto, reply.dst, reply.dport)
        return None

    def show(self, now: float) -> dict[str, Any]:
        ct = self.ct
        return {
            "boot": f"{self.boot:08x}",
            "seq": self.seq,
            "sent": {"messages": self.sent_messages, "records": self.sent_records, "resent": self.resent},
            "dumps": self.dumps,
            "dumping": len(self.dump) if self.dump is not None else None,
            "waiting": {"changed": len(ct.changed or ()), "gone": len(ct.gone or ())},
            "journal_dropped": self.journal_dropped,
            "rate": self.rate,
            "refused_from_no_peer": dict(self.refused),
            "bad_checksum": self.corrupt,
            "peers": {ip_str(p.transit): p.show(now) for p in self.peers.values()},
        }


def _named(name: str, rules: list[Any]) -> Any:
    """The rule called ``name`` (None for no name; False when there is none of that name)."""
    if not name:
        return None
    return next((r for r in rules if r.name == name), False)


class StateSync:
    """Every replicating SR of this node (an SR with services and HA peers, sync on), and
    the packets waiting for its peers' messages (``hold.py``)."""

    def __init__(self, model: Model, configs: list[Any], send: Sender, rerun: Any, now: float) -> None:
        self.send = send
        self.channels: dict[str, Channel] = {}
        for rc in configs:
            ha = rc.ha
            if ha is None or ha.sync is None or rc.sr is None:
                continue
            router = model.router(rc.name, "sr")
            if router.services is None or router.transit_port is None:
                continue  # nothing stateful to replicate
            peers = [Peer(int(p.transit), frozenset([int(p.transit), *map(int, p.addresses)])) for p in ha.peers]
            self.channels[router.label] = Channel(router, peers, ha.sync.port, ha.sync.rate, ha.sync.refresh, now)
        self.unknown = 0  # a punt for an SR that does not replicate
        self.waiting = WaitForPeers(set(self.channels), rerun)

    def __bool__(self) -> bool:
        return bool(self.channels)

    def receive(self, meta: dict[str, Any], packet: bytes, now: float) -> bool:
        ch = self.channels.get(meta.get("router"))  # type: ignore[arg-type]
        if ch is None:
            self.unknown += 1
            return True
        ihl = (packet[0] & 0x0F) * 4
        src = int.from_bytes(packet[12:16], "big")
        udp = packet[ihl:]
        if len(udp) < 8 or (
            udp[6:8] != b"\0\0" and checksum(pseudo_header(packet[12:16], packet[16:20], 17, len(udp)) + udp)
        ):
            ch.corrupt += 1  # (a corrupted frame; whoever sent it, nothing in it is read)
            return True
        mac = meta.get("src_mac")
        ch.receive(
            src, packet[8], bytes.fromhex(mac) if isinstance(mac, str) else None, packet[ihl + 8 :], now, self.send
        )
        return True

    def flush(self, now: float) -> None:
        for ch in self.channels.values():
            ch.flush(now, self.send)
        self.waiting.replay(now, self.installed)

    def installed(self) -> bool:
        """Whether a peer's message installed something since the last look."""
        got = False
        for ch in self.channels.values():
            if ch.installs:
                ch.installs, got = 0, True
        return got

    def take(self, client: str, meta: dict[str, Any], payload: bytes, now: float) -> bool:
        """A punt: "sync", a peer's message; "sync-hold", a packet to wait for one."""
        return self.receive(meta, payload, now) if client == "sync" else self.waiting.hold(meta, payload, now)

    def wait(self, now: float) -> float | None:
        """How soon the loop must call :meth:`flush` again (None: nothing is waiting)."""
        waits = [0.0 if ch.tokens >= 1 else LIMITED_WAIT for ch in self.channels.values() if ch.pending()]
        held = self.waiting.wait(now)
        if held is not None:
            waits.append(held)
        return min(waits) if waits else None

    def tick(self, now: float) -> None:
        for ch in self.channels.values():
            ch.tick(now, self.send)

    def show(self, now: float) -> dict[str, Any]:
        return {
            "routers": {label: ch.show(now) for label, ch in self.channels.items()},
            "unknown": self.unknown,
            "held_for_peers": self.waiting.show(),
        }
