"""The datapath cache: one entry per flow, synthesized from the effects the
stages recorded for the flow's first packet.

Where this sits: between rx and the pipeline.  ``Datapath.receive`` asks
:meth:`Cache.lookup` first; a hit applies the entry's composed action and
sends the frame, skipping every stage.  A miss runs the stages with an
:class:`Effects` recorder on the packet; if the walk was cacheable,
:meth:`Cache.install` turns the recorded effects into an entry.

Match key.  Each stage records which fields it read; the entry is stored in
the subtable of that field set (after OVS's megaflows): switched frames match
on (port, VLAN, MACs, EtherType); a flow routed by the DR alone also on the IP
source and destination (the DR's uRPF check reads the source); a flow
through an SR with services on the whole 5-tuple.  A
packet probes the few subtables in use.  Entries never overlap: for one
(port, VLAN, MACs, destination) the DR takes one path.

Composed action (:class:`Entry`, :func:`compose`): all rewrites, checksum deltas, the output
port and its VLAN tag, applied in one pass; then the state references are
touched: the source MAC's entry (so it does not age out), the conntrack entry
(counters, timeout, TCP state).  The rewrites are worked out at the entry's first
hit (``compose.py``): a flow that never comes back never pays for them.

Criteria: a walk is cacheable only if no stage said otherwise (floods,
ARP, punts, ICMP generated, ARP misses, TTL expiry, drops).  Before any
lookup the fast path sends TCP SYN/FIN/RST, fragments, IP options, TTL too
small to survive the walk and IPv4 headers that fail the checks to the slow
path, so they meet the stages and their counters.  A SYN, FIN or RST whose
flow has an entry walks them without a recorder (lookup answers ``KEPT``): the
entry stays, and what the walk would record could only be thrown away.

Invalidation: an entry keeps (object, attribute, value) triples for what it
depends on (``effects.Effects.depend``) — the FIB generation of each router crossed, the exact MAC and ARP
entries used (replaced, not edited, when they change), the NAT and firewall
rule generations, the conntrack entry, the ownership generation of SR
addresses — and is dropped on its next hit if any changed.  Plus an idle
timeout and a capacity bound with LRU eviction.  Every change to a
dependency bumps the datapath's epoch (``epoch.py``); a hit checks its
dependencies only when the epoch moved since its last check.

Cost of the cached path (``edgelab bench pipeline``, in process, no system
calls, median of five runs on the 2-core VM, compiled by ``gateway/native.py``;
interpreted in brackets): a north-south UDP packet (DR + SR + SNAT, l4 match)
about 1.4 us as a hit (2.0) against 8.9 us through the stages (12.2); an
east-west one (DR only, l3 match) about 1.3 us (1.7) against 4.3 (4.4).  A hit is: one
unpack of the IPv4 header (checks and checksum), one unpack for the key, one
dict probe, one epoch comparison (the dependency checks run only after
something changed), the rewrite with precomputed checksum deltas, the
conntrack touch.  On the wire (``edgelab bench forwarding``, ``io: block``)
add the receive ring read and the transmit ring write (~1-2 us) and the
kernel's transmit work (~30 % of the daemon's time at 80 kpps).
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, ClassVar, Final

from gateway.cache.compose import KEEP, fold, rewrites
from gateway.cache.describe import describe_action, describe_key
from gateway.cache.keys import (
    H10,
    IPPROTO_GRE,
    KEY_L4,
    KEY_TUN,
    TCP_SLOW,
    UPPER6,
    ipv4_slow_path,
    ipv6_slow_path,
    key_for,
)
from gateway.effects import L2, L3, L3_6, L4, L4_6, MASK_NAMES, TUN, Effects
from gateway.epoch import Epoch
from gateway.headers import ETH_P_8021Q, IPPROTO_TCP, IPPROTO_UDP
from gateway.services.seqadj import adjust as adjust_sequence

if TYPE_CHECKING:
    from gateway.packet import Packet
    from gateway.port import Port


_TAG: Final = struct.Struct("!HH")
GRE_OUTER: Final = 28  # outer IPv4 + GRE with key, what an encapsulating entry adds in front of the frame


class Entry:
    """A cached flow: its key, its composed action, what it depends on."""

    __slots__ = (
        "id",
        "key",
        "mask",
        "deps",
        "checked",
        "eth",
        "ttl_dec",
        "ttl_at",
        "ip_src",
        "ip_dst",
        "l4_off_src",
        "l4_src",
        "l4_dst",
        "ip6",
        "nat",
        "fields",
        "ip_delta",
        "l4_delta",
        "l4_csum",
        "udp",
        "out_port",
        "out_tag",
        "strip",
        "push",
        "push_sum",
        "max_len",
        "conn",
        "conn_dir",
        "alg",
        "mac_touch",
        "hits",
        "created",
        "last",
        "out_vlan",
        "pending",
    )
    id: int
    key: tuple[Any, ...]
    mask: int
    deps: list[tuple[Any, str, Any]]
    checked: int  # the epoch's value when ``deps`` were last found unchanged
    eth: bytes | None  # new destination + source MAC
    ttl_dec: int  # routers crossed
    ttl_at: int  # where the TTL is: 22 (IPv4), or the hop limit at 21 (IPv6)
    ip_src: bytes | None
    ip_dst: bytes | None
    l4_off_src: int  # 0 for a TCP/UDP source port, 4 for an ICMP echo identifier
    l4_src: bytes | None
    l4_dst: bytes | None
    ip6: bytes | None  # IPv6 source and destination as rewritten (NPTv6: checksum-neutral)
    nat: bytes | None  # TCP/UDP with NAT: bytes 26-37 (addresses and ports) as rewritten
    fields: bool  # some other address/port/echo-id rewrite, applied field by field
    ip_delta: int  # one's-complement change of the IPv4 header checksum
    l4_delta: int  # ... of the TCP/UDP/ICMP checksum
    l4_csum: int  # offset of that checksum in the L4 header
    udp: bool
    out_port: Any
    out_tag: bytes | None
    strip: int  # outer headers removed first (decapsulation)
    push: bytes | None  # outer Ethernet + IPv4 + GRE put in front last (encapsulation)
    push_sum: int  # the outer IPv4 header's sum without its length and checksum
    max_len: int  # the largest frame the tunnel or next link takes, 0: any (a larger one meets the stages)
    conn: Any  # (conntrack table, entry) to touch
    conn_dir: int
    alg: Any  # a connection an ALG reads (FTP control): its payload takes the slow path, the rest its offsets
    mac_touch: Any
    hits: int
    created: float
    last: float
    out_vlan: int | None
    pending: tuple[bytes, bytes] | None  # (in, out): the frames its rewrites come from, until worked out

    def finish(self) -> None:
        """Work the rewrites out (``compose.py``): at the first hit, or when shown."""
        rewrites(self, *self.pending)  # type: ignore[misc]
        self.pending = None

    @property
    def summary(self) -> str:
        """What the entry does, in words (built when asked: installing a flow must not pay for it)."""
        if self.pending is not None:
            self.finish()
        return describe_action(self, self.out_port, self.out_vlan)

    def apply(self, buf: bytearray) -> bytes | bytearray:
        """Rewrite ``buf`` in place as the stages would have; return the frame to send.

        ``buf`` passed :meth:`Cache.lookup`: an IPv4 header, if any, has no options,
        so the L4 header starts at byte 34.  The one's-complement folds are inlined:
        a delta is below 0x10000, so two folds always suffice.
        """
        if self.strip:
            del buf[: self.strip]
        eth = self.eth
        if eth is not None:
            buf[0:12] = eth
        k = self.ttl_dec
        if k:
            buf[self.ttl_at] -= k
        nat = self.nat
        if nat is not None:
            # The l4 key holds both addresses and both ports, so what they become
            # is the same for every packet of the flow: one write.
            buf[26:38] = nat
        elif self.fields:
            self._rewrite_fields(buf)
        d = self.ip_delta
        if d:
            c = (~((buf[24] << 8) | buf[25]) & 0xFFFF) + d
            c = (c & 0xFFFF) + (c >> 16)
            c = ~((c & 0xFFFF) + (c >> 16)) & 0xFFFF
            buf[24] = c >> 8
            buf[25] = c & 0xFF
        d = self.l4_delta
        if d:
            co = 34 + self.l4_csum
            old = (buf[co] << 8) | buf[co + 1]
            if old or not self.udp:  # a UDP checksum of 0 means none: left alone
                c = (~old & 0xFFFF) + d
                c = (c & 0xFFFF) + (c >> 16)
                c = ~((c & 0xFFFF) + (c >> 16)) & 0xFFFF
                if c == 0 and self.udp:
                    c = 0xFFFF
                buf[co] = c >> 8
                buf[co + 1] = c & 0xFF
        push = self.push
        if push is not None:
            # The outer IPv4 total length and checksum are the only fields that vary.
            total = GRE_OUTER + len(buf)
            c = self.push_sum + total
            c = (c & 0xFFFF) + (c >> 16)
            c = ~((c & 0xFFFF) + (c >> 16)) & 0xFFFF
            out = push[:16] + total.to_bytes(2, "big") + push[18:24] + c.to_bytes(2, "big") + push[26:] + buf
            return out if self.out_tag is None else out[:12] + self.out_tag + out[12:]
        if self.out_tag is not None:
            return buf[:12] + self.out_tag + buf[12:]
        return buf

    def _rewrite_fields(self, buf: bytearray) -> None:
        if self.ip6 is not None:
            buf[22:54] = self.ip6
            return
        if self.ip_src is not None:
            buf[26:30] = self.ip_src
        if self.ip_dst is not None:
            buf[30:34] = self.ip_dst
        if self.l4_src is not None:
            p = 34 + self.l4_off_src
            buf[p : p + 2] = self.l4_src
        if self.l4_dst is not None:
            buf[36:38] = self.l4_dst


# Lookup's answer for a TCP SYN, FIN or RST whose flow has an entry: the frame walks the stages
# (they see every set-up and tear-down), the entry stays, so the walk records nothing.
KEPT: Final = Entry()
KEPT.id, KEPT.key, KEPT.mask = 0, (), -1  # in no subtable


def compose(key: tuple[Any, ...], fx: Effects, out: bytearray, output: tuple[Any, int | None], now: float) -> Entry:
    """One entry from the effects of a slow-path walk: ``out`` is the frame as it left
    through ``output`` (port, VLAN); ``fx.header`` is the frame as it came in.  Through a
    tunnel the rewrites are the inner frame's (after ``fx.strip``, before ``fx.push``)."""
    hdr = fx.header[fx.strip :]
    push = bytes(out[: fx.push]) if fx.push else None
    entry = Entry()
    entry.strip = fx.strip
    entry.push = push
    entry.push_sum = 0
    entry.max_len = fx.max_len
    if push is not None:
        words = struct.unpack_from("!10H", push, 14)
        entry.push_sum = fold(sum(words) - words[1] - words[5])
    entry.key = key
    entry.mask = fx.mask
    entry.deps = fx.deps
    entry.checked = fx.epoch
    entry.ttl_dec = fx.ttl_dec
    entry.ttl_at = 21 if hdr[12] == 0x86 else 22
    entry.pending = (hdr, bytes(out[fx.push : fx.push + KEEP]))  # worked out at the first hit
    port, vlan = output
    entry.out_port = port
    entry.out_tag = None if vlan is None else _TAG.pack(ETH_P_8021Q, vlan)
    entry.conn = fx.conn
    entry.conn_dir = fx.conn_dir
    entry.alg = fx.alg
    entry.mac_touch = fx.mac_touch
    entry.hits = 0
    entry.created = entry.last = now
    entry.out_vlan = vlan
    return entry


class Cache:
    # Tests set this: every hit checks the dependencies anyway and fails loudly if one
    # changed without an epoch bump (a change site that forgot to say so).
    verify: ClassVar[bool] = False

    def __init__(self, epoch: Epoch, enabled: bool = True, capacity: int = 65536, idle_timeout: float = 10.0) -> None:
        self.epoch = epoch
        self.enabled = enabled
        self.capacity = capacity
        self.idle_timeout = idle_timeout
        self._tables: list[dict[tuple[Any, ...], Entry]] = [{} for _ in MASK_NAMES]
        self._lru: OrderedDict[int, Entry] = OrderedDict()
        self._masks_in_use: tuple[int, ...] = ()
        self._masks6: tuple[int, ...] = ()
        self._l2_only: tuple[int, ...] = ()
        self._ids = 0
        self.hits = 0
        self.misses = 0
        self.installs = 0
        self.invalidations = 0
        self.evictions = 0
        self.expirations = 0
        self.bypass = 0
        self.uncacheable: dict[str, int] = {}
        self.port_index: dict[Any, int] = {}

    def __len__(self) -> int:
        return len(self._lru)

    # -- fast path -------------------------------------------------------------------------
    def lookup(self, port: Port, vlan: int | None, buf: bytearray) -> Entry | None:
        """The entry for this frame, or None (a miss, or a frame that must take the slow path)."""
        n = len(buf)
        if n < 14:
            return None
        masks = self._masks_in_use
        proto = -1
        pad = b""
        if buf[12] == 0x08 and buf[13] == 0x00:
            # IPv4: only option-less, unfragmented, valid headers are looked up.
            if n < 34:
                self.bypass += 1
                return None
            h = H10.unpack_from(buf, 14)
            total = h[1]
            if h[0] >> 8 != 0x45 or total < 20 or total > n - 14 or h[3] & 0x3FFF:
                self.bypass += 1
                return None
            s = sum(h)
            s = (s & 0xFFFF) + (s >> 16)
            s = (s & 0xFFFF) + (s >> 16)
            if s != 0xFFFF:
                self.bypass += 1
                return None
            proto = h[4] & 0xFF
            if proto == IPPROTO_TCP and (n < 48 or buf[47] & TCP_SLOW):
                self.bypass += 1
                return self._control(port, vlan, buf) if n >= 48 else None
            if n > 14 + total:
                # Ethernet padding: the router stages trim it, the switch keeps it (restored
                # below unless an l3/l4 entry routes the frame: cache on and off send the
                # same bytes).
                pad = bytes(buf[14 + total :])
                del buf[14 + total :]
                n = 14 + total
        elif buf[12] == 0x86 and buf[13] == 0xDD:
            return self._lookup6(port, vlan, buf, n)
        else:
            masks = self._l2_only  # the l3/l4 keys read IP fields
        pidx = self.port_index.get(port)
        tables = self._tables
        if proto == IPPROTO_GRE and n >= 56 and tables[TUN]:
            entry = tables[TUN].get((pidx, vlan, *KEY_TUN.unpack_from(buf)))
            if entry is not None:
                if (entry.checked != self.epoch.value or self.verify) and not self._unchanged(entry):
                    self._stale(entry, buf, pad)
                    return None
                return entry
        for mask in masks:
            if mask == L4 and (proto == IPPROTO_UDP or proto == IPPROTO_TCP) and n >= 38:
                key = (pidx, vlan, *KEY_L4.unpack_from(buf))  # the common case, inline
            else:
                key = key_for(mask, pidx, vlan, buf)
            entry = tables[mask].get(key)
            if entry is None:
                continue
            if entry.checked != self.epoch.value or self.verify:
                if not self._unchanged(entry):
                    self._stale(entry, buf, pad)
                    return None
            if entry.ttl_dec and buf[22] <= entry.ttl_dec:
                self.bypass += 1
                if pad:
                    buf += pad
                return None
            if pad and mask == L2:
                buf += pad
            if entry.max_len and len(buf) > entry.max_len:
                self.bypass += 1  # too big for its tunnel or next link: the stages drop or fragment it
                return None
            if entry.alg is not None and n > 34 + (buf[46] >> 4) * 4:
                self.bypass += 1  # payload of a connection an ALG reads: only the stages punt it
                if pad:
                    buf += pad
                return None
            return entry
        self.misses += 1
        if pad:
            buf += pad  # the stages see the frame as it came
        return None

    def _control(self, port: Port, vlan: int | None, buf: bytearray) -> Entry | None:
        """A TCP SYN, FIN or RST (always the stages): ``KEPT`` when its flow has an entry, which
        stays (a FIN or RST of a cached flow, a SYN's retransmission), so the walk need not
        record for a new one; None otherwise (a SYN: its walk makes the flow's entry)."""
        pidx = self.port_index.get(port)
        if pidx is None:
            return None
        tables = self._tables
        for mask in self._masks_in_use:
            key = (pidx, vlan, *KEY_L4.unpack_from(buf)) if mask == L4 else key_for(mask, pidx, vlan, buf)
            if key in tables[mask]:
                self.uncacheable["tcp-control-kept"] = self.uncacheable.get("tcp-control-kept", 0) + 1
                return KEPT
        return None

    def _lookup6(self, port: Port, vlan: int | None, buf: bytearray, n: int) -> Entry | None:
        """IPv6: a header followed directly by TCP, UDP or ICMPv6, its length the frame's (an
        IPv6 frame is never padded), no TCP SYN/FIN/RST; anything else meets the stages."""
        if ipv6_slow_path(buf, n) is not None:
            self.bypass += 1
            return None
        masks = self._masks6
        pidx = self.port_index.get(port)
        for mask in masks:
            entry = self._tables[mask].get(key_for(mask, pidx, vlan, buf))
            if entry is None:
                continue
            if (entry.checked != self.epoch.value or self.verify) and not self._unchanged(entry):
                self._stale(entry, buf, b"")
                return None
            if (entry.ttl_dec and buf[21] <= entry.ttl_dec) or (entry.max_len and n > entry.max_len):
                self.bypass += 1  # (a hop limit that expires, a packet too big: the stages answer)
                return None
            return entry
        self.misses += 1
        return None

    def _stale(self, entry: Entry, buf: bytearray, pad: bytes) -> None:
        """A lookup found ``entry`` out of date: it goes, the frame meets the stages as it came."""
        self._remove(entry)
        self.invalidations += 1
        self.misses += 1
        if pad:
            buf += pad

    def _unchanged(self, entry: Entry) -> bool:
        """Whether everything ``entry`` depends on is as it was at install."""
        epoch = self.epoch.value
        for obj, attr, value in entry.deps:
            if getattr(obj, attr) != value:
                if self.verify and entry.checked == epoch:
                    raise AssertionError(f"{type(obj).__name__}.{attr} changed without an epoch bump")
                return False
        entry.checked = epoch
        return True

    def hit(self, entry: Entry, buf: bytearray, now: float) -> bytes | bytearray:
        """Account a hit, touch the state the entry references, and rewrite ``buf``."""
        if entry.pending is not None:
            try:
                entry.finish()
            except Exception:
                self._remove(entry)  # its flow stays uncached, as when composing failed at install
                raise
        self.hits += 1
        entry.hits += 1
        entry.last = now
        self._lru.move_to_end(entry.id)
        if entry.mac_touch is not None:
            entry.mac_touch.seen = now
        conn = entry.conn
        if conn is not None:
            if entry.ttl_at == 21:  # IPv6 (no extension headers: lookup checked)
                flags = buf[67] if buf[20] == IPPROTO_TCP else 0
            else:
                flags = buf[47] if buf[23] == IPPROTO_TCP else 0  # lookup checked the length
            conn[0].touch(conn[1], entry.conn_dir, len(buf) - 14, now, flags)
            if entry.alg is not None:
                adjust_sequence(buf, entry.alg, entry.conn_dir)  # (checksum updates commute with apply's)
        return entry.apply(buf)

    # -- install --------------------------------------------------------------------------
    def install(self, pkt: Packet, fx: Effects, now: float) -> Entry | None:
        if fx.uncacheable is not None:
            self.uncacheable[fx.uncacheable] = self.uncacheable.get(fx.uncacheable, 0) + 1
            return None
        if len(pkt.outputs) != 1:
            self.uncacheable["flood"] = self.uncacheable.get("flood", 0) + 1
            return None
        hdr = fx.header
        tcp_control = False  # a SYN, FIN or RST: the fast path never looks it up
        if hdr[12] == 0x08 and hdr[13] == 0x00:
            # Frames the fast path never looks up (it sends them to the stages) are not installed.
            slow = ipv4_slow_path(hdr)
            if slow is not None:
                self.uncacheable[slow] = self.uncacheable.get(slow, 0) + 1
                return None
            tcp_control = hdr[23] == IPPROTO_TCP and len(hdr) > 47 and bool(hdr[47] & TCP_SLOW)
        elif hdr[12] == 0x86 and hdr[13] == 0xDD and fx.mask != L2:
            # Routed IPv6: only what lookup keys (no extension headers); the stages checked the rest.
            if len(hdr) < 62 or hdr[20] not in UPPER6:
                self.uncacheable["ip6-extension-headers"] = self.uncacheable.get("ip6-extension-headers", 0) + 1
                return None
            tcp_control = hdr[20] == IPPROTO_TCP and len(hdr) > 67 and bool(hdr[67] & TCP_SLOW)
        pidx = self.port_index.setdefault(fx.in_port, len(self.port_index))
        if fx.mask == TUN and len(hdr) < 56:
            self.uncacheable["tunnel-truncated"] = self.uncacheable.get("tunnel-truncated", 0) + 1
            return None
        key = key_for(fx.mask, pidx, fx.vlan, bytearray(hdr))
        table = self._tables[fx.mask]
        old = table.get(key)
        if old is not None:
            if tcp_control:
                # Keep the entry (composing: ~10 us of ~45); if stale, it fails its next hit.
                self.uncacheable["tcp-control-kept"] = self.uncacheable.get("tcp-control-kept", 0) + 1
                return None
            self._remove(old)
        entry = compose(key, fx, pkt.buf, pkt.outputs[0], now)
        refresh = not table  # a subtable the lookups skip until now
        while len(self._lru) >= self.capacity:
            _eid, victim = self._lru.popitem(last=False)
            emptied = self._tables[victim.mask]
            emptied.pop(victim.key, None)
            refresh = refresh or not emptied
            self.evictions += 1
        self._ids += 1
        entry.id = self._ids
        table[key] = entry
        self._lru[entry.id] = entry
        if refresh:
            self._refresh_masks()
        self.installs += 1
        return entry

    def _remove(self, entry: Entry) -> None:
        table = self._tables[entry.mask]
        table.pop(entry.key, None)
        self._lru.pop(entry.id, None)
        if not table:
            self._refresh_masks()

    def _refresh_masks(self) -> None:
        # The subtables a lookup probes: those with entries (the set changes only when one
        # fills or empties).  Most specific first: a 5-tuple flow is the common case on an edge.
        self._masks_in_use = tuple(m for m in (L4, L3, L2) if self._tables[m])
        self._masks6 = tuple(m for m in (L4_6, L3_6, L2) if self._tables[m])
        self._l2_only = (L2,) if self._tables[L2] else ()

    # -- maintenance ------------------------------------------------------------------------
    def expire(self, now: float, limit: int | None = None) -> int:
        """Remove entries idle past the timeout, at most ``limit`` (None: all); how many went."""
        n = 0
        while self._lru and n != limit:
            entry = next(iter(self._lru.values()))
            if now - entry.last <= self.idle_timeout:
                break
            self._remove(entry)
            n += 1
        self.expirations += n
        return n

    def flush(self) -> int:
        n = len(self._lru)
        for table in self._tables:
            table.clear()
        self._lru.clear()
        self._masks_in_use = ()
        self._l2_only = ()
        self.invalidations += n
        return n

    def counters(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "entries": len(self._lru),
            "capacity": self.capacity,
            "idle_timeout": self.idle_timeout,
            "hits": self.hits,
            "misses": self.misses,
            "bypass": self.bypass,
            "installs": self.installs,
            "invalidations": self.invalidations,
            "evictions": self.evictions,
            "expirations": self.expirations,
            "uncacheable": dict(self.uncacheable),
            "subtables": {name: len(table) for name, table in zip(MASK_NAMES, self._tables, strict=True)},
        }

    def dump(self, now: float, limit: int = 1000) -> list[dict[str, Any]]:
        rows = []
        for entry in list(self._lru.values())[-limit:]:
            rows.append(
                {
                    "id": entry.id,
                    "match": MASK_NAMES[entry.mask],
                    "key": describe_key(entry, self.port_index),
                    "action": entry.summary,
                    "hits": entry.hits,
                    "age": round(now - entry.created, 1),
                    "idle": round(now - entry.last, 1),
                }
            )
        return rows
