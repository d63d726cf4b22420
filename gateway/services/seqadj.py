"""TCP sequence adjustment: the offsets a payload rewrite leaves on a connection.

Where this sits: an application-level gateway (the FTP ALG, ``gateway/alg``)
may change a segment's length (``PORT 172,16,10,11,...`` becomes ``PORT
203,0,113,64,...``).  From then on every sequence number that direction sends
is off by the difference, and every acknowledgement (and SACK edge) the other
direction sends is off by it the other way.  The SR applies the offsets to
every packet of the connection after NAT (``services/sr.py``), the cache to
every packet it serves (``cache``), so neither end ever sees the change.

After Linux's nf_conntrack_seqadj: per direction one correction point
``(pos, before, after)`` in the sender's own (unadjusted) sequence space: a
segment that starts after ``pos`` is moved by ``after``, one at or before it
by ``before``.  The rewritten segment itself starts at ``pos``, so its
retransmission (rewritten again, the same way) is moved as the first copy
was, and the point only moves forward.
"""

from __future__ import annotations

from typing import Any, Final

from gateway.headers import csum_update32

MOD: Final = 1 << 32


def after(a: int, b: int) -> bool:
    """Sequence ``a`` comes after ``b`` (RFC 9293 arithmetic, modulo 2**32)."""
    return 0 < (a - b) % MOD < 1 << 31


def record(conn: Any, direction: int, seq: int, delta: int) -> None:
    """The segment of ``direction`` starting at ``seq`` (unadjusted) grew by ``delta`` bytes."""
    if not delta:
        return
    adj = conn.seqadj
    if adj is None:
        adj = conn.seqadj = [None, None]
    point = adj[direction]
    if point is None:
        adj[direction] = (seq, 0, delta)
    elif point[1] == point[2] or after(seq, point[0]):
        adj[direction] = (seq, point[2], point[2] + delta)
    # else: a retransmission of a segment at or before the point: already accounted for


def offset(conn: Any, direction: int, seq: int) -> int:
    """How far the sequence numbers of ``direction`` at ``seq`` (unadjusted) are moved."""
    adj = conn.seqadj
    point = adj[direction] if adj is not None else None
    if point is None:
        return 0
    return point[2] if after(seq, point[0]) else point[1]


def adjust(buf: bytearray, conn: Any, direction: int, l3: int = 14) -> None:
    """Move the sequence number, acknowledgement and SACK edges of the TCP segment in ``buf``."""
    adj = conn.seqadj
    if adj is None:
        return
    l4 = l3 + (buf[l3] & 0x0F) * 4
    mine, theirs = adj[direction], adj[1 - direction]
    csum = (buf[l4 + 16] << 8) | buf[l4 + 17]
    if mine is not None:
        seq = int.from_bytes(buf[l4 + 4 : l4 + 8], "big")
        new = (seq + (mine[2] if after(seq, mine[0]) else mine[1])) % MOD
        if new != seq:
            buf[l4 + 4 : l4 + 8] = new.to_bytes(4, "big")
            csum = csum_update32(csum, seq, new)
    if theirs is not None and buf[l4 + 13] & 0x10:
        ack = int.from_bytes(buf[l4 + 8 : l4 + 12], "big")
        new = _unmove(ack, theirs)
        if new != ack:
            buf[l4 + 8 : l4 + 12] = new.to_bytes(4, "big")
            csum = csum_update32(csum, ack, new)
        csum = _sack(buf, l4, theirs, csum)
    buf[l4 + 16] = csum >> 8
    buf[l4 + 17] = csum & 0xFF


def _unmove(edge: int, point: tuple[int, int, int]) -> int:
    """An acknowledged edge of the other direction's (moved) stream, in its original space."""
    pos, before, later = point
    return (edge - (later if after((edge - before) % MOD, pos) else before)) % MOD


def _sack(buf: bytearray, l4: int, point: tuple[int, int, int], csum: int) -> int:
    """SACK blocks (RFC 2018) name edges of the other direction's stream, as acknowledgements do."""
    end = l4 + (buf[l4 + 12] >> 4) * 4
    i = l4 + 20
    while i < end:
        kind = buf[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= end or buf[i + 1] < 2 or i + buf[i + 1] > end:
            break  # a malformed option list: the rest is left as it came
        size = buf[i + 1]
        if kind == 5:
            for at in range(i + 2, i + size - 3, 4):
                old = int.from_bytes(buf[at : at + 4], "big")
                new = _unmove(old, point)
                if new != old:
                    buf[at : at + 4] = new.to_bytes(4, "big")
                    csum = csum_update32(csum, old, new)
        i += size
    return csum
