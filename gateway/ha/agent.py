"""The HA agent: a control-plane process beside the datapath of an SR node.

    python -m gateway.ha.agent --config FILE      (the gateway's own config)

Where this sits: it connects to the datapath's unix socket (``io/ipc.py``),
receives the BFD packets the datapath punts to it and sends its own through
the datapath, which routes them like any packet of the SR.  It runs one BFD
session (``bfd.py``) to each peer SR named in ``routers[].ha.peers``.

Failover: when a session that was Up goes Down, the peer failed; the agent
asks the datapath to take over the peer's transit address and its other
addresses (uplink), and the datapath sends a gratuitous ARP for each, so the
DR's and the provider's neighbour entries move to this SR's MAC without any
route change.  Recovery (``preempt: true``): a restarted SR announces its own
addresses with gratuitous ARPs as it starts; when its BFD session comes Up
again, this agent releases the addresses it held for it.

Only sessions that were Up trigger a takeover: at start, a peer that is not
there yet is not presumed dead.
"""

from __future__ import annotations

import argparse
import json
import random
import select
import socket
import sys
import time
from dataclasses import dataclass, field

from gateway import config
from gateway.ha.bfd import BFD_PORT, STATE_NAMES, UP, Session
from gateway.headers import IPPROTO_UDP, IPv4, Udp, ip_str
from gateway.io.ipc import decode, encode

STATUS_EVERY = 1.0


@dataclass
class Peer:
    router: str
    transit: int
    addresses: list[int]
    session: Session
    sport: int
    held: bool = False
    seen: int = 0
    events: list[dict[str, object]] = field(default_factory=list)


class Agent:
    def __init__(self, cfg: config.Config) -> None:
        self.peers: list[Peer] = []
        self.local: dict[str, int] = {}
        self.socket_path = ""
        self.preempt: dict[str, bool] = {}
        for rc in cfg.routers:
            if rc.ha is None or rc.transit is None or rc.transit.sr is None:
                continue
            self.socket_path = rc.ha.socket
            self.local[rc.name] = int(rc.transit.sr)
            self.preempt[rc.name] = rc.ha.preempt
            for hp in rc.ha.peers:
                session = Session(random.randint(1, 2**32 - 1), rc.ha.tx_ms * 1000, rc.ha.rx_ms * 1000, rc.ha.mult)
                self.peers.append(
                    Peer(
                        rc.name,
                        int(hp.transit),
                        [int(hp.transit), *map(int, hp.addresses)],
                        session,
                        random.randint(49152, 65535),
                    )
                )
        if not self.peers:
            raise config.ConfigError(f"{cfg.source}: no router has 'ha' with peers: nothing for the agent to do")
        self.sock: socket.socket | None = None

    def connect(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            try:
                sock.connect(self.socket_path)
                sock.setblocking(False)
                self.sock = sock
                return
            except OSError as exc:
                sock.close()
                if time.monotonic() > deadline:
                    raise OSError(f"no datapath listening on {self.socket_path}: {exc.strerror}") from None
                time.sleep(0.2)

    def _send(self, meta: dict[str, object], payload: bytes = b"") -> None:
        assert self.sock is not None
        try:
            self.sock.send(encode(meta, payload))
        except BlockingIOError:
            pass  # the datapath is busy: this BFD packet is lost, the next one follows

    def bfd_packet(self, peer: Peer, payload: bytes) -> bytes:
        src = self.local[peer.router]
        udp = Udp(peer.sport, BFD_PORT).serialize(payload, src, peer.transit)
        # RFC 5881: TTL 255 on send, checked on receive (GTSM).
        return IPv4(src=src, dst=peer.transit, proto=IPPROTO_UDP, ttl=255).serialize(len(udp)) + udp

    def on_packet(self, meta: dict[str, object], payload: bytes, now: float) -> None:
        if len(payload) < 28 or payload[9] != IPPROTO_UDP or payload[8] != 255:
            return
        src = int.from_bytes(payload[12:16], "big")
        ihl = (payload[0] & 0x0F) * 4
        for peer in self.peers:
            if peer.transit == src and f"{peer.router}-sr" == meta.get("router"):
                peer.session.receive(payload[ihl + 8 :], now)
                return

    def react(self, peer: Peer, now: float) -> None:
        for when, old, new, diag in peer.session.changes[peer.seen :]:
            event = {
                "event": "bfd",
                "peer": ip_str(peer.transit),
                "from": old,
                "to": new,
                "diag": diag,
                "t": round(when, 3),
            }
            print(json.dumps(event), flush=True)
            peer.events.append(event)
            if old == STATE_NAMES[UP] and new != STATE_NAMES[UP] and not peer.held:
                for ip in peer.addresses:
                    self._send({"type": "takeover", "router": peer.router, "ip": ip_str(ip)})
                peer.held = True
                print(
                    json.dumps(
                        {
                            "event": "takeover",
                            "peer": ip_str(peer.transit),
                            "addresses": [ip_str(a) for a in peer.addresses],
                            "t": round(now, 3),
                        }
                    ),
                    flush=True,
                )
            elif new == STATE_NAMES[UP] and peer.held and self.preempt[peer.router]:
                for ip in peer.addresses:
                    self._send({"type": "release", "router": peer.router, "ip": ip_str(ip)})
                peer.held = False
                print(json.dumps({"event": "release", "peer": ip_str(peer.transit), "t": round(now, 3)}), flush=True)
            if new == STATE_NAMES[UP]:
                # Re-assert our own addresses: after a split (only the BFD path was cut) both
                # sides held each other's; each now claims its own again.
                self._send({"type": "announce"})
        peer.seen = len(peer.session.changes)

    def status(self) -> dict[str, object]:
        return {
            ip_str(p.transit): dict(p.session.status(), holding=p.held, router=p.router, last_events=p.events[-4:])
            for p in self.peers
        }

    def run(self, seconds: float | None = None) -> None:
        assert self.sock is not None
        end = None if seconds is None else time.monotonic() + seconds
        next_status = 0.0
        while end is None or time.monotonic() < end:
            now = time.monotonic()
            for peer in self.peers:
                out = peer.session.poll(now)
                if out is not None:
                    self._send({"type": "send", "router": f"{peer.router}-sr"}, self.bfd_packet(peer, out))
                self.react(peer, now)
            if now >= next_status:
                self._send({"type": "status", "status": self.status()})
                next_status = now + STATUS_EVERY
            wait = min(p.session.next_tx for p in self.peers) - time.monotonic()
            ready, _, _ = select.select([self.sock], [], [], max(0.0, min(wait, 0.02)))
            if not ready:
                continue
            while True:
                try:
                    data = self.sock.recv(65536)
                except BlockingIOError:
                    break
                if not data:
                    raise ConnectionError("the datapath closed the HA socket")
                try:
                    meta, payload = decode(data)
                except ValueError:
                    continue
                if meta.get("type") == "packet":
                    self.on_packet(meta, payload, time.monotonic())
                elif meta.get("type") == "error":
                    print(json.dumps({"event": "datapath-error", "error": meta.get("error")}), flush=True)


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
    print(json.dumps({"event": "start", "peers": [ip_str(p.transit) for p in agent.peers]}), flush=True)
    try:
        agent.run(args.seconds)
    except (ConnectionError, KeyboardInterrupt) as exc:
        print(f"ha-agent: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
