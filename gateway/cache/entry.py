"""A cache entry: its match key and its composed action.

Where this sits: ``cache/__init__.py`` (the :class:`~gateway.cache.Cache`)
keys its subtables with :func:`key_for` and builds entries with
:func:`compose` from the effects a slow-path walk recorded (``effects.py``);
a hit applies :meth:`Entry.apply`.  Composed action, applied in one pass: set
both MACs, TTL minus the number of routers crossed, NAT rewrites of addresses
and ports, the IPv4 and L4 checksums adjusted by deltas computed once here
(RFC 1624: the checksum change of a rewrite depends only on old and new
field values, and TTL - k is the constant -k<<8 whatever the TTL), the output
port and its VLAN tag.
"""

from __future__ import annotations

import struct
from typing import Any

from gateway.effects import L2, L3, L4, Effects
from gateway.headers import ETH_P_8021Q, ETH_P_IP, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, ip_str, mac_str

_TAG = struct.Struct("!HH")
H10 = struct.Struct("!10H")

# TCP flags that always take the slow path (connection set-up and tear-down).
TCP_SLOW = 0x01 | 0x02 | 0x04

# Keys read with one unpack each (IPv4 headers without options: the only ones looked up).
KEY_L2 = struct.Struct("14s")
KEY_L3 = struct.Struct("14s16x4s")
KEY_L4 = struct.Struct("14s9xs2x8s4s")  # MACs+type, protocol, addresses, ports (or ICMP type..id)


def key_for(mask: int, port: int, vlan: int | None, buf: bytes | bytearray) -> tuple[Any, ...]:
    """The match key of ``buf`` for one field set (an IPv4 header without options for l3/l4)."""
    if mask == L2:
        return (port, vlan, *KEY_L2.unpack_from(buf))
    if mask == L3:
        return (port, vlan, *KEY_L3.unpack_from(buf))
    if len(buf) >= 38:
        eth, proto, addrs, ports = KEY_L4.unpack_from(buf)
    else:  # no room for ports (a bare IPv4 header)
        eth, proto, addrs, ports = bytes(buf[0:14]), bytes(buf[23:24]), bytes(buf[26:34]), bytes(buf[34:38])
    p = proto[0]
    if p == IPPROTO_ICMP:
        ports = bytes(buf[38:40]) + bytes(buf[34:35])  # echo id and type
    elif p != IPPROTO_TCP and p != IPPROTO_UDP:
        ports = b""
    return (port, vlan, eth, proto, addrs, ports)


def ipv4_slow_path(hdr: bytes) -> str | None:
    """Why :meth:`Cache.lookup` would send this IPv4 frame to the stages (None: it would not).

    ``hdr`` is the frame's first bytes as received; the length and checksum
    checks read only the header, so they give lookup's answer."""
    if len(hdr) < 34:
        return "ip-truncated"
    if hdr[14] != 0x45:
        return "ip-options"
    h = H10.unpack_from(hdr, 14)
    s = sum(h)
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    if h[1] < 20 or h[3] & 0x3FFF or s != 0xFFFF:
        return "ip-slow-path"  # a fragment, or a header the checks refuse
    return None


def _fold(x: int) -> int:
    while x >> 16:
        x = (x & 0xFFFF) + (x >> 16)
    return x


def _delta(old: bytes, new: bytes) -> int:
    """One's-complement sum of (~old + new) over the 16-bit words that differ."""
    d = 0
    for i in range(0, len(old), 2):
        o = (old[i] << 8) | old[i + 1]
        n = (new[i] << 8) | new[i + 1]
        if o != n:
            d += (~o & 0xFFFF) + n
    return _fold(d)


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
        "ip_src",
        "ip_dst",
        "l4_off_src",
        "l4_src",
        "l4_dst",
        "nat",
        "fields",
        "ip_delta",
        "l4_delta",
        "l4_csum",
        "udp",
        "out_port",
        "out_tag",
        "conn",
        "conn_dir",
        "mac_touch",
        "hits",
        "created",
        "last",
        "summary",
    )
    id: int
    key: tuple[Any, ...]
    mask: int
    deps: list[tuple[Any, str, Any]]
    checked: int  # the epoch's value when ``deps`` were last found unchanged
    eth: bytes | None  # new destination + source MAC
    ttl_dec: int  # routers crossed
    ip_src: bytes | None
    ip_dst: bytes | None
    l4_off_src: int  # 0 for a TCP/UDP source port, 4 for an ICMP echo identifier
    l4_src: bytes | None
    l4_dst: bytes | None
    nat: bytes | None  # TCP/UDP with NAT: bytes 26-37 (addresses and ports) as rewritten
    fields: bool  # some other address/port/echo-id rewrite, applied field by field
    ip_delta: int  # one's-complement change of the IPv4 header checksum
    l4_delta: int  # ... of the TCP/UDP/ICMP checksum
    l4_csum: int  # offset of that checksum in the L4 header
    udp: bool
    out_port: Any
    out_tag: bytes | None
    conn: Any  # (conntrack table, entry) to touch
    conn_dir: int
    mac_touch: Any
    hits: int
    created: float
    last: float
    summary: str

    def apply(self, buf: bytearray) -> bytes | bytearray:
        """Rewrite ``buf`` in place as the stages would have; return the frame to send.

        ``buf`` passed :meth:`Cache.lookup`: an IPv4 header, if any, has no options,
        so the L4 header starts at byte 34.  The one's-complement folds are inlined:
        a delta is below 0x10000, so two folds always suffice.
        """
        eth = self.eth
        if eth is not None:
            buf[0:12] = eth
        k = self.ttl_dec
        if k:
            buf[22] -= k
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
        if self.out_tag is not None:
            return buf[:12] + self.out_tag + buf[12:]
        return buf

    def _rewrite_fields(self, buf: bytearray) -> None:
        if self.ip_src is not None:
            buf[26:30] = self.ip_src
        if self.ip_dst is not None:
            buf[30:34] = self.ip_dst
        if self.l4_src is not None:
            p = 34 + self.l4_off_src
            buf[p : p + 2] = self.l4_src
        if self.l4_dst is not None:
            buf[36:38] = self.l4_dst


def compose(key: tuple[Any, ...], fx: Effects, out: bytearray, output: tuple[Any, int | None], now: float) -> Entry:
    """One entry from the effects of a slow-path walk: ``out`` is the frame as it left
    through ``output`` (port, VLAN); ``fx.header`` is the frame as it came in."""
    hdr = fx.header
    entry = Entry()
    entry.key = key
    entry.mask = fx.mask
    entry.deps = fx.deps
    entry.checked = fx.epoch
    entry.eth = bytes(out[0:12]) if out[0:12] != hdr[0:12] else None
    entry.ttl_dec = fx.ttl_dec
    entry.ip_src = entry.ip_dst = entry.l4_src = entry.l4_dst = None
    entry.ip_delta = entry.l4_delta = 0
    entry.l4_off_src = 0
    entry.l4_csum = 0
    entry.udp = False
    is_ip = hdr[12] == 0x08 and hdr[13] == 0x00
    if is_ip and len(out) >= 34:
        if out[26:30] != hdr[26:30]:
            entry.ip_src = bytes(out[26:30])
        if out[30:34] != hdr[30:34]:
            entry.ip_dst = bytes(out[30:34])
        old_ip = bytes(hdr[14:34])
        new_ip = bytes(out[14:34])
        # The checksum word itself is excluded; TTL differs by exactly ttl_dec.
        entry.ip_delta = _delta(old_ip[:10] + old_ip[12:], new_ip[:10] + new_ip[12:])
        proto = hdr[23]
        l4 = 14 + (hdr[14] & 0x0F) * 4
        if proto in (IPPROTO_TCP, IPPROTO_UDP) and len(out) >= l4 + 8 and len(hdr) >= l4 + 8:
            pseudo_old = bytes(hdr[26:34]) + bytes(hdr[l4 : l4 + 4])
            pseudo_new = bytes(out[26:34]) + bytes(out[l4 : l4 + 4])
            entry.l4_delta = _delta(pseudo_old, pseudo_new)
            entry.l4_csum = 16 if proto == IPPROTO_TCP else 6
            entry.udp = proto == IPPROTO_UDP
            if hdr[l4 : l4 + 2] != out[l4 : l4 + 2]:
                entry.l4_src = bytes(out[l4 : l4 + 2])
            if hdr[l4 + 2 : l4 + 4] != out[l4 + 2 : l4 + 4]:
                entry.l4_dst = bytes(out[l4 + 2 : l4 + 4])
        elif proto == IPPROTO_ICMP and len(out) >= l4 + 8 and len(hdr) >= l4 + 8 and hdr[l4] in (0, 8):
            if hdr[l4 + 4 : l4 + 6] != out[l4 + 4 : l4 + 6]:
                entry.l4_delta = _delta(bytes(hdr[l4 + 4 : l4 + 6]), bytes(out[l4 + 4 : l4 + 6]))
                entry.l4_src = bytes(out[l4 + 4 : l4 + 6])
                entry.l4_off_src = 4
                entry.l4_csum = 2
    entry.nat = None
    entry.fields = any(x is not None for x in (entry.ip_src, entry.ip_dst, entry.l4_src, entry.l4_dst))
    if entry.fields and fx.mask == L4 and hdr[23] in (IPPROTO_TCP, IPPROTO_UDP) and len(out) >= 38:
        entry.nat = bytes(out[26:38])
    port, vlan = output
    entry.out_port = port
    entry.out_tag = None if vlan is None else _TAG.pack(ETH_P_8021Q, vlan)
    entry.conn = fx.conn
    entry.conn_dir = fx.conn_dir
    entry.mac_touch = fx.mac_touch
    entry.hits = 0
    entry.created = entry.last = now
    entry.summary = describe_action(entry, port, vlan)
    return entry


def describe_key(entry: Entry, port_index: dict[Any, int]) -> str:
    names = {i: p.name for p, i in port_index.items()}
    key = entry.key
    port, vlan, eth = key[0], key[1], key[2]
    text = f"in {names.get(port, port)} {'untagged' if vlan is None else f'vlan {vlan}'} {mac_str(eth[6:12])} > {mac_str(eth[0:6])}"
    ethertype = (eth[12] << 8) | eth[13]
    if ethertype != ETH_P_IP or entry.mask == L2:  # an IPv4 frame switched at L2 matches on L2 only
        return f"{text} type {ethertype:#06x}"
    if entry.mask == L3:
        return f"{text} ip dst {ip_str(key[3])}"
    proto = key[3][0]
    ports = key[5]
    text += f" ip {ip_str(key[4][0:4])} > {ip_str(key[4][4:8])} proto {proto}"
    if proto in (IPPROTO_TCP, IPPROTO_UDP):
        text += f" {int.from_bytes(ports[0:2], 'big')} > {int.from_bytes(ports[2:4], 'big')}"
    elif proto == IPPROTO_ICMP and ports:
        text += f" id {int.from_bytes(ports[0:2], 'big')}"
    return text


def describe_action(entry: Entry, port: Any, vlan: int | None) -> str:
    parts = []
    if entry.eth is not None:
        parts.append(f"eth {mac_str(entry.eth[6:12])} > {mac_str(entry.eth[0:6])}")
    if entry.ttl_dec:
        parts.append(f"ttl -{entry.ttl_dec}")
    if entry.ip_src is not None:
        parts.append(f"ip src {ip_str(entry.ip_src)}")
    if entry.ip_dst is not None:
        parts.append(f"ip dst {ip_str(entry.ip_dst)}")
    if entry.l4_src is not None:
        parts.append(f"{'id' if entry.l4_off_src == 4 else 'sport'} {int.from_bytes(entry.l4_src, 'big')}")
    if entry.l4_dst is not None:
        parts.append(f"dport {int.from_bytes(entry.l4_dst, 'big')}")
    if entry.conn is not None:
        parts.append(f"conntrack #{entry.conn[1].id}")
    parts.append(f"out {port.name} {'untagged' if vlan is None else f'vlan {vlan}'}")
    return ", ".join(parts)
