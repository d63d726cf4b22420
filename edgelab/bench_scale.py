"""``edgelab bench scale``: lookup cost and memory of the gateway's tables as they grow, in process.

No root, no wire: each table of the reference gateway filled to each size,
then timed on the lookup a packet makes, against the smallest size measured in
the same run:

- **sessions** (conntrack, ``ConnTable.lookup`` of a 5-tuple): 1k to 1M;
- **firewall rules** (``Firewall.evaluate`` of a new connection, found by the
  tuple-space classifier; rules of four shapes, the packet matching the last
  rule): 10 to 10k;
- **routes** (``Fib.lookup``): 1k to 1M;
- **MAC entries** (``MacTable.lookup``): 1k to 100k;
- **tenant routers** (1 to 64 on one edge, the same subnet behind each): a
  packet of the last tenant's flow through DR, SR and SNAT — here the first
  column is the cost of a cache hit, the second of the slow path.

Each lookup is timed two ways, with keys equal to the stored ones but objects of their own,
as a packet's are: a working set of 1,000 keys (the algorithm's
cost; the target: within 1.5x of the smallest size, so no linear scan
anywhere) and keys drawn over the whole table (each a cache miss at the large
sizes: the memory hierarchy's cost).  Memory is the process's resident set
grown by the table, per entry (at the small sizes below the allocator's
granularity: not shown).  Target for sessions: 1M in under 1 GiB.

Beside sessions, routes and MACs, the baseline of the same run: the same keys probed in a
plain ``dict`` of as many keys, each to the entry the table finds for it (for sessions and
MACs the table's own key objects; for routes, ints, an exact match).  It is the floor of any table of Python objects that hashes:
one probe's cost, with no work of the table's own.  Where it grows as much as the table
does, the table's growth is the memory hierarchy's (the working set's objects scattered over
more pages as the heap grows), not its algorithm's.

It writes ``results/bench-scale.json`` and ``results/bench-scale.png`` (cost and
bytes per entry against size, log scale, one panel per table).  The same tables
grown in the running gateway, on the wire: ``bench_scale_wire`` (``--wire``).
"""

from __future__ import annotations

import gc
import ipaddress
import json
import random
import time
from pathlib import Path
from typing import Any

from edgelab.bench_routes import best_ns, rss_kb

WORKING = 1000
SAMPLES = 100_000


def _row(n: int, rss0: int, fn: Any, keys: list[Any], fresh: Any = None, floor: Any = None) -> dict[str, Any]:
    """The table's memory, then ``fn`` timed over its keys: each through ``fresh`` first where
    given (an equal key of new objects, as a packet's is), after the memory is read.

    ``floor``: called after the table is timed, a plain dict of as many keys as the table holds,
    each to the entry the table finds for it (the table's own objects where it stores them),
    probed with the same keys: what one hash probe costs at this size, reaching the entry, the
    floor of any table of Python objects that finds an entry by hashing
    (``floor_working_set_ns``, ``floor_random_ns``)."""
    gc.collect()
    grown = (rss_kb() - rss0) * 1024
    rnd = random.Random(5)
    sample = [rnd.choice(keys) for _ in range(SAMPLES)]
    working = keys[:WORKING]
    if fresh is not None:
        sample, working = [fresh(k) for k in sample], [fresh(k) for k in working]
    working *= SAMPLES // WORKING
    row = {
        "size": n,
        "working_set_ns": round(best_ns(fn, working), 1),
        "random_ns": round(best_ns(fn, sample), 1),
        "bytes_per_entry": round(grown / n) if grown > 4 << 20 else None,
        "rss_mb": round(grown / (1 << 20), 1),
    }
    if floor is not None:
        plain = floor()
        row["floor_working_set_ns"] = round(best_ns(plain.get, working), 1)
        row["floor_random_ns"] = round(best_ns(plain.get, sample), 1)
    return row


def _fresh_tuple(t: tuple[int, ...]) -> Any:
    """An equal 5-tuple of new objects, as the datapath builds one from a packet's bytes: a lookup
    by the stored key itself would skip the comparison (identity), which no packet's does."""
    from gateway.l4 import PORTS, FlowTuple

    fresh = [int.from_bytes(v.to_bytes(5, "big"), "big") for v in t]
    return FlowTuple(fresh[0], fresh[1], PORTS[t[2]], fresh[3], PORTS[t[4]])  # (ports: l4.flow_tuple's)


def sessions(n: int) -> dict[str, Any]:
    from gateway.epoch import Epoch
    from gateway.l4 import PORTS, FlowTuple
    from gateway.services.conntrack import ConnTable

    gc.collect()
    rss0 = rss_kb()
    ct = ConnTable(n + 1, Epoch())
    keys = []
    now = time.monotonic()
    for i in range(n):
        src, sport = 0xAC100000 + (i >> 14), 1024 + (i & 0x3FFF)
        orig = FlowTuple(6, src, PORTS[sport], 0xC6336410, PORTS[443])  # (as the datapath makes them)
        reply = FlowTuple(6, 0xC6336410, PORTS[443], 0xCB007140 + (i >> 16), PORTS[1024 + (i & 0xFFFF) % 64000])
        ct.add(orig, reply, now, False)
        keys.append(orig)
    random.Random(3).shuffle(keys)
    both = lambda: {t: c for c in ct.conns() for t in (c.orig, c.reply)}  # noqa: E731 - (as the table keys them)
    return _row(n, rss0, ct.lookup, keys, _fresh_tuple, both)


def rules(n: int) -> dict[str, Any]:
    from gateway.epoch import Epoch
    from gateway.services.firewall import Firewall
    from gateway.services.rules import FirewallConfig, FirewallRule

    rs = []
    for i in range(n - 1):
        net = ipaddress.IPv4Network((0x0A000000 + (i << 8), 24))
        shape = i % 3
        if shape == 0:
            rs.append(FirewallRule(f"r{i}", "drop", "out", 6, net, None, (1000 + i % 500,) * 2))
        elif shape == 1:
            rs.append(FirewallRule(f"r{i}", "allow", "in", 17, None, net, (5000, 5100)))
        else:
            rs.append(FirewallRule(f"r{i}", "reject", "any", 6, net, ipaddress.IPv4Network((0xC6336400, 24)), None))
    rs.append(FirewallRule("last", "allow", "out", 6, None, ipaddress.IPv4Network((0xCB007100, 24)), (443, 443)))
    gc.collect()
    rss0 = rss_kb()
    fw = Firewall(FirewallConfig(rs), Epoch())
    rnd = random.Random(9)
    keys = [0x0B000000 + rnd.randrange(1 << 20) for _ in range(max(WORKING, 10_000))]
    return _row(n, rss0, lambda src: fw.evaluate(False, 6, src, 0xCB007105, 443, False, count=False), keys)


def routes(n: int) -> dict[str, Any]:
    from edgelab.bench_routes import prefixes
    from gateway.epoch import Epoch
    from gateway.tables.fib import Fib, Route

    gc.collect()
    rss0 = rss_kb()
    fib = Fib(Epoch())
    nets = prefixes(n)
    for net, plen in nets:
        fib.add(Route(net, plen, 0xCB00710A, None, origin="bgp"))
    rnd = random.Random(4)
    keys = [net + rnd.randrange(1 << (32 - plen)) for net, plen in rnd.sample(nets, min(n, 200_000))]
    return _row(n, rss0, fib.lookup, keys, _fresh_int, lambda: {a: fib.lookup(a) for a in _hosts(keys, nets)})


def _fresh_int(a: int) -> int:
    """An equal address of a new object, as the datapath reads one from a packet."""
    return int.from_bytes(a.to_bytes(4, "big"), "big")


def _hosts(keys: list[int], nets: list[tuple[int, int]]) -> list[int]:
    """The baseline's keys for routes: as many ints as there are routes, the lookup keys among
    them, in a random order (in insertion order, the keys' entries would lie side by side)."""
    out = keys + [net for net, _ in nets[: len(nets) - len(keys)]]
    random.Random(7).shuffle(out)
    return out


def macs(n: int) -> dict[str, Any]:
    from gateway.epoch import Epoch
    from gateway.tables.mac import MacTable

    class Segment:
        name = "web"
        netid = None

    seg = Segment()
    gc.collect()
    rss0 = rss_kb()
    table = MacTable(300.0, Epoch(), capacity=n + 1, per_instance=n + 1)
    now = time.monotonic()
    keys = []
    for i in range(n):
        mac = (0x020000000000 + i * 7919).to_bytes(6, "big")
        table.learn(seg, mac, "trunk", 10, now)  # type: ignore[arg-type]
        keys.append(mac)
    random.Random(6).shuffle(keys)
    fresh = lambda mac: bytes(bytearray(mac))  # noqa: E731 - (a new object, as a frame's slice is)
    stored = lambda: {mac: entry for (_seg, mac), entry in table.entries()}  # noqa: E731
    return _row(n, rss0, lambda mac: table.lookup(seg, mac), keys, fresh, stored)  # type: ignore[arg-type]


def tenants(n: int) -> dict[str, Any]:
    """``n`` tenant routers on one edge (each a DR on its own VLAN, all with the same subnet, and an
    SR with SNAT on the shared provider segment, as in multi-tenant): the cost of a packet of the
    last tenant's flow through DR, SR and SNAT, on the slow path (``random_ns``) and as a cache hit
    (``working_set_ns``)."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import ARP, Ether

    from edgelab.bench import _NullWire
    from gateway import config
    from gateway.datapath import Datapath

    raw: dict[str, Any] = {
        "node": "edge1",
        "control_socket": "/tmp/edgelab-bench-scale.sock",
        "ports": {
            "trunk": {"ifname": "edge1-eth0", "role": "tenant"},
            "uplink": {"ifname": "edge1-eth1", "role": "uplink"},
        },
        "instances": {"provider": {"records": [{"port": "uplink"}]}},
        "routers": [],
    }
    for i in range(n):
        raw["instances"][f"t{i}"] = {"records": [{"port": "trunk", "vlan": 100 + i}]}
        raw["routers"].append({
            "name": f"t{i}", "tlr_id": i + 1,
            "dr": {"ports": [{"instance": f"t{i}", "ip": "10.0.1.1/24", "mac": f"02:00:10:{i >> 8:02x}:{i & 255:02x}:01"}]},
            "sr": {
                "ports": [{"instance": "provider", "ip": f"100.64.{i >> 8}.{(i & 255) + 1}/16",
                           "mac": f"02:00:cb:{i >> 8:02x}:{i & 255:02x}:01"}],
                "routes": [{"prefix": "0.0.0.0/0", "via": "100.64.255.254"}],
                "nat": {"snat": [{"name": f"out{i}", "source": "10.0.0.0/8", "pool": [f"198.18.{i >> 8}.{i & 255}"]}]},
            },
            "transit": {"subnet": "169.254.0.0/28", "dr": "169.254.0.1", "sr": "169.254.0.2"},
        })  # fmt: skip
    last, provider = n - 1, "02:00:00:cb:00:fe"
    host = "02:00:00:00:01:11"
    gw_mac = f"02:00:10:{last >> 8:02x}:{last & 255:02x}:01"
    sr_mac, sr_ip = f"02:00:cb:{last >> 8:02x}:{last & 255:02x}:01", f"100.64.{last >> 8}.{(last & 255) + 1}"
    frame = bytes(Ether(src=host, dst=gw_mac) / IP(src="10.0.1.11", dst="198.51.100.10") / UDP(sport=4000, dport=53))
    gc.collect()
    rss0 = rss_kb()
    costs = []
    for cache in (False, True):
        dp = Datapath(config.build(raw, "edge1"))
        for name in dp.model.ports:
            dp.attach(name, _NullWire())
        dp.cache.enabled = cache
        trunk, uplink = dp.model.ports["trunk"], dp.model.ports["uplink"]
        arp = Ether(src=provider, dst=sr_mac) / ARP(
            op=2, hwsrc=provider, psrc="100.64.255.254", hwdst=sr_mac, pdst=sr_ip
        )
        dp.receive(uplink, bytearray(bytes(arp)), None)
        arp = Ether(src=host, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=host, psrc="10.0.1.11", pdst="10.0.1.1")
        dp.receive(trunk, bytearray(bytes(arp)), 100 + last)
        dp.receive(trunk, bytearray(frame), 100 + last)
        if not cache:
            gc.collect()
            grown = (rss_kb() - rss0) * 1024  # the datapath with its n routers, before the frames
        frames = [bytearray(frame) for _ in range(20000)]
        best = float("inf")
        for chunk in (frames[:10000], frames[10000:]):
            t0 = time.perf_counter()
            for f in chunk:
                dp.receive(trunk, f, 100 + last)
            best = min(best, (time.perf_counter() - t0) / len(chunk) * 1e9)
        if uplink.tx < 20000:
            raise RuntimeError(f"{n} tenants: the flow did not leave the gateway ({uplink.tx} of 20000)")
        costs.append(best)
    return {"size": n, "working_set_ns": round(costs[1], 1), "random_ns": round(costs[0], 1),
            "bytes_per_entry": round(grown / n) if grown > 4 << 20 else None, "rss_mb": round(grown / (1 << 20), 1)}  # fmt: skip


DIMENSIONS = {
    "sessions": (sessions, [1_000, 10_000, 100_000, 1_000_000]),
    "firewall rules": (rules, [10, 100, 1_000, 10_000]),
    "routes": (routes, [1_000, 10_000, 100_000, 1_000_000]),
    "MAC entries": (macs, [1_000, 10_000, 100_000]),
    "tenant routers": (tenants, [1, 8, 64]),  # working set: a cache hit; random: the slow path
}


def _isolated(fn: Any, n: int) -> dict[str, Any]:
    """``fn(n)`` in a forked child: each table starts from a fresh process, so its resident set
    measures that table alone (freed memory of an earlier one is not reused)."""
    import os

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(r)
        try:
            out = json.dumps(fn(n)).encode()
        except BaseException as exc:  # noqa: BLE001 - said to the parent, which raises
            out = json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode()
        with os.fdopen(w, "wb") as fh:
            fh.write(out)
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as fh:
        data = fh.read()
    os.waitpid(pid, 0)
    row: dict[str, Any] = json.loads(data or b'{"error": "the child died"}')
    if "error" in row:
        raise RuntimeError(f"{fn.__name__}({n}): {row['error']}")
    return row


def main(out_dir: str = "results", quick: bool = False) -> int:
    print("edgelab bench scale: lookup cost and memory as each table grows, in process")
    results: dict[str, list[dict[str, Any]]] = {}
    for name, (fn, sizes) in DIMENSIONS.items():
        if quick:
            sizes = sizes[:2]
        rows = []
        for n in sizes:
            print(f"  {name}: {n:,} ...", flush=True)
            rows.append(_isolated(fn, n))
        results[name] = rows
    print(
        f"\n{'table':<15} {'size':>10} {'working set ns':>20} {'random ns':>16} {'B/entry':>8} {'MB':>7}  {'dict probe ns':>16}"
    )
    verdicts = []
    for name, rows in results.items():
        b = rows[0]
        for r in rows:
            ws = f"{r['working_set_ns']:.0f} ({r['working_set_ns'] / b['working_set_ns']:.2f}x)"
            rd = f"{r['random_ns']:.0f} ({r['random_ns'] / b['random_ns']:.2f}x)"
            per = "-" if r["bytes_per_entry"] is None else str(r["bytes_per_entry"])
            fl = f"{r['floor_working_set_ns']:.0f} ({r['floor_working_set_ns'] / b['floor_working_set_ns']:.2f}x)" if "floor_working_set_ns" in r else "-"  # fmt: skip
            print(f"{name:<15} {r['size']:>10,} {ws:>20} {rd:>16} {per:>8} {r['rss_mb']:>7.1f}  {fl:>16}")
        ratio = rows[-1]["working_set_ns"] / b["working_set_ns"]
        verdict = f"{name} {ratio:.2f}x ({'met' if ratio <= 1.5 else 'NOT met'}"
        if "floor_working_set_ns" in b:
            verdict += f"; a dict probe {rows[-1]['floor_working_set_ns'] / b['floor_working_set_ns']:.2f}x"
        verdicts.append(verdict + ")")
    print("\ntargets: working-set lookup at the largest size within 1.5x of the smallest: " + "; ".join(verdicts))
    print(
        "dict probe: the same keys in a plain dict of as many keys, each to the entry the table finds, the working set"
    )
    big = results["sessions"][-1]
    if big["size"] >= 1_000_000:
        print(
            f"         1M sessions in {big['rss_mb']:.0f} MB (target < 1024 MB: {'met' if big['rss_mb'] < 1024 else 'NOT met'})"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench-scale.json").write_text(json.dumps(results, indent=1))
    _plot(results, out / "bench-scale.png")
    print(f"raw figures: {out / 'bench-scale.json'}, plot: {out / 'bench-scale.png'}")
    return 0


def _plot(results: dict[str, list[dict[str, Any]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(4 * len(results), 3.6))
    for ax, (name, rows) in zip(axes, results.items(), strict=True):
        sizes = [r["size"] for r in rows]
        ax.plot(sizes, [r["working_set_ns"] for r in rows], "o-", label="working set (ns)")
        ax.plot(sizes, [r["random_ns"] for r in rows], "s--", label="random (ns)")
        if "floor_working_set_ns" in rows[0]:
            ax.plot(sizes, [r["floor_working_set_ns"] for r in rows], "x:", label="dict probe, working set (ns)")
        per = [(r["size"], r["bytes_per_entry"]) for r in rows if r["bytes_per_entry"] is not None]
        if per:
            ax2 = ax.twinx()
            ax2.plot(*zip(*per, strict=True), "^:", color="grey", label="bytes/entry")
            ax2.set_ylabel("bytes per entry")
            ax2.set_ylim(bottom=0)
        ax.set_xscale("log")
        ax.set_ylim(bottom=0)
        ax.set_title(name)
        ax.set_xlabel("entries")
        ax.set_ylabel("ns per lookup")
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
