"""A tiny packet tool that runs *inside* a test host (stdlib only, fast to start).

Where this sits: the suites build and dissect packets with scapy in the test
process; this tool only moves raw frames in the host's namespace, so a
capture starts in milliseconds instead of scapy's second.

    python -m suites.lib.pkttool capture IFACE [--seconds S] [--max N]
        prints READY, then one JSON list of hex frames when done (S elapsed,
        N frames, or stdin closed).  802.1Q tags the kernel took out of band
        are put back inline, so the caller sees frames as they were on the wire.
    python -m suites.lib.pkttool send IFACE HEX [HEX ...] [--gap MS]
    python -m suites.lib.pkttool tcp-server PORT          (prints READY; reports bytes and sha256)
    python -m suites.lib.pkttool tcp-client ADDR PORT NBYTES [--seconds S]   (S: spread over S seconds)
    python -m suites.lib.pkttool tcp-hold-server|udp-hold-server PORT      (a held connection, see traffic)
    python -m suites.lib.pkttool tcp-hold-client|udp-hold-client ADDR PORT
    python -m suites.lib.pkttool udp-echo PORT [--seconds S]   (prints READY; echoes, reports peers)
    python -m suites.lib.pkttool udp-probe ADDR PORT --sport N [--timeout S]
        sends one datagram from source port N, prints the answer and who sent it
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import select
import socket
import struct
import sys
import time
from collections.abc import Callable

SOL_PACKET = 263
PACKET_AUXDATA = 8
PACKET_IGNORE_OUTGOING = 23
TP_STATUS_VLAN_VALID = 0x10
_AUX = struct.Struct("IIIHHHH")


ETH_P_ALL = 3
ETH_P_ARP = 0x0806


def _raw(iface: str, proto: int = ETH_P_ALL) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(proto))
    sock.bind((iface, proto))
    return sock


def capture(iface: str, seconds: float, max_frames: int, arp_only: bool = False) -> int:
    # ARP only: the kernel hands over nothing else, so a capture beside a traffic load
    # keeps every ARP frame however many data frames cross.
    sock = _raw(iface, ETH_P_ARP if arp_only else ETH_P_ALL)
    sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    frames: list[str] = []
    print("READY", flush=True)
    deadline = time.monotonic() + seconds
    watch = [sock, sys.stdin]
    while len(frames) < max_frames:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select(watch, [], [], left)
        if sys.stdin in ready:
            if not os.read(sys.stdin.fileno(), 4096):
                # Caller closed stdin: take what is already queued, then stop.
                watch = [sock]
                deadline = min(deadline, time.monotonic() + 0.2)
        if sock in ready:
            data, anc, _flags, _addr = sock.recvmsg(65535, socket.CMSG_SPACE(_AUX.size))
            for level, kind, cdata in anc:
                if level == SOL_PACKET and kind == PACKET_AUXDATA:
                    status, *_rest, tci, tpid = _AUX.unpack_from(cdata)
                    if status & TP_STATUS_VLAN_VALID:
                        data = data[:12] + struct.pack("!HH", tpid or 0x8100, tci) + data[12:]
            frames.append(data.hex())
    print(json.dumps(frames), flush=True)
    return 0


def send(iface: str, frames: list[str], gap_ms: float) -> int:
    sock = _raw(iface)
    for i, frame in enumerate(frames):
        sock.send(bytes.fromhex(frame))
        if gap_ms and i + 1 < len(frames):
            time.sleep(gap_ms / 1000)
    return 0


MARKER = b"spoken-after-the-failover\n"


def _peer(addr: str) -> str:
    """An IPv4 peer of a dual-stack listener as itself, not as ::ffff:a.b.c.d."""
    return addr[7:] if addr.startswith("::ffff:") and "." in addr else addr


def _listen(port: int, timeout: float) -> socket.socket:
    """A TCP listener for one client on ``port``; READY said once it listens."""
    try:  # both families where the host has IPv6, IPv4 alone where it is off
        srv = socket.socket(socket.AF_INET6)
        srv.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("::", port))
    except OSError:
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("0.0.0.0", port))
    srv.listen(1)
    srv.settimeout(timeout)
    print("READY", flush=True)
    return srv


def tcp_server(port: int, timeout: float = 30.0) -> int:
    srv = _listen(port, timeout)
    try:
        conn, peer = srv.accept()
    except TimeoutError:
        print(json.dumps({"bytes": 0, "error": "no connection"}), flush=True)
        return 4
    conn.settimeout(30)
    digest = hashlib.sha256()
    total = 0
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            break
        digest.update(chunk)
        total += len(chunk)
    conn.sendall(digest.hexdigest().encode())
    conn.close()
    print(
        json.dumps({"bytes": total, "sha256": digest.hexdigest(), "peer": _peer(peer[0]), "peer_port": peer[1]}),
        flush=True,
    )
    return 0


def tcp_client(addr: str, port: int, nbytes: int, seconds: float = 0.0) -> int:
    """Send ``nbytes`` random bytes (spread evenly over ``seconds``, else at once), then read
    the server's digest of them."""
    payload = os.urandom(nbytes)
    # An ICMP error may arrive after connect() returned: a send or recv then fails the
    # same way, and the result must say so, not crash.
    try:
        conn = socket.create_connection((addr, port), timeout=10)
        with conn:
            if seconds > 0:
                start, sent, step = time.monotonic(), 0, max(1, int(nbytes / (seconds * 100)))
                while sent < nbytes:  # a slice every 10 ms
                    conn.sendall(payload[sent : sent + step])
                    sent += step
                    time.sleep(max(0.0, start + sent / nbytes * seconds - time.monotonic()))
            else:
                conn.sendall(payload)
            conn.shutdown(socket.SHUT_WR)
            answer = b""
            while True:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                answer += chunk
    except OSError as exc:
        print(json.dumps({"bytes": 0, "error": exc.strerror or str(exc), "errno": exc.errno}), flush=True)
        return 3
    print(
        json.dumps({"bytes": nbytes, "sha256": hashlib.sha256(payload).hexdigest(), "server_sha256": answer.decode()}),
        flush=True,
    )
    return 0


def tcp_hold_server(port: int, timeout: float) -> int:
    """Accept one connection and hold it: READY once listening, CONNECTED once the client's
    hello arrived; a line on stdin makes it speak first (one marker line), then it waits
    for the client to echo the marker and prints what came back."""
    srv = _listen(port, timeout)
    try:
        conn, peer = srv.accept()
        conn.settimeout(timeout)
        hello = conn.recv(64)
        print(
            "CONNECTED",
            json.dumps({"peer": _peer(peer[0]), "port": peer[1], "hello": hello.decode(errors="replace")}),
            flush=True,
        )
        sys.stdin.readline()
        conn.sendall(MARKER)
        echo = b""
        while not echo.endswith(b"\n"):
            chunk = conn.recv(64)
            if not chunk:
                break
            echo += chunk
    except OSError as exc:
        print(json.dumps({"echo": None, "error": exc.strerror or str(exc)}), flush=True)
        return 3
    print(json.dumps({"echo": echo.decode(errors="replace")}), flush=True)
    return 0


def tcp_hold_client(addr: str, port: int, timeout: float) -> int:
    """Open the connection, say hello, then wait (idle) for the server's line and echo it."""
    try:
        conn = socket.create_connection((addr, port), timeout=10)
        conn.settimeout(timeout)
        with conn:
            conn.sendall(b"hello\n")
            got = b""
            while not got.endswith(b"\n"):
                chunk = conn.recv(64)
                if not chunk:
                    break
                got += chunk
            conn.sendall(got)
    except OSError as exc:
        print(json.dumps({"got": None, "error": exc.strerror or str(exc)}), flush=True)
        return 3
    print(json.dumps({"got": got.decode(errors="replace")}), flush=True)
    return 0


def udp_hold_server(port: int, timeout: float) -> int:
    """UDP's held connection: each hello is answered "ok" (CONNECTED said at the first); a line
    on stdin makes it send the marker to the client's endpoint, then it waits for the echo and
    prints where it came from (a flow that kept its mapping: the same endpoint)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", port))
    sock.settimeout(timeout)
    print("READY", flush=True)
    try:
        hello, peer = sock.recvfrom(64)
        sock.sendto(b"ok\n", peer)
        print(
            "CONNECTED",
            json.dumps({"peer": peer[0], "port": peer[1], "hello": hello.decode(errors="replace")}),
            flush=True,
        )
        sys.stdin.readline()
        sock.sendto(MARKER, peer)
        while True:
            echo, back = sock.recvfrom(64)
            if echo == MARKER:
                break
    except OSError as exc:
        print(json.dumps({"echo": None, "error": exc.strerror or str(exc)}), flush=True)
        return 3
    print(json.dumps({"echo": echo.decode(errors="replace"), "from": [back[0], back[1]]}), flush=True)
    return 0


def udp_hold_client(addr: str, port: int, timeout: float) -> int:
    """Say hello (again every 0.2 s until the server's "ok"), then wait for its marker and echo it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect((addr, port))
    try:
        sock.settimeout(0.2)
        for _ in range(int(10 / 0.2)):
            sock.send(b"hello\n")
            try:
                if sock.recv(64) == b"ok\n":
                    break
            except TimeoutError:
                continue
        sock.settimeout(timeout)
        got = b""
        while got != MARKER:
            got = sock.recv(64)
        sock.send(got)
    except OSError as exc:
        print(json.dumps({"got": None, "error": exc.strerror or str(exc)}), flush=True)
        return 3
    print(json.dumps({"got": got.decode(errors="replace")}), flush=True)
    return 0


def _serve_udp(port: int, seconds: float, handle: Callable[[socket.socket], None], rcvbuf: int = 0) -> None:
    """A UDP socket on ``port``: READY, then ``handle(sock)`` whenever it is readable, until
    stdin closes or ``seconds`` pass."""
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)  # both families
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.bind(("::", port))
    print("READY", flush=True)
    deadline = time.monotonic() + seconds
    watch = [sock, sys.stdin]
    while time.monotonic() < deadline:
        ready, _, _ = select.select(watch, [], [], max(0.0, deadline - time.monotonic()))
        if sys.stdin in ready and not os.read(sys.stdin.fileno(), 4096):
            break
        if sock in ready:
            handle(sock)


def udp_echo(port: int, seconds: float) -> int:
    peers: list[list[object]] = []

    def echo(sock: socket.socket) -> None:
        data, peer = sock.recvfrom(65535)
        addr = peer[0]
        peers.append([addr[7:] if addr.startswith("::ffff:") else addr, peer[1]])  # an IPv4 peer as IPv4
        sock.sendto(data, peer)

    _serve_udp(port, seconds, echo)
    print(json.dumps({"peers": peers}), flush=True)
    return 0


def udp_load(addr: str, port: int, pps: int, seconds: float, size: int) -> int:
    """Paced UDP datagrams: every 10 ms, as many as keep the rate at ``pps``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect((addr, port))
    payload = bytes(size)
    sent = errors = 0
    start = time.monotonic()
    while (now := time.monotonic()) - start < seconds:
        due = int((now - start) * pps) - sent - errors
        for _ in range(due):
            try:
                sock.send(payload)
                sent += 1
            except OSError:  # a full queue or an ICMP error reported on the socket
                errors += 1
        time.sleep(0.01)
    print(json.dumps({"sent": sent, "errors": errors, "seconds": time.monotonic() - start}), flush=True)
    return 0


def udp_sink(port: int, seconds: float) -> int:
    """Count datagrams to ``port`` until stdin closes (or ``seconds`` pass)."""
    received = 0

    def count(sock: socket.socket) -> None:
        nonlocal received
        while True:
            try:
                sock.recv(65535, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            received += 1

    _serve_udp(port, seconds, count, rcvbuf=4 << 20)
    print(json.dumps({"received": received}), flush=True)
    return 0


def udp_probe(addr: str, port: int, sport: int, timeout: float) -> int:
    v6 = ":" in addr
    sock = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("::" if v6 else "0.0.0.0", sport))
    sock.settimeout(timeout)
    payload = f"probe-{sport}".encode()
    sock.sendto(payload, (addr, port))
    try:
        data, peer = sock.recvfrom(65535)
        print(
            json.dumps({"answer": data.decode(errors="replace"), "from": [peer[0], peer[1]], "ok": data == payload}),
            flush=True,
        )
        return 0
    except (TimeoutError, OSError) as exc:
        print(json.dumps({"answer": None, "error": str(exc), "ok": False}), flush=True)
        return 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="pkttool")
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("capture")
    c.add_argument("iface")
    c.add_argument("--seconds", type=float, default=5.0)
    c.add_argument("--max", type=int, default=1000)
    c.add_argument("--arp", action="store_true", help="ARP frames only")
    s = sub.add_parser("send")
    s.add_argument("iface")
    s.add_argument("frames", nargs="+")
    s.add_argument("--gap", type=float, default=0.0)
    ts = sub.add_parser("tcp-server")
    ts.add_argument("port", type=int)
    ts.add_argument("--timeout", type=float, default=30.0)
    tc = sub.add_parser("tcp-client")
    tc.add_argument("addr")
    tc.add_argument("port", type=int)
    tc.add_argument("nbytes", type=int)
    tc.add_argument("--seconds", type=float, default=0.0, help="spread the bytes over this long")
    hs = sub.add_parser("tcp-hold-server")
    hs.add_argument("port", type=int)
    hs.add_argument("--timeout", type=float, default=60.0)
    hc = sub.add_parser("tcp-hold-client")
    hc.add_argument("addr")
    hc.add_argument("port", type=int)
    hc.add_argument("--timeout", type=float, default=60.0)
    for name in ("udp-hold-server", "udp-hold-client"):
        uh = sub.add_parser(name)
        if name.endswith("client"):
            uh.add_argument("addr")
        uh.add_argument("port", type=int)
        uh.add_argument("--timeout", type=float, default=60.0)
    ue = sub.add_parser("udp-echo")
    ue.add_argument("port", type=int)
    ue.add_argument("--seconds", type=float, default=30.0)
    up = sub.add_parser("udp-probe")
    up.add_argument("addr")
    up.add_argument("port", type=int)
    up.add_argument("--sport", type=int, required=True)
    up.add_argument("--timeout", type=float, default=3.0)
    ul = sub.add_parser("udp-load")
    ul.add_argument("addr")
    ul.add_argument("port", type=int)
    ul.add_argument("--pps", type=int, required=True)
    ul.add_argument("--seconds", type=float, required=True)
    ul.add_argument("--size", type=int, default=64, help="payload bytes")
    us = sub.add_parser("udp-sink")
    us.add_argument("port", type=int)
    us.add_argument("--seconds", type=float, default=60.0)
    args = ap.parse_args(argv)
    if args.cmd == "udp-load":
        return udp_load(args.addr, args.port, args.pps, args.seconds, args.size)
    if args.cmd == "udp-sink":
        return udp_sink(args.port, args.seconds)
    if args.cmd == "udp-echo":
        return udp_echo(args.port, args.seconds)
    if args.cmd == "udp-probe":
        return udp_probe(args.addr, args.port, args.sport, args.timeout)
    if args.cmd == "capture":
        return capture(args.iface, args.seconds, args.max, args.arp)
    if args.cmd == "send":
        return send(args.iface, args.frames, args.gap)
    if args.cmd == "tcp-hold-server":
        return tcp_hold_server(args.port, args.timeout)
    if args.cmd == "tcp-hold-client":
        return tcp_hold_client(args.addr, args.port, args.timeout)
    if args.cmd == "udp-hold-server":
        return udp_hold_server(args.port, args.timeout)
    if args.cmd == "udp-hold-client":
        return udp_hold_client(args.addr, args.port, args.timeout)
    if args.cmd == "tcp-server":
        return tcp_server(args.port, args.timeout)
    return tcp_client(args.addr, args.port, args.nbytes, args.seconds)


if __name__ == "__main__":
    sys.exit(main())
