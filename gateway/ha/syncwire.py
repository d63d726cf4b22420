"""The state replication's wire format (``sync.py``): a header, then records.

Header (every message)::

    magic "ELct", version 1, kind, flags, boot (u32), seq (u32), count (u16)

Record (an UPDATE holds ``count`` of them)::

    op (u8: 1 upsert, 2 delete), protocol (u8),
    orig: source (u32), source port (u16), destination (u32), destination port (u16),
    reply: the same four,
    state (u8, index of STATES), timeout class (u8, index of CLASSES), FIN bits (u8),
    flags (u8: bit 0 inbound, bit 1 IPv6), idle (u32, ms),
    with bit 1: the four addresses again as IPv6 (4 x 16 bytes; the u32 fields 0),
    four names (u8 length + UTF-8): SNAT rule, DNAT rule, firewall rule, ALG

Kinds: UPDATE (``count`` records; the last of a full dump has the DUMP_END
flag), HELLO (every second: seq is the last UPDATE sent, so a lost last one is
noticed), RESYNC (send me everything: a peer that starts, a gap the sender's
buffer no longer holds), NACK (two u32 after the header: the first and last
seq to resend).  Every kind carries the sender's seq.  All in network byte order.
"""

from __future__ import annotations

import struct
from typing import Any

from gateway.l4 import PORTS, FlowTuple
from gateway.services.conntrack import DEFAULT_TIMEOUTS, Conn

MAGIC = b"ELct"
VERSION = 2  # 2: IPv6 connections too
UPDATE, HELLO, RESYNC, NACK = 1, 2, 3, 4
KINDS = {UPDATE: "update", HELLO: "hello", RESYNC: "resync", NACK: "nack"}
DUMP_END = 0x01
UPSERT, DELETE = 1, 2
INBOUND = 0x01
IPV6 = 0x02

HEADER = struct.Struct("!4sBBBIIH")
RECORD = struct.Struct("!BBIHIHIHIHBBBBI")
RANGE = struct.Struct("!II")
ADDRS6 = struct.Struct("!16s16s16s16s")
V4_MAX = 0xFFFFFFFF  # (the connection table tells the families apart by this)
STATES = ("new", "syn-sent", "syn-recv", "established", "fin-wait", "time-wait", "closed")
CLASSES = tuple(DEFAULT_TIMEOUTS)
STATE_INDEX = {s: i for i, s in enumerate(STATES)}
CLASS_INDEX = {c: i for i, c in enumerate(CLASSES)}

MAX_MESSAGE = 1400  # UDP payload: one frame on any segment


def _name(rule: Any) -> bytes:
    name = getattr(rule, "name", None)
    raw = name.encode()[:255] if isinstance(name, str) else b""
    return bytes((len(raw),)) + raw


def encode(op: int, conn: Conn, now: float) -> bytes:
    o, r = conn.orig, conn.reply
    idle = 0 if op == DELETE else min(max(0, int((now - conn.last) * 1000)), 2**32 - 1)
    flags = INBOUND if conn.inbound else 0
    v6 = o.src > V4_MAX
    if v6:
        flags |= IPV6
    fixed = RECORD.pack(
        op, o.proto, 0 if v6 else o.src, o.sport, 0 if v6 else o.dst, o.dport,
        0 if v6 else r.src, r.sport, 0 if v6 else r.dst, r.dport,
        STATE_INDEX.get(conn.state, 0), CLASS_INDEX.get(conn.tclass, 0), conn.fin, flags, idle,
    )  # fmt: skip
    if v6:
        fixed += ADDRS6.pack(*(a.to_bytes(16, "big") for a in (o.src, o.dst, r.src, r.dst)))
    if op == DELETE:
        return fixed + b"\0\0\0\0"
    alg = (conn.alg or "").encode()[:255]
    return fixed + _name(conn.snat) + _name(conn.dnat) + _name(conn.rule) + bytes((len(alg),)) + alg


def decode(body: bytes, count: int) -> list[tuple[Any, ...]] | None:
    """The records of an UPDATE, or None when the body is not ``count`` whole records."""
    out = []
    off = 0
    try:
        for _ in range(count):
            op, proto, os_, osp, od, odp, rs, rsp, rd, rdp, state, tclass, fin, flags, idle = RECORD.unpack_from(
                body, off
            )
            off += RECORD.size
            if flags & IPV6:
                os_, od, rs, rd = (int.from_bytes(a, "big") for a in ADDRS6.unpack_from(body, off))
                off += ADDRS6.size
            names = []
            for _n in range(4):
                n = body[off]
                if off + 1 + n > len(body):
                    return None
                names.append(body[off + 1 : off + 1 + n].decode())
                off += 1 + n
            orig = FlowTuple(proto, os_, PORTS[osp], od, PORTS[odp])
            reply = FlowTuple(proto, rs, PORTS[rsp], rd, PORTS[rdp])
            out.append((op, orig, reply, state, tclass, fin, flags, idle, *names))
    except (struct.error, IndexError, UnicodeDecodeError):
        return None
    if off != len(body):
        return None
    return out


# How a received message or record can be refused (counted per peer, or per router when
# the sender is no peer at all).
REFUSALS = (
    "not-peer",  # from an address that is no configured peer, or TTL not 255
    "malformed",  # too short, a bad header, a record cut short, a count that does not match
    "replayed",  # a seq already applied, or a boot the peer had before
    "unconfirmed-boot",  # the first message of what may be a new life of the peer (believed at the second)
    "stash-full",  # too many early messages: dropped, a full resync asked for
    "bad-record",  # a state, class or op out of range; an IPv6 record with an address in ::/96
    "unknown-rule",  # a rule name this SR does not have (the peers' configs differ)
    "table-full",  # the table's quota or the node's bound is reached
)
