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
destination; a flow through an SR with services on the whole 5-tuple.  A
packet probes the few subtables in use.  Entries never overlap: for one
(port, VLAN, MACs, destination) the DR takes one path.

Composed action (``entry.py``): all rewrites, checksum deltas, the output
port and its VLAN tag, applied in one pass; then the state references are
touched: the source MAC's entry (so it does not age out), the conntrack entry
(counters, timeout, TCP state).

Criteria: a walk is cacheable only if no stage said otherwise (floods,
ARP, punts, ICMP generated, ARP misses, TTL expiry, drops).  Before any
lookup the fast path sends TCP SYN/FIN/RST, fragments, IP options, TTL too
small to survive the walk and IPv4 headers that fail the checks to the slow
path, so they meet the stages and their counters.

Invalidation: an entry keeps (object, attribute, value) triples for what it
depends on (``effects.Effects.depend``) — the FIB generation of each router crossed, the exact MAC and ARP
entries used (replaced, not edited, when they change), the NAT and firewall
rule generations, the conntrack entry, the ownership generation of SR
addresses — and is dropped on its next hit if any changed.  Plus an idle
timeout and a capacity bound with LRU eviction.  Every change to a
dependency bumps the datapath's epoch (``epoch.py``); a hit checks its
dependencies only when the epoch moved since its last check.

Cost of the cached path (``edgelab bench pipeline``, in process, no system
calls, median of eight runs on the 2-core VM): a north-south UDP packet (DR +
SR + SNAT, l4 match) about 3.5 us as a hit against 37 us through the stages;
an east-west one (DR only, l3 match) about 2.9 us against 14 us.  A hit is: one
unpack of the IPv4 header (checks and checksum), one unpack for the key, one
dict probe, one epoch comparison (the dependency checks run only after
something changed), the rewrite with precomputed checksum deltas, the
conntrack touch.  On the wire (``edgelab bench forwarding``, ``io: block``)
add the receive ring read and the transmit ring write (~1-2 us) and the
kernel's transmit work (~30 % of the daemon's time at 80 kpps).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from gateway.cache.entry import (
    H10,
    KEY_L4,
    TCP_SLOW,
    Entry,
    compose,
    describe_key,
    ipv4_slow_path,
    key_for,
)
from gateway.effects import L2, L3, L4, MASK_NAMES, Effects
from gateway.epoch import Epoch
from gateway.headers import IPPROTO_TCP, IPPROTO_UDP

if TYPE_CHECKING:
    from gateway.model import Port
    from gateway.packet import Packet


class Cache:
    # Tests set this: every hit checks the dependencies anyway and fails loudly if one
    # changed without an epoch bump (a change site that forgot to say so).
    verify = False

    def __init__(self, epoch: Epoch, enabled: bool = True, capacity: int = 65536, idle_timeout: float = 10.0) -> None:
        self.epoch = epoch
        self.enabled = enabled
        self.capacity = capacity
        self.idle_timeout = idle_timeout
        self._tables: list[dict[tuple[Any, ...], Entry]] = [{}, {}, {}]
        self._lru: OrderedDict[int, Entry] = OrderedDict()
        self._masks_in_use: tuple[int, ...] = ()
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
                return None
            if n > 14 + total:
                # Ethernet padding: the router stages trim it, the switch keeps it (restored
                # below unless an l3/l4 entry routes the frame: cache on and off send the
                # same bytes).
                pad = bytes(buf[14 + total :])
                del buf[14 + total :]
                n = 14 + total
        else:
            masks = self._l2_only  # the l3/l4 keys read IPv4 fields
        pidx = self.port_index.get(port)
        tables = self._tables
        for mask in masks:
            if mask == L4 and (proto == IPPROTO_UDP or proto == IPPROTO_TCP) and n >= 38:
                key = (pidx, vlan, *KEY_L4.unpack_from(buf))  # the common case, inline
            else:
                key = key_for(mask, pidx, vlan, buf)  # type: ignore[arg-type]
            entry = tables[mask].get(key)
            if entry is None:
                continue
            if entry.checked != self.epoch.value or self.verify:
                if not self._unchanged(entry):
                    self._remove(entry)
                    self.invalidations += 1
                    self.misses += 1
                    if pad:
                        buf += pad
                    return None
            if entry.ttl_dec and buf[22] <= entry.ttl_dec:
                self.bypass += 1
                if pad:
                    buf += pad
                return None
            if pad and mask == L2:
                buf += pad
            return entry
        self.misses += 1
        if pad:
            buf += pad  # the stages see the frame as it came
        return None

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
        self.hits += 1
        entry.hits += 1
        entry.last = now
        self._lru.move_to_end(entry.id)
        if entry.mac_touch is not None:
            entry.mac_touch.seen = now
        conn = entry.conn
        if conn is not None:
            flags = buf[47] if buf[23] == IPPROTO_TCP else 0  # lookup checked the length
            conn[0].touch(conn[1], entry.conn_dir, len(buf) - 14, now, flags)
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
        if hdr[12] == 0x08 and hdr[13] == 0x00:
            # Frames the fast path never looks up (it sends them to the stages) are not installed.
            slow = ipv4_slow_path(hdr)
            if slow is not None:
                self.uncacheable[slow] = self.uncacheable.get(slow, 0) + 1
                return None
        pidx = self.port_index.setdefault(pkt.in_port, len(self.port_index))
        key = key_for(fx.mask, pidx, pkt.vlan, bytearray(hdr))
        entry = compose(key, fx, pkt.buf, pkt.outputs[0], now)
        table = self._tables[fx.mask]
        old = table.get(key)
        if old is not None:
            self._remove(old)
        while len(self._lru) >= self.capacity:
            _eid, victim = self._lru.popitem(last=False)
            self._tables[victim.mask].pop(victim.key, None)
            self.evictions += 1
        self._ids += 1
        entry.id = self._ids
        table[key] = entry
        self._lru[entry.id] = entry
        self._refresh_masks()
        self.installs += 1
        return entry

    def _remove(self, entry: Entry) -> None:
        self._tables[entry.mask].pop(entry.key, None)
        self._lru.pop(entry.id, None)

    def _refresh_masks(self) -> None:
        # Most specific first: a 5-tuple flow is the common case on an edge.
        self._masks_in_use = tuple(m for m in (L4, L3, L2) if self._tables[m])
        self._l2_only = (L2,) if self._tables[L2] else ()

    # -- maintenance ------------------------------------------------------------------------
    def expire(self, now: float) -> int:
        n = 0
        while self._lru:
            entry = next(iter(self._lru.values()))
            if now - entry.last <= self.idle_timeout:
                break
            self._remove(entry)
            n += 1
        if n:
            self.expirations += n
            self._refresh_masks()
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
            "subtables": {MASK_NAMES[m]: len(self._tables[m]) for m in (L2, L3, L4)},
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
