"""The HA agent: a control-plane process beside the datapath of an SR node.

    python -m gateway.ha.agent --config FILE      (the gateway's own config)

Where this sits: it connects to the datapath's unix socket (``io/ipc.py``),
receives the BFD packets the datapath punts to it and sends its own through
the datapath, which routes them like any packet of the SR.

Sessions: one BFD session (``bfd.py``) per *path* to each peer SR named in
``routers[].ha.peers``: to its transit address over the transit switch and to
each of its other addresses (the uplink) over that segment.  A peer is up
while any of its sessions is up.

BFD neighbors (``ha.bfd.neighbors``: the provider router, say): a session
each from our address on its segment; watched and shown, never taken over
(the neighbor learns at once when this SR dies).

Failover: when a peer that was up has no session up any more, it failed; the
agent asks the datapath to take over the peer's addresses, and the datapath
sends a gratuitous ARP for each, so the DR's and the provider's neighbour
entries move to this SR's MAC without any route change.

No split brain when only BFD is cut: if BFD is lost on one path (a filter on
the transit switch, say) the sessions on the other path keep the peer up and
nothing moves.  A lost *link* is different: an SR whose own transit or uplink
interface is down fences itself — it sends AdminDown on every session, so its
peers take over at once, and releases anything it held — until the link is
back.

Recovery (``preempt: true``): when a peer comes back up, the agent releases
the addresses it held for it; every agent re-announces its own addresses
(gratuitous ARPs) whenever a peer comes up.  Only a peer that was up can
fail: at start, a peer that is not there yet is not presumed dead.
"""

from __future__ import annotations

import argparse
import fcntl
import ipaddress
import json
import random
import select
import socket
import struct
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from gateway import config
from gateway.ha.bfd import BFD_PORT, DOWN, HELLO_PORT, UP, Session
from gateway.headers import IPPROTO_UDP, IPv4, Udp
from gateway.headers6 import IPv6, addr_str
from gateway.io import ipc

STATUS_EVERY = 1.0
HELLO_EVERY = 0.3
CLAIM_WAIT = 1.5  # without preemption: how long to listen for peers' hellos before claiming our addresses
SIOCGIFFLAGS = 0x8913
IFF_UP = 0x1
IFF_RUNNING = 0x40


@dataclass
class Path:
    local: int
    remote: int
    session: Session
    sport: int
    seen: int = 0


@dataclass
class Peer:
    router: str
    transit: int
    addresses: list[int]
    paths: list[Path]
    was_up: bool = False
    held: bool = False
    events: list[dict[str, object]] = field(default_factory=list)
    holding: set[int] = field(default_factory=set)  # what the peer says it holds (its hellos)
    heard: bool = False

    @property
    def up(self) -> bool:
        return any(p.session.state == UP for p in self.paths)


def link_up(ifname: str) -> bool:
    """The interface is administratively up and has carrier (SIOCGIFFLAGS)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            raw = fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, struct.pack("16sH14s", ifname.encode()[:15], 0, b""))
        except OSError:
            return False
    flags = struct.unpack("16sH14s", raw)[1]
    return bool(flags & IFF_UP and flags & IFF_RUNNING)


def _udp_packet(src: int, dst: int, sport: int, dport: int, payload: bytes) -> bytes:
    """A UDP datagram from ``src`` to ``dst`` (IPv4 or IPv6), TTL/hop limit 255: RFC 5881 sends
    with 255 and checks it on receive (GTSM)."""
    udp = Udp(sport, dport).serialize(payload, src, dst)
    if dst > 0xFFFFFFFF:
        return IPv6(src, dst, IPPROTO_UDP, 255).serialize(len(udp)) + udp
    return IPv4(src=src, dst=dst, proto=IPPROTO_UDP, ttl=255).serialize(len(udp)) + udp


def _udp_in(packet: bytes) -> tuple[int, int, int] | None:
    """Source, destination and UDP offset of a datagram that came with TTL/hop limit 255 (None:
    not one; an IPv6 packet with extension headers is none either)."""
    if packet[:1] and packet[0] >> 4 == 6:
        if len(packet) < 48 or packet[6] != IPPROTO_UDP or packet[7] != 255:
            return None
        return int.from_bytes(packet[8:24], "big"), int.from_bytes(packet[24:40], "big"), 40
    ihl = (packet[0] & 0x0F) * 4 if packet else 0
    if len(packet) < max(28, ihl + 8) or packet[9] != IPPROTO_UDP or packet[8] != 255:
        return None
    return int.from_bytes(packet[12:16], "big"), int.from_bytes(packet[16:20], "big"), ihl


def _path(mine: list[tuple[int, Any]], remote: Any, ha: config.HaConfig, what: str) -> Path:
    """A BFD session to ``remote`` from our address on its segment (``mine``: (address, network))."""
    local = next((ip for ip, net in mine if remote in net), None)
    if local is None:
        raise config.ConfigError(f"{what} {remote} is on no segment of this SR")
    session = Session(random.randint(1, 2**32 - 1), ha.tx_ms * 1000, ha.rx_ms * 1000, ha.mult)
    return Path(local, int(remote), session, random.randint(49152, 65535))


class Agent:
    def __init__(self, cfg: config.Config) -> None:
        self.peers: list[Peer] = []
        self.socket_path = ""
        self.preempt: dict[str, bool] = {}
        self.ifnames: list[str] = []
        self.fenced = False
        self.own: dict[str, list[int]] = {}  # router -> our own SR addresses
        self.yielded: dict[str, set[int]] = {}  # router -> own addresses not claimed (no preemption)
        self.started = time.monotonic()
        self.neighbors: list[tuple[str, Path]] = []  # (router, path) of each BFD neighbor
        for rc in cfg.routers:
            if rc.ha is None or rc.transit is None or rc.transit.sr is None or rc.sr is None:
                continue
            self.socket_path = rc.ha.socket
            self.preempt[rc.name] = rc.ha.preempt
            # Our address on each segment: the transit one and the SR's port addresses.
            mine = [(int(rc.transit.sr), rc.transit.subnet), *((int(p.ip.ip), p.ip.network) for p in rc.sr.ports)]
            mine6 = [(int(p.ip6.ip), p.ip6.network) for p in rc.sr.ports if p.ip6 is not None]
            if rc.transit.sr6 is not None and rc.transit.subnet6 is not None:
                mine6.append((int(rc.transit.sr6), rc.transit.subnet6))
            theirs = {int(a) for hp in rc.ha.peers for a in hp.publics}
            publics = sorted(rc.sr.nat.publics() - theirs) if rc.sr.nat is not None else []
            # (IPv6: our addresses move with the IPv4 ones; the peers' BFD runs over IPv4.)
            self.own[rc.name] = [ip for ip, _net in mine + mine6] + publics  # and our public NAT addresses
            # Mirrors the datapath: without preemption it starts claiming none of them.
            self.yielded[rc.name] = set() if rc.ha.preempt else set(self.own[rc.name])
            for hp in rc.ha.peers:
                watched = (hp.transit, *(a for a in hp.addresses if a.version == 4))
                paths = [_path(mine, r, rc.ha, f"{cfg.source}: ha peer address") for r in watched]
                # Taken over on failure: its addresses, and the public NAT addresses it answers for.
                held = [int(hp.transit), *map(int, hp.addresses), *map(int, hp.publics)]
                self.peers.append(Peer(rc.name, int(hp.transit), held, paths))
            # BFD with a router on our segments: watched, never taken over.
            self.neighbors += [
                (rc.name, _path(mine + mine6, nb, rc.ha, f"{cfg.source}: BFD neighbor")) for nb in rc.ha.neighbors
            ]
            names = {p.name: p.ifname for p in cfg.ports.values()}
            used = {inst.records[0].port for inst in cfg.instances.values() if inst.records}
            self.ifnames = sorted(names[p] for p in used if p in names)
        if not self.peers:
            raise config.ConfigError(f"{cfg.source}: no router has 'ha' with peers: nothing for the agent to do")
        self.sock: socket.socket | None = None

    # -- the datapath ---------------------------------------------------------------------
    def connect(self, timeout: float = 20.0) -> None:
        self.sock = ipc.connect(self.socket_path, "ha", timeout)  # BFD and hellos come to us

    def _send(self, meta: dict[str, object], payload: bytes = b"") -> None:
        assert self.sock is not None
        ipc.send_nowait(self.sock, meta, payload)  # (lost when busy: the next BFD packet follows)

    def _log(self, event: dict[str, object]) -> None:
        print(json.dumps(event), flush=True)

    def bfd_packet(self, path: Path, payload: bytes) -> bytes:
        return _udp_packet(path.local, path.remote, path.sport, BFD_PORT, payload)

    def hello_packet(self, path: Path, peer: Peer) -> bytes:
        held = [addr_str(a) for p in self.peers if p.router == peer.router and p.held for a in p.addresses]
        body = json.dumps({"holding": held}).encode()
        return _udp_packet(path.local, path.remote, HELLO_PORT, HELLO_PORT, body)

    def on_packet(self, meta: dict[str, object], payload: bytes, now: float) -> None:
        parsed = _udp_in(payload)
        if parsed is None:
            return
        src, dst, ihl = parsed
        dport = (payload[ihl + 2] << 8) | payload[ihl + 3]
        for router, path in self.neighbors:
            if (
                f"{router}-sr" == meta.get("router")
                and path.remote == src
                and path.local == dst
                and dport != HELLO_PORT
            ):
                path.session.receive(payload[ihl + 8 :], now)
                return
        for peer in self.peers:
            if f"{peer.router}-sr" != meta.get("router"):
                continue
            for path in peer.paths:
                if path.remote == src and path.local == dst:
                    if dport == HELLO_PORT:
                        try:
                            said = json.loads(payload[ihl + 8 :])
                            peer.holding = {int(ipaddress.ip_address(a)) for a in said.get("holding", [])}
                            peer.heard = True
                        except (ValueError, AttributeError, TypeError):
                            pass
                    else:
                        path.session.receive(payload[ihl + 8 :], now)
                    return

    def claim_own(self, now: float) -> None:
        """Without preemption: claim each of our addresses that no live peer says it holds."""
        for router, yielded in self.yielded.items():
            if not yielded:
                continue
            peers = [p for p in self.peers if p.router == router]
            if now - self.started < CLAIM_WAIT and not all(p.heard for p in peers):
                continue  # still listening for who holds what
            # A peer that went down had its claims cleared at takeover; a live one says what it holds.
            held_elsewhere: set[int] = set().union(*(p.holding for p in peers))
            for ip in sorted(yielded - held_elsewhere):
                self._send({"type": "claim", "router": router, "ip": addr_str(ip)})
                yielded.discard(ip)
                self._log({"event": "claim", "ip": addr_str(ip), "t": round(now, 3)})

    # -- decisions -------------------------------------------------------------------------
    def check_links(self, now: float) -> None:
        down = [name for name in self.ifnames if not link_up(name)]
        if down and not self.fenced:
            self.fenced = True
            for _router, path in self.neighbors:
                path.session.admin_down(now)
            for peer in self.peers:
                for path in peer.paths:
                    path.session.admin_down(now)
                if peer.held:
                    self._release(peer, now)
            self._log({"event": "fenced", "links_down": down, "t": round(now, 3)})
        elif not down and self.fenced:
            self.fenced = False
            for path in [p for _r, p in self.neighbors] + [p for peer in self.peers for p in peer.paths]:
                path.session.state = DOWN  # out of AdminDown: the sessions start again
                path.session.next_tx = now
            self._log({"event": "unfenced", "t": round(now, 3)})

    def react(self, peer: Peer, now: float) -> None:
        for path in peer.paths:
            for when, old, new, diag in path.session.changes[path.seen :]:
                event = {
                    "event": "bfd",
                    "peer": addr_str(peer.transit),
                    "path": addr_str(path.remote),
                    "from": old,
                    "to": new,
                    "diag": diag,
                    "t": round(when, 3),
                }
                self._log(event)
                peer.events.append(event)
            path.seen = len(path.session.changes)
        up = peer.up
        if peer.was_up and not up and not peer.held and not self.fenced:
            for ip in peer.addresses:
                self._send({"type": "takeover", "router": peer.router, "ip": addr_str(ip)})
            peer.held = True
            peer.holding = set()  # a dead peer holds nothing: our own yielded addresses come back
            self._log(
                {
                    "event": "takeover",
                    "peer": addr_str(peer.transit),
                    "addresses": [addr_str(a) for a in peer.addresses],
                    "t": round(now, 3),
                }
            )
        elif up and not peer.was_up:
            if peer.held and self.preempt[peer.router]:
                self._release(peer, now)
            # Re-assert our own addresses: whoever held them while we were apart lets go now.
            self._send({"type": "announce"})
        peer.was_up = up

    def _release(self, peer: Peer, now: float) -> None:
        for ip in peer.addresses:
            self._send({"type": "release", "router": peer.router, "ip": addr_str(ip)})
        peer.held = False
        self._log({"event": "release", "peer": addr_str(peer.transit), "t": round(now, 3)})

    def status(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for p in self.peers:
            paths = {addr_str(x.remote): x.session.status() for x in p.paths}
            out[addr_str(p.transit)] = {
                "state": "up" if p.up else ("admin-down" if self.fenced else "down"),
                "holding": p.held,
                "router": p.router,
                "paths": paths,
                "last_events": p.events[-4:],
            }
        out["neighbors"] = {addr_str(p.remote): p.session.status() for _router, p in self.neighbors}
        out["fenced"] = self.fenced
        out["yielded"] = {r: sorted(addr_str(i) for i in y) for r, y in self.yielded.items()}
        return out

    def run(self, seconds: float | None = None) -> None:
        assert self.sock is not None
        end = None if seconds is None else time.monotonic() + seconds
        next_status = 0.0
        next_hello = 0.0
        paths = [path for peer in self.peers for path in peer.paths] + [p for _r, p in self.neighbors]
        while end is None or time.monotonic() < end:
            now = time.monotonic()
            self.check_links(now)
            for router, path in self.neighbors:
                out = path.session.poll(now)
                if out is not None:
                    self._send({"type": "send", "router": f"{router}-sr"}, self.bfd_packet(path, out))
                for when, old, new, diag in path.session.changes[path.seen :]:
                    self._log({"event": "bfd", "neighbor": addr_str(path.remote), "from": old, "to": new,
                               "diag": diag, "t": round(when, 3)})  # fmt: skip
                path.seen = len(path.session.changes)
            for peer in self.peers:
                for path in peer.paths:
                    out = path.session.poll(now)
                    if out is not None:  # AdminDown too: that is how peers learn we fenced ourselves
                        self._send({"type": "send", "router": f"{peer.router}-sr"}, self.bfd_packet(path, out))
                self.react(peer, now)
            if now >= next_hello and not self.fenced:
                for peer in self.peers:
                    for path in peer.paths:
                        self._send({"type": "send", "router": f"{peer.router}-sr"}, self.hello_packet(path, peer))
                next_hello = now + HELLO_EVERY
            self.claim_own(now)
            if now >= next_status:
                self._send({"type": "status", "status": self.status()})
                next_status = now + STATUS_EVERY
            wait = min(p.session.next_timer() for p in paths) - time.monotonic()
            ready, _, _ = select.select([self.sock], [], [], max(0.0, min(wait, 0.02)))
            if not ready:
                continue
            for meta, payload in ipc.received(self.sock):
                if meta.get("type") == "packet":
                    self.on_packet(meta, payload, time.monotonic())
                elif meta.get("type") == "error":
                    self._log({"event": "datapath-error", "error": meta.get("error")})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m gateway.ha.agent", description="BFD and SR failover for one gateway node"
    )
    ap.add_argument("--config", required=True)
    ap.add_argument("--seconds", type=float, default=None, help="stop after this long (tests)")
    args = ap.parse_args(argv)
    try:
        agent = Agent(config.load(args.config))
        agent.connect()
    except (config.ConfigError, OSError) as exc:
        print(f"ha-agent: {exc}", file=sys.stderr)
        return 2
    print(
        json.dumps({"event": "start", "peers": [addr_str(p.transit) for p in agent.peers], "links": agent.ifnames}),
        flush=True,
    )
    try:
        agent.run(args.seconds)
    except (ConnectionError, KeyboardInterrupt) as exc:
        print(f"ha-agent: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
