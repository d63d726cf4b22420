"""``edgelab bench routes``: FPM -> FIB install rate, memory, and lookup cost as the table grows.

In this process, no root.  A datapath with edge-basic's configuration (its SR
``t1``, uplink 203.0.113.0/24) gets its FPM listener on 127.0.0.1; a
generator thread plays zebra's ``dplane_fpm_nl``: it connects and streams N
netlink RTM_NEWROUTE messages (FPM framing, each route via 203.0.113.10, the
provider router), then as many RTM_DELROUTE.  The listener parses them with
pyroute2 (``gateway/fpm.py``), as it parses zebra's, and installs them in the
SR's FIB as BGP routes.

Figures per size (default 10k, 100k and 1M routes):

- **install**: seconds from the generator's connect until the FIB holds all N,
  and routes per second; **withdraw**: the same for removing them;
- **memory**: the daemon's resident set grown by the table, per route;
- **lookup**: ns per ``Fib.lookup``, against a table of 1k routes measured in
  the same run, three ways: a working set of 1,000 destinations in the
  installed prefixes (what a datapath with its flows sees: the algorithm's
  cost, which must stay flat — no linear scans); random destinations over
  the whole table (every lookup a cache miss: the memory hierarchy's cost,
  which grows with the table in any hash or trie); destinations only the
  default route covers (every length probed).

The prefixes are 90 % /24s and 10 % /16 to /23s (as in an Internet table,
most are /24s), disjoint, from 16.0.0.0 up.  Targets (issue: the datapath
meets the kernel): 1M routes installed in under 60 s, lookup at 1M within
1.5x of 1k.  The raw figures go to ``results/bench-routes.json``.
"""

from __future__ import annotations

import gc
import json
import random
import resource
import select
import socket
import struct
import threading
import time
from pathlib import Path
from typing import Any

BASE = 16 << 24  # 16.0.0.0: far from every address edge-basic uses
LOOKUPS = 200_000


def _page_kb() -> int:
    return resource.getpagesize() // 1024


def rss_kb() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * _page_kb()


def prefixes(n: int, seed: int = 7) -> list[tuple[int, int]]:
    """``n`` disjoint prefixes: /24s, and 1 in 10 a /16 to /23 aligned on slots of its own (so
    none overlaps another)."""
    rnd = random.Random(seed)
    out: list[tuple[int, int]] = []
    slot = 0  # in /24s
    while len(out) < n:
        if rnd.random() < 0.1:
            plen = rnd.randint(16, 23)
            size = 1 << (24 - plen)
            slot = (slot + size - 1) // size * size  # aligned
            out.append((BASE + (slot << 8), plen))
            slot += size
        else:
            out.append((BASE + (slot << 8), 24))
            slot += 1
    return out


def stream(routes: list[tuple[int, int]], gateway: int, kind: int) -> bytes:
    """The FPM stream zebra would send for ``routes`` (``kind``: RTM_NEWROUTE or RTM_DELROUTE).

    One message is encoded with pyroute2; the others are that template with their prefix
    written in (the generator's shortcut: the listener still parses every message whole)."""
    from pyroute2.netlink.rtnl.rtmsg import rtmsg

    m = rtmsg()
    m["family"], m["dst_len"], m["table"], m["proto"], m["type"] = socket.AF_INET, 24, 254, 186, 1
    m["attrs"] = [("RTA_DST", "1.2.3.0"), ("RTA_GATEWAY", socket.inet_ntoa(gateway.to_bytes(4, "big")))]
    m["header"]["type"] = kind
    m.encode()
    template = bytes(m.data)
    at = template.index(bytes([1, 2, 3, 0]))
    head = struct.pack("!BBH", 1, 1, 4 + len(template))
    parts = []
    for net, plen in routes:
        msg = bytearray(template)
        msg[17] = plen  # rtmsg.dst_len, right after the 16-byte netlink header's family byte
        msg[at : at + 4] = net.to_bytes(4, "big")
        parts.append(head + msg)
    return b"".join(parts)


def best_ns(fn: Any, keys: list[Any]) -> float:
    """ns per call of ``fn`` over ``keys``, the best of three passes."""
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for k in keys:
            fn(k)
        best = min(best, time.perf_counter() - t0)
    return best / len(keys) * 1e9


def _datapath() -> tuple[Any, Any]:
    import topologies
    from gateway import config
    from gateway.datapath import Datapath
    from suites.duts.reference import render

    raw = render(topologies.plan("edge-basic"), "edge1")
    for key in ("kernel", "services"):
        raw.pop(key, None)
    cfg = config.build(raw, "edge1")
    dp = Datapath(cfg)
    return dp, dp.model.router("t1", "sr")


def run_size(n: int) -> dict[str, Any]:
    from gateway.fpm import RTM_DELROUTE, RTM_NEWROUTE, FpmServer

    dp, sr = _datapath()
    gw = int.from_bytes(socket.inet_aton("203.0.113.10"), "big")
    routes = prefixes(n)
    streams = [stream(routes, gw, RTM_NEWROUTE), stream(routes, gw, RTM_DELROUTE)]
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    lsock.setblocking(False)
    server = FpmServer(dp.model, sr, lsock)
    ep = select.epoll()
    handlers: dict[int, Any] = {}
    server.attach(ep, handlers)
    go_delete = threading.Event()

    def zebra() -> None:
        with socket.create_connection(lsock.getsockname()) as conn:
            conn.sendall(streams[0])
            streams[0] = b""  # (sent: its memory is not the table's)
            go_delete.wait(timeout=600)
            conn.sendall(streams[1])
            time.sleep(0.5)

    base_routes = len(sr.fib)
    gc.collect()
    rss0 = rss_kb()
    thread = threading.Thread(target=zebra, daemon=True)
    t0 = time.perf_counter()
    thread.start()
    deadline = time.monotonic() + 600
    while server.added < n and time.monotonic() < deadline:
        for fd, _ in ep.poll(0.5):
            handlers[fd]()
    install = time.perf_counter() - t0
    assert len(sr.fib) == base_routes + n, f"{len(sr.fib) - base_routes} of {n} routes installed"
    while streams[0]:
        time.sleep(0.01)
    gc.collect()
    rss1 = rss_kb()
    rnd = random.Random(11)
    inside = [net + rnd.randrange(1 << (32 - plen)) for net, plen in rnd.choices(routes, k=LOOKUPS)]
    working = inside[:1000] * (LOOKUPS // 1000)
    outside = [rnd.randrange(0x60000000, 0x7F000000) for _ in range(LOOKUPS)]  # only the default covers these
    assert all(sr.fib.lookup(a).origin == "bgp" for a in inside[:1000])  # type: ignore[union-attr]
    ws, hit, miss = (best_ns(sr.fib.lookup, keys) for keys in (working, inside, outside))
    go_delete.set()
    t1 = time.perf_counter()
    while server.removed < n and time.monotonic() < deadline:
        for fd, _ in ep.poll(0.5):
            handlers[fd]()
    withdraw = time.perf_counter() - t1
    assert len(sr.fib) == base_routes, f"{len(sr.fib) - base_routes} routes left after the withdrawals"
    thread.join(timeout=10)
    server.close()
    ep.close()
    return {
        "routes": n,
        "install_s": round(install, 2),
        "install_per_s": round(n / install),
        "withdraw_s": round(withdraw, 2),
        "withdraw_per_s": round(n / withdraw),
        "rss_mb": round((rss1 - rss0) / 1024, 1),
        "bytes_per_route": round((rss1 - rss0) * 1024 / n),
        "lookup_working_set_ns": round(ws, 1),
        "lookup_hit_ns": round(hit, 1),
        "lookup_default_ns": round(miss, 1),
        "rejected": server.rejected,
    }


def main(sizes: list[int] | None = None, out_dir: str = "results") -> int:
    sizes = sizes or [10_000, 100_000, 1_000_000]
    print("edgelab bench routes: FPM stream -> pyroute2 -> the SR's FIB, in process")
    baseline = run_size(1000)
    rows = []
    for n in sizes:
        print(f"  {n:>9,} routes ...", flush=True)
        rows.append(run_size(n))
    print(
        f"\n{'routes':>10} {'install s':>10} {'routes/s':>10} {'withdraw s':>11} {'MB':>7} {'B/route':>8}"
        f" | lookup ns (x 1k): {'working set':>16} {'random':>14} {'default only':>14}"
    )
    b = baseline
    for r in [baseline, *rows]:

        def col(key: str, r: dict[str, Any] = r) -> str:
            return f"{r[key]:>8.0f} ({r[key] / b[key]:.2f})"

        print(
            f"{r['routes']:>10,} {r['install_s']:>10.2f} {r['install_per_s']:>10,} {r['withdraw_s']:>11.2f} "
            f"{r['rss_mb']:>7.1f} {r['bytes_per_route']:>8} |                   {col('lookup_working_set_ns'):>16} "
            f"{col('lookup_hit_ns'):>14} {col('lookup_default_ns'):>14}"
        )
    big = rows[-1]
    flat = big["lookup_working_set_ns"] / b["lookup_working_set_ns"]
    print(
        f"\ntargets: {big['routes']:,} routes installed in {big['install_s']:.1f} s (target for 1M: < 60 s"
        + (f": {'met' if big['install_s'] < 60 else 'NOT met'})" if big["routes"] >= 1_000_000 else ")")
        + f"; lookup of a working set at {big['routes']:,} routes {flat:.2f}x of 1k "
        f"(target <= 1.5x: {'met' if flat <= 1.5 else 'NOT met'}); random over the whole table "
        f"{big['lookup_hit_ns'] / b['lookup_hit_ns']:.2f}x (cache misses, not the algorithm)"
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "bench-routes.json"
    path.write_text(json.dumps({"baseline": baseline, "sizes": rows}, indent=1))
    print(f"raw figures: {path}")
    return 0
