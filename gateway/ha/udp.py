"""A BFD session over a kernel UDP socket (RFC 5881 single hop).

Where this sits: a standalone way to run :class:`gateway.ha.bfd.Session`
against a real peer (FRR's bfdd in the interop test; a lab host by hand):

    python -m gateway.ha.udp --local 198.51.100.1 --peer 198.51.100.2 \\
        --tx 100 --rx 100 --mult 3 --seconds 10

prints one JSON line per state change and a final status line.  Packets
leave with TTL 255 from a source port in 49152-65535 and are accepted only
with TTL 255 (RFC 5881 section 5, the GTSM check).
"""

from __future__ import annotations

import argparse
import json
import random
import select
import socket
import struct
import sys
import time

from gateway.ha.bfd import BFD_PORT, STATE_NAMES, Session

IP_RECVTTL = 12
IP_TTL = 2


class Endpoint:
    def __init__(self, session: Session, local: str, peer: str) -> None:
        self.session = session
        self.peer = peer
        self.rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rx.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.rx.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
        self.rx.bind((local, BFD_PORT))
        self.tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.tx.setsockopt(socket.IPPROTO_IP, IP_TTL, 255)
        for _ in range(50):
            try:
                self.tx.bind((local, random.randint(49152, 65535)))
                break
            except OSError:
                continue
        self.ttl_rejected = 0

    def run(self, seconds: float, report: bool = True) -> None:
        end = time.monotonic() + seconds
        seen = 0
        while time.monotonic() < end:
            now = time.monotonic()
            out = self.session.poll(now)
            if out is not None:
                self.tx.sendto(out, (self.peer, BFD_PORT))
            wait = max(0.0, min(self.session.next_tx, end) - time.monotonic())
            ready, _, _ = select.select([self.rx], [], [], min(wait, 0.05))
            if ready:
                data, anc, _flags, (src, _port) = self.rx.recvmsg(512, socket.CMSG_SPACE(4))
                ttl = next(
                    (struct.unpack("i", c[2][:4])[0] for c in anc if c[0] == socket.IPPROTO_IP and c[1] == IP_TTL), None
                )
                if src != self.peer or ttl != 255:
                    self.ttl_rejected += 1
                    continue
                self.session.receive(data, time.monotonic())
            if report:
                for when, old, new, diag in self.session.changes[seen:]:
                    print(
                        json.dumps({"event": "state", "from": old, "to": new, "diag": diag, "t": round(when, 3)}),
                        flush=True,
                    )
                seen = len(self.session.changes)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m gateway.ha.udp", description="one BFD session over UDP")
    ap.add_argument("--local", required=True)
    ap.add_argument("--peer", required=True)
    ap.add_argument("--tx", type=int, default=300, help="desired min TX interval, ms")
    ap.add_argument("--rx", type=int, default=300, help="required min RX interval, ms")
    ap.add_argument("--mult", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--discriminator", type=int, default=0, help="local discriminator (default: random)")
    args = ap.parse_args(argv)
    disc = args.discriminator or random.randint(1, 2**32 - 1)
    session = Session(disc, args.tx * 1000, args.rx * 1000, args.mult)
    try:
        ep = Endpoint(session, args.local, args.peer)
    except OSError as exc:
        print(f"bfd: cannot open sockets on {args.local}: {exc.strerror}", file=sys.stderr)
        return 1
    ep.run(args.seconds)
    status = dict(session.status(), ttl_rejected=ep.ttl_rejected, event="status")
    print(json.dumps(status), flush=True)
    return 0 if STATE_NAMES[session.state] else 1


if __name__ == "__main__":
    sys.exit(main())
