"""``edgelab fuzz``: the reference gateway fed garbage, in process, with a budget.

Targets (each seeded, so a failure can be replayed with its seed):

- ``frames``: two datapaths on edge-basic's configuration, cache on and cache
  off (the cache in verify mode), receive the same stream: random bytes,
  mutations of every header the gateway parses (Ethernet, 802.1Q, ARP, IPv4
  with options, ICMP and its errors, TCP, UDP; bit flips, truncations, wrong
  lengths) and valid flows, on every port, with route and firewall changes
  and cache flushes interleaved.  Oracle: no internal error anywhere, both
  datapaths send the same bytes on every port.
- ``control``: random JSON values as control requests.  Oracle: every one is
  answered, none trips a bug (``internal_errors`` stays 0).
- ``ipc``: random messages to the HA agent's transport.  Oracle: each is
  answered or counted as an error, none trips a bug.
- ``config``: edge-basic's gateway configuration with fields deleted or
  replaced by random values.  Oracle: only ``ConfigError`` ever leaves the
  parser.

A failure raises :class:`FuzzFailure` naming the target, the seed and the input.
"""

from __future__ import annotations

import copy
import json
import random
import time
from collections.abc import Callable
from typing import Any

from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror, UDPerror
from scapy.layers.inet6 import (
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6ND_RA,
    ICMPv6ND_RS,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptSrcLLAddr,
    ICMPv6PacketTooBig,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
)
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.packet import Raw

MACS = ["02:00:00:10:00:11", "02:00:00:10:00:12", "02:00:00:20:00:13", "02:00:00:cb:00:10", "ff:ff:ff:ff:ff:ff"]
GW_MACS = ["02:00:00:10:00:01", "02:00:00:20:00:01", "02:00:00:cb:00:01"]
ADDRS = ["172.16.10.11", "172.16.10.12", "172.16.20.13", "203.0.113.10", "203.0.113.1", "203.0.113.80",
         "203.0.113.90", "203.0.113.64", "198.51.100.10", "172.16.10.1", "10.1.2.3", "255.255.255.255"]  # fmt: skip


# Dual stack (edge-basic carries IPv6): tenants, router and provider addresses, link-local,
# multicast and the unspecified address.
ADDRS6 = ["2001:db8:0:10::11", "2001:db8:0:10::12", "2001:db8:0:20::13", "2001:db8:0:10::14", "2001:db8:cb::10",
          "2001:db8:c6::10", "2001:db8:0:10::1", "2001:db8:cb::1", "fe80::ff:fe10:1", "ff02::1", "ff02::1:ff00:1",
          "::", "2001:db8:77::5", "::ffff:10.1.2.3"]  # fmt: skip
V6_MACS = ["33:33:00:00:00:01", "33:33:00:00:00:02", "33:33:ff:00:00:01"]


class FuzzFailure(AssertionError):
    pass


class _Wire:
    poll_interval = None

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def fileno(self) -> int:
        return -1

    def filenos(self) -> tuple[int, ...]:
        return (self.fileno(),)

    def recv_batch(self, limit: int, readable: bool = True) -> list[Any]:
        return []

    def send(self, frame: bytes | bytearray) -> None:
        self.sent.append(bytes(frame))

    def flush(self) -> None:
        pass

    def take_error(self) -> int:
        return 0

    def counters(self) -> dict[str, int]:
        return {"rx_dropped": 0, "tx_dropped": 0, "rx_resyncs": 0}

    def close(self) -> None:
        pass


def _config() -> dict[str, Any]:
    import topologies
    from suites.duts.reference import render

    return render(topologies.plan("edge-basic"), "edge1")


def _datapath(cfg: dict[str, Any], cache: bool) -> tuple[Any, dict[str, _Wire]]:
    from gateway import config
    from gateway.datapath import Datapath

    dp = Datapath(config.build(copy.deepcopy(cfg), "fuzz"))
    dp.cache.enabled = cache
    wires = {name: _Wire() for name in dp.model.ports}
    for name, wire in wires.items():
        dp.attach(name, wire)
    return dp, wires


def _l4(rng: random.Random) -> Any:
    kind = rng.randrange(5)
    if kind == 0:
        return UDP(sport=rng.choice([53, 1000, 5353, 3784]), dport=rng.choice([53, 5353, 9, 3784, 8080])) / Raw(
            b"u" * rng.randrange(40)
        )
    if kind == 1:
        flags = rng.choice(["S", "SA", "A", "PA", "FA", "R", ""])
        return TCP(sport=rng.choice([80, 8080, 4000]), dport=rng.choice([80, 8080, 23, 179]), flags=flags)
    if kind == 2:
        return ICMP(type=rng.choice([0, 8]), id=rng.randrange(4))
    if kind == 3:
        quoted = IPerror(src=rng.choice(ADDRS), dst=rng.choice(ADDRS)) / UDPerror(
            sport=rng.choice([53, 1000]), dport=53
        )
        return ICMP(type=rng.choice([3, 11]), code=rng.choice([0, 1, 4, 13])) / quoted
    return Raw(bytes(rng.randrange(256) for _ in range(rng.randrange(30))))


def _l4_6(rng: random.Random, src: str, dst: str) -> Any:
    kind = rng.randrange(7)
    if kind == 0:
        return UDP(sport=rng.choice([53, 1000]), dport=rng.choice([53, 9])) / Raw(b"u" * rng.randrange(40))
    if kind == 1:
        return TCP(
            sport=rng.choice([80, 4000]), dport=rng.choice([80, 23]), flags=rng.choice(["S", "SA", "A", "R", ""])
        )
    if kind == 2:
        return rng.choice([ICMPv6EchoRequest, ICMPv6EchoReply])(id=rng.randrange(4))
    if kind == 3:
        ns = ICMPv6ND_NS(tgt=rng.choice(ADDRS6))
        return ns / ICMPv6NDOptSrcLLAddr(lladdr=rng.choice(MACS)) if rng.random() < 0.7 else ns
    if kind == 4:
        na = ICMPv6ND_NA(tgt=rng.choice(ADDRS6), S=rng.randrange(2), O=rng.randrange(2))
        return na / ICMPv6NDOptDstLLAddr(lladdr=rng.choice(MACS)) if rng.random() < 0.7 else na
    if kind == 5:
        return rng.choice([ICMPv6ND_RS(), ICMPv6ND_RA()])
    quoted = IPv6(src=dst, dst=rng.choice(ADDRS6)) / UDP(sport=53, dport=rng.choice([53, 1000]))
    return ICMPv6PacketTooBig(mtu=rng.choice([1280, 1400])) / bytes(quoted)


def _ipv6(rng: random.Random) -> Any:
    src, dst = rng.choice(ADDRS6), rng.choice(ADDRS6)
    ip = IPv6(src=src, dst=dst, hlim=rng.choice([255, 64, 64, 2, 1, 0]))
    for _ in range(rng.choice([0, 0, 0, 0, 1, 2, 9])):  # extension headers: none, a few, too many
        ip = ip / rng.choice([IPv6ExtHdrDestOpt(), IPv6ExtHdrHopByHop(), IPv6ExtHdrFragment(offset=rng.randrange(2))])
    return ip / _l4_6(rng, src, dst)


# Valid flows between hosts the datapaths have learned: repeated, so the cache serves them.
FLOWS = [
    ("trunk", Ether(src="02:00:00:10:00:11", dst="02:00:00:10:00:01") / Dot1Q(vlan=10) / IP(src="172.16.10.11", dst="203.0.113.10") / UDP(sport=4000, dport=53) / Raw(b"q" * 20)),
    ("trunk", Ether(src="02:00:00:10:00:11", dst="02:00:00:10:00:01") / Dot1Q(vlan=10) / IP(src="172.16.10.11", dst="172.16.20.13") / UDP(sport=4001, dport=53)),
    ("trunk", Ether(src="02:00:00:20:00:13", dst="02:00:00:20:00:01") / Dot1Q(vlan=20) / IP(src="172.16.20.13", dst="203.0.113.10") / TCP(sport=4002, dport=80, flags="A")),
    ("trunk", Ether(src="02:00:00:10:00:12", dst="02:00:00:10:00:01") / Dot1Q(vlan=10) / IP(src="172.16.10.12", dst="203.0.113.10") / ICMP(id=7)),
    ("uplink", Ether(src="02:00:00:cb:00:10", dst="02:00:00:cb:00:01") / IP(src="203.0.113.10", dst="203.0.113.80") / TCP(sport=5000, dport=8080, flags="S")),
    ("uplink", Ether(src="02:00:00:cb:00:10", dst="02:00:00:cb:00:01") / IP(src="198.51.100.10", dst="203.0.113.90") / UDP(sport=5001, dport=53)),
    ("trunk", Ether(src="02:00:00:10:00:11", dst="02:00:00:10:00:14") / Dot1Q(vlan=10) / IP(src="172.16.10.11", dst="172.16.10.14") / UDP() / Raw(b"pad")),
    ("access", Ether(src="02:00:00:10:00:14", dst="02:00:00:10:00:11") / IP(src="172.16.10.14", dst="172.16.10.11") / UDP()),
    ("trunk", Ether(src="02:00:00:10:00:11", dst="02:00:00:10:00:01") / Dot1Q(vlan=10) / IPv6(src="2001:db8:0:10::11", dst="2001:db8:c6::10") / UDP(sport=4003, dport=53)),
    ("trunk", Ether(src="02:00:00:10:00:11", dst="02:00:00:10:00:01") / Dot1Q(vlan=10) / IPv6(src="2001:db8:0:10::11", dst="2001:db8:0:20::13") / UDP(sport=4004, dport=53)),
    ("uplink", Ether(src="02:00:00:cb:00:10", dst="02:00:00:cb:00:01") / IPv6(src="2001:db8:c6::10", dst="2001:db8:0:10::11") / UDP(sport=53, dport=4003)),
]  # fmt: skip
# ARP from every host first, so routed flows find their neighbours.
WARMUP = [
    ("trunk", Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") / Dot1Q(vlan=vlan) / ARP(op=1, hwsrc=mac, psrc=ip, pdst=gw))
    for mac, vlan, ip, gw in (
        ("02:00:00:10:00:11", 10, "172.16.10.11", "172.16.10.1"),
        ("02:00:00:10:00:12", 10, "172.16.10.12", "172.16.10.1"),
        ("02:00:00:20:00:13", 20, "172.16.20.13", "172.16.20.1"),
    )
] + [
    ("access", Ether(src="02:00:00:10:00:14", dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc="02:00:00:10:00:14", psrc="172.16.10.14", pdst="172.16.10.1")),
    ("uplink", Ether(src="02:00:00:cb:00:10", dst="02:00:00:cb:00:01") / ARP(op=2, hwsrc="02:00:00:cb:00:10", psrc="203.0.113.10", hwdst="02:00:00:cb:00:01", pdst="203.0.113.1")),
    # IPv6 neighbours: an NS from each tenant to its router, an NA from the provider router.
    *(
        ("trunk", Ether(src=mac, dst="33:33:ff:00:00:01") / Dot1Q(vlan=vlan) / IPv6(src=ip, dst="ff02::1:ff00:1", hlim=255)
         / ICMPv6ND_NS(tgt=gw) / ICMPv6NDOptSrcLLAddr(lladdr=mac))
        for mac, vlan, ip, gw in (
            ("02:00:00:10:00:11", 10, "2001:db8:0:10::11", "2001:db8:0:10::1"),
            ("02:00:00:20:00:13", 20, "2001:db8:0:20::13", "2001:db8:0:20::1"),
        )
    ),
    ("uplink", Ether(src="02:00:00:cb:00:10", dst="02:00:00:cb:00:01") / IPv6(src="2001:db8:cb::10", dst="2001:db8:cb::1", hlim=255)
     / ICMPv6ND_NA(tgt="2001:db8:cb::10", S=1, O=1) / ICMPv6NDOptDstLLAddr(lladdr="02:00:00:cb:00:10")),
]  # fmt: skip


def _frame(rng: random.Random) -> tuple[str, bytes]:
    if rng.random() < 0.4:
        port, frame = rng.choice(FLOWS)
        if rng.random() < 0.3:  # Ethernet padding, as a NIC adds to short frames
            return port, bytes(frame) + bytes(rng.randrange(1, 20))
        return port, bytes(frame)
    port = rng.choice(["trunk", "uplink", "access"])
    if rng.random() < 0.1:
        return port, bytes(rng.randrange(256) for _ in range(rng.randrange(80)))
    eth = Ether(src=rng.choice(MACS[:-1]), dst=rng.choice(GW_MACS + MACS + V6_MACS))
    if port == "trunk" or rng.random() < 0.05:
        eth = eth / Dot1Q(vlan=rng.choice([10, 20, 99, 0]))
    if rng.random() < 0.3:
        layer = _ipv6(rng)
    elif rng.random() < 0.15:
        layer = ARP(op=rng.choice([1, 2]), hwsrc=eth.src, psrc=rng.choice(ADDRS), pdst=rng.choice(ADDRS))
    else:
        ip = IP(src=rng.choice(ADDRS), dst=rng.choice(ADDRS), ttl=rng.choice([64, 64, 2, 1, 0]))
        if rng.random() < 0.05:
            ip.options = [b"\x01\x01\x01\x00"]
        if rng.random() < 0.05:
            ip.frag = rng.randrange(1, 100)
        layer = ip / _l4(rng)
    data = bytearray(bytes(eth / layer))
    for _ in range(rng.choice([0, 0, 0, 1, 2])):  # mutations: flip a byte, cut the end, change a length
        what = rng.randrange(3)
        if what == 0 and data:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif what == 1 and len(data) > 14:
            del data[rng.randrange(14, len(data)) :]
        elif len(data) > 20:
            at = rng.choice([16, 18, 20]) if len(data) > 22 else 16
            data[at] = rng.randrange(256)
    return port, bytes(data)


def _change(rng: random.Random) -> dict[str, Any]:
    choice = rng.randrange(5)
    if choice == 0:
        return {
            "cmd": "route",
            "action": "add",
            "router": "t1",
            "half": "dr",
            "prefix": "10.50.0.0/16",
            "via": rng.choice(["172.16.10.11", "172.16.20.13"]),
        }
    if choice == 1:
        return {"cmd": "route", "action": "del", "router": "t1", "half": "dr", "prefix": "10.50.0.0/16"}
    if choice == 2:
        return {"cmd": "firewall", "action": "add", "router": "t1", "position": 0,
                "rule": {"name": f"fz{rng.randrange(3)}", "action": rng.choice(["drop", "reject", "allow"]),
                         "proto": rng.choice(["udp", "tcp", "icmp", "any"]), "dst": f"{rng.choice(ADDRS[:9])}/32"}}  # fmt: skip
    if choice == 3:
        return {"cmd": "firewall", "action": "del", "router": "t1", "name": f"fz{rng.randrange(3)}"}
    return {"cmd": "cache", "action": "flush"}


def _feed(dps: tuple[Any, ...], port: str, data: bytes) -> None:
    vlan = None
    buf = bytearray(data)
    if len(buf) >= 18 and buf[12:14] == b"\x81\x00":  # the kernel hands the tag out of band
        vlan = ((buf[14] << 8) | buf[15]) & 0x0FFF or None
        del buf[12:16]
    for dp in dps:
        dp.receive(dp.model.ports[port], bytearray(buf), vlan)


def fuzz_frames(budget: int, seed: int, plant: Callable[[Any], None] | None = None) -> dict[str, int]:
    """Frames through two datapaths of one config, cache on and off: they must send the same
    bytes.  ``plant`` (the tests' planted faults) is called with the cached one after each frame."""
    from gateway.cache import Cache
    from gateway.control.commands import Control

    rng = random.Random(seed)
    cfg = _config()
    (a, wa), (b, wb) = _datapath(cfg, True), _datapath(cfg, False)
    ca, cb = Control(a), Control(b)
    Cache.verify = True
    try:
        for port, frame in WARMUP:
            _feed((a, b), port, bytes(frame))
        for i in range(budget):
            if rng.random() < 0.02:
                change = _change(rng)
                ra, rb = ca.handle(change), cb.handle(change)
                if ra["ok"] != rb["ok"]:
                    raise FuzzFailure(f"frames seed {seed} step {i}: {change} answered {ra} and {rb}")
                continue
            port, data = _frame(rng)
            _feed((a, b), port, data)
            if plant is not None:
                plant(a)
            for name in wa:
                if wa[name].sent != wb[name].sent:
                    raise FuzzFailure(
                        f"frames seed {seed} step {i}: cache on and off sent different bytes on {name} for {data.hex()}"
                    )
                wa[name].sent.clear()
                wb[name].sent.clear()
            errors = a.pipeline.internal_errors + b.pipeline.internal_errors + ca.internal_errors + cb.internal_errors
            if errors:
                raise FuzzFailure(f"frames seed {seed} step {i}: an internal error on {port} frame {data.hex()}")
    finally:
        Cache.verify = False
    return {"frames": budget, "hits": a.cache.hits, "drops": sum(a.pipeline.drops().values())}


def _json_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(8 if depth < 3 else 5)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.choice([0, -1, 1, 2**63, 4094, 65536, 1e308, float("nan"), 0.5])
    if kind == 2:
        return rng.choice(["", "t1", "dr", "sr", "add", "del", "trunk", "203.0.113.1", "0.0.0.0/0", "x" * 300,
                           "cache", "fib", "mac", "arp", "counters", "nat", "conntrack", "firewall", "traces",
                           "summary", "listeners", "mirror", "start", "show", "inject", "flush", "set"])  # fmt: skip
    if kind == 3:
        return rng.choice(["show", "trace", "route", "nat", "firewall", "cache", "ha", "mirror", "ping"])
    if kind == 4:
        return "".join(chr(rng.randrange(32, 0x2FF)) for _ in range(rng.randrange(8)))
    if kind == 5:
        return [_json_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ["cmd", "action", "what", "router", "half", "prefix", "via", "rule", "name", "kind", "count", "port",
            "frame", "capacity", "idle_timeout", "position", "ip", "direction", "instance"]  # fmt: skip
    return {rng.choice(keys): _json_value(rng, depth + 1) for _ in range(rng.randrange(6))}


def fuzz_control(budget: int, seed: int) -> dict[str, int]:
    from gateway.control.commands import Control

    rng = random.Random(seed)
    dp, _ = _datapath(_config(), True)
    for port, frame in WARMUP + FLOWS + FLOWS:  # state to show: MACs, neighbours, cache entries, sessions
        _feed((dp,), port, bytes(frame))
    control = Control(dp)
    # Mostly well-formed requests with random fields beside (or instead of) the right ones.
    valid = {
        "show": ("what", ["ports", "instances", "mac", "arp", "fib", "counters", "drops", "traces", "summary",
                          "cache", "ha", "nat", "conntrack", "firewall", "mirror", "listeners"]),
        "trace": ("action", ["start", "show", "clear", "inject"]),
        "route": ("action", ["add", "del"]),
        "nat": ("action", ["add", "del"]),
        "firewall": ("action", ["add", "del"]),
        "cache": ("action", ["enable", "disable", "flush", "set"]),
        "ha": ("action", ["takeover", "release"]),
        "mirror": ("action", ["del"]),  # adding a session opens a TAP: not in process
        "ping": ("x", [None]),
    }  # fmt: skip
    for i in range(budget):
        if i % 50 == 0:  # requests flush and disable things: give them something to show again
            for port, frame in FLOWS + FLOWS:
                _feed((dp,), port, bytes(frame))
        req = _json_value(rng)
        if rng.random() < 0.8:
            req = req if isinstance(req, dict) else {}
            cmd = rng.choice(sorted(valid))
            field, choices = valid[cmd]
            req["cmd"] = cmd
            if rng.random() < 0.9:
                req[field] = rng.choice(choices)
        if isinstance(req, dict) and req.get("cmd") == "mirror":
            req["action"] = "del"
        resp = control.handle(req)
        json.dumps(resp)  # every answer can go on the wire
        if control.internal_errors:
            raise FuzzFailure(f"control seed {seed} step {i}: {req!r} tripped a bug: {resp}")
    return {"requests": budget, "errors": control.errors}


def fuzz_ipc(budget: int, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    dp, _ = _datapath(_config(), True)
    handlers = {**dp.ownership.handlers(), "send": dp._send_message}
    errors = 0
    for i in range(budget):
        meta = _json_value(rng)
        if not isinstance(meta, dict):
            meta = {"x": meta}
        meta["type"] = rng.choice([*handlers, "bogus"])
        payload = bytes(rng.randrange(256) for _ in range(rng.randrange(60)))
        handler = handlers.get(meta["type"])
        try:
            if handler is None:
                raise ValueError("unknown type")
            handler(meta, payload)
        except (ValueError, KeyError, TypeError, RecursionError):
            errors += 1  # answered as an error by io/ipc.py
        except Exception as exc:
            raise FuzzFailure(f"ipc seed {seed} step {i}: {meta!r} raised {type(exc).__name__}: {exc}") from exc
        if dp.pipeline.internal_errors:
            raise FuzzFailure(f"ipc seed {seed} step {i}: {meta!r} cost an internal error")
    return {"messages": budget, "errors": errors}


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def fuzz_config(budget: int, seed: int) -> dict[str, int]:
    from gateway import config

    rng = random.Random(seed)
    base = _config()
    paths = _paths(base)
    refused = 0
    for i in range(budget):
        cfg = copy.deepcopy(base)
        for _ in range(rng.randrange(1, 4)):
            path = rng.choice(paths)
            parent = cfg
            try:
                for key in path[:-1]:
                    parent = parent[key]
                if rng.random() < 0.3 and isinstance(parent, dict):
                    parent.pop(path[-1], None)
                else:
                    parent[path[-1]] = _json_value(rng)
            except (KeyError, IndexError, TypeError):
                continue
        try:
            config.build(cfg, "fuzz.yaml")
        except config.ConfigError:
            refused += 1
        except Exception as exc:
            raise FuzzFailure(
                f"config seed {seed} step {i}: {type(exc).__name__}: {exc}\n{json.dumps(cfg, default=str)[:2000]}"
            ) from exc
    return {"configs": budget, "refused": refused}


TARGETS: dict[str, Callable[[int, int], dict[str, int]]] = {
    "frames": fuzz_frames,
    "control": fuzz_control,
    "ipc": fuzz_ipc,
    "config": fuzz_config,
}


def main(budget: int = 20000, seed: int | None = None, targets: list[str] | None = None) -> int:
    seed = int(time.time()) if seed is None else seed
    failed = 0
    for name in targets or list(TARGETS):
        share = budget if name == "frames" else max(budget // 4, 1)
        t0 = time.monotonic()
        try:
            stats = TARGETS[name](share, seed)
        except FuzzFailure as exc:
            print(f"fuzz {name}: FAILED: {exc}")
            failed += 1
            continue
        print(f"fuzz {name}: {share} inputs, seed {seed}, {time.monotonic() - t0:.1f} s, no failure: {stats}")
    return 1 if failed else 0
