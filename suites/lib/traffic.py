"""Traffic helpers for the suites: real packets in real host namespaces.

Where this sits: used by ``suites/e2e`` tests and by the Robot keyword
library.  Frames are built and dissected with scapy here, in the test
process; moving them in and out of a host is ``pkttool``'s job (started in
the host with ``node.popen``).  Every command's exit status is checked.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from scapy.layers.l2 import Ether

from topologies.nodes import run

REPO = Path(__file__).resolve().parents[2]
PKTTOOL = [sys.executable, "-m", "suites.lib.pkttool"]


class TrafficError(AssertionError):
    pass


def _start_ready(host: Any, args: list[str], what: str) -> Any:
    """A pkttool command in ``host`` that prints READY once it listens (stdin kept open: its
    closing is the stop signal)."""
    proc = host.popen(
        [*PKTTOOL, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(REPO)
    )
    line = proc.stdout.readline().decode().strip()
    if line != "READY":
        proc.kill()
        raise TrafficError(f"{what} on {host.name} did not start: {line} {proc.stderr.read().decode()}")
    return proc


class Capture:
    """Frames captured on one host interface (a list of scapy ``Ether``)."""

    def __init__(self, host: Any, iface: str, seconds: float, max_frames: int, arp_only: bool = False) -> None:
        self.host = host
        self.iface = iface
        self.frames: list[Ether] = []
        args = ["capture", iface, "--seconds", str(seconds), "--max", str(max_frames)] + (["--arp"] if arp_only else [])
        self.proc = _start_ready(host, args, f"capture on {iface}")

    def stop(self, timeout: float = 30.0) -> list[Ether]:
        try:
            out, err = self.proc.communicate(input=b"", timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise TrafficError(f"capture on {self.host.name}:{self.iface} did not stop") from None
        if self.proc.returncode != 0:
            raise TrafficError(f"capture on {self.host.name}:{self.iface} failed: {err.decode()}")
        self.frames = [Ether(bytes.fromhex(h)) for h in json.loads(out.decode().strip().splitlines()[-1])]
        return self.frames


@contextmanager
def capture(host: Any, iface: str | None = None, seconds: float = 10.0, max_frames: int = 1000) -> Iterator[Capture]:
    """Capture on ``host`` while the block runs; frames are in ``cap.frames`` afterwards."""
    cap = Capture(host, iface or host.defaultIntf().name, seconds, max_frames)
    try:
        yield cap
    finally:
        if cap.proc.poll() is None or not cap.frames:
            cap.stop()


def send(host: Any, frames: Iterable[bytes | Ether], iface: str | None = None, gap_ms: float = 0.0) -> None:
    hexes = [bytes(f).hex() for f in frames]
    argv = [*PKTTOOL, "send", iface or host.defaultIntf().name, *hexes]
    if gap_ms:
        argv += ["--gap", str(gap_ms)]
    proc = host.popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(REPO))
    _out, err = proc.communicate(timeout=30)
    if proc.returncode != 0:
        raise TrafficError(f"send on {host.name} failed: {err.decode()}")


class PingResult:
    def __init__(self, text: str, returncode: int) -> None:
        self.text = text
        self.returncode = returncode
        m = re.search(r"(\d+) packets transmitted, (\d+) received", text)
        self.sent = int(m.group(1)) if m else 0
        self.received = int(m.group(2)) if m else 0
        self.ttls = [int(t) for t in re.findall(r"ttl=(\d+)", text)]
        self.errors = re.findall(r"From (\S+) icmp_seq=\d+ (.+)", text)

    @property
    def ok(self) -> bool:
        return self.received > 0 and self.received == self.sent


def ping(
    host: Any, dst: str, count: int = 3, ttl: int | None = None, interval: float = 0.2, wait: float = 1.0
) -> PingResult:
    """``ping`` from ``host``; the result keeps the text for failure messages."""
    argv = ["ping", "-n", "-c", str(count), "-i", str(interval), "-W", str(wait)]
    if ttl is not None:
        argv += ["-t", str(ttl)]
    result = run(host, [*argv, dst], check=False, timeout=count * (interval + wait) + 10)
    if result.returncode not in (0, 1):  # 1: no reply, which callers assert on
        raise TrafficError(f"ping on {host.name} failed to run: {result.stderr}")
    return PingResult(result.stdout, result.returncode)


class PingStream:
    """``ping`` running in ``host`` in the background, ``interval`` s apart; ``result()`` waits
    for it to end, ``stop()`` ends it early (both safe to call in a ``finally``)."""

    def __init__(self, host: Any, dst: str, count: int = 60, interval: float = 0.05) -> None:
        self.proc = host.popen(
            ["ping", "-n", "-i", str(interval), "-c", str(count), "-W", "1", dst],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def result(self, timeout: float = 30.0) -> PingResult:
        out, _err = self.proc.communicate(timeout=timeout)
        return PingResult(out.decode(), self.proc.returncode)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def tcp_transfer(
    client: Any, server: Any, server_ip: str, nbytes: int = 1 << 20, port: int = 5001, listen_port: int | None = None
) -> dict[str, Any]:
    """Send ``nbytes`` random bytes client -> server over TCP; return both sides' digests.

    ``server_ip``:``port`` is what the client dials (a public NAT address,
    maybe); the server listens on ``listen_port`` (default ``port``).
    """
    srv = server.popen(
        [*PKTTOOL, "tcp-server", str(listen_port or port)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=str(REPO),
    )
    try:
        line = srv.stdout.readline().decode().strip()
        if line != "READY":
            raise TrafficError(f"tcp server on {server.name} did not start: {srv.stderr.read().decode()}")
        cli = run(client, [*PKTTOOL, "tcp-client", server_ip, str(port), str(nbytes)], check=False, timeout=60)
        out, err = srv.communicate(timeout=60)
    finally:
        if srv.poll() is None:
            srv.kill()
            srv.wait()
    if cli.returncode != 0:
        raise TrafficError(f"tcp client on {client.name} failed: {cli.stderr.strip()}")
    if srv.returncode != 0:
        raise TrafficError(f"tcp server on {server.name} failed: {err.decode()}")
    client_side = json.loads(cli.stdout.strip().splitlines()[-1])
    server_side = json.loads(out.decode().strip().splitlines()[-1])
    return {"client": client_side, "server": server_side}


class TcpStream:
    """A transfer running in the background: ``nbytes`` client -> server spread over
    ``seconds`` (a failover happens meanwhile); ``result()`` waits for it and returns both
    sides' reports as :func:`tcp_transfer` does (the client's says an error, a reset say)."""

    def __init__(
        self, client: Any, server: Any, addr: str, port: int, seconds: float, nbytes: int = 1 << 20,
        listen_port: int | None = None,
    ) -> None:  # fmt: skip
        self.server = _start_ready(server, ["tcp-server", str(listen_port or port), "--timeout", "30"], "tcp server")
        self.client = client.popen(
            [*PKTTOOL, "tcp-client", addr, str(port), str(nbytes), "--seconds", str(seconds)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(REPO),
        )  # fmt: skip
        self.seconds = seconds

    def result(self) -> dict[str, Any]:
        try:
            cli, _ = self.client.communicate(timeout=self.seconds + 60)
            srv, _ = self.server.communicate(timeout=30)
        finally:
            self.close()
        last = [json.loads(out.decode().strip().splitlines()[-1]) if out.strip() else {} for out in (cli, srv)]
        return {"client": last[0], "server": last[1]}

    def close(self) -> None:
        for proc in (self.client, self.server):
            if proc.poll() is None:
                proc.kill()
                proc.wait()


_TCP_ATTEMPT = """
import errno, json, socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET)
s.settimeout(float(sys.argv[3]))
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    out = {"outcome": "connected"}
except socket.timeout:
    out = {"outcome": "timeout"}
except OSError as exc:
    out = {"outcome": "refused" if exc.errno == errno.ECONNREFUSED else "error", "errno": exc.errno, "error": str(exc)}
print(json.dumps(out))
"""


def tcp_attempt(client: Any, addr: str, port: int, timeout: float = 2.0) -> dict[str, Any]:
    """One TCP connection attempt with a short timeout: {"outcome": connected | refused (a
    reset) | timeout (no answer at all) | error, ...}."""
    res = run(
        client, [sys.executable, "-c", _TCP_ATTEMPT, addr, str(port), str(timeout)], check=False, timeout=timeout + 10
    )
    if res.returncode != 0:
        raise TrafficError(f"tcp attempt on {client.name} failed to run: {res.stderr}")
    return dict(json.loads(res.stdout.strip().splitlines()[-1]))


def tcp_connect(client: Any, addr: str, port: int) -> dict[str, Any]:
    """Try to open a TCP connection; the result says the error when it failed."""
    res = run(client, [*PKTTOOL, "tcp-client", addr, str(port), "1"], check=False, timeout=30)
    if res.returncode not in (0, 3):
        raise TrafficError(f"tcp client on {client.name} failed to run: {res.stderr}")
    return dict(json.loads(res.stdout.strip().splitlines()[-1]))


HELD_MARKER = "spoken-after-the-failover\n"  # what pkttool's tcp-hold-server says (pkttool.MARKER)


class HeldConnection:
    """One connection client -> server (TCP, or a UDP flow with ``udp``), opened and then
    left idle (for a failover in between).  ``peer`` is the (address, port) the server saw
    it from; ``speak()`` has the server send first and returns (what the client got, what
    the server got back), both None when nothing crossed within ``timeout``; for UDP,
    ``answered_from`` is where the client's answer came from (the same endpoint: the flow
    kept its mapping)."""

    def __init__(
        self, client: Any, server: Any, addr: str, port: int = 5601, timeout: float = 60.0, udp: bool = False
    ) -> None:
        kind = "udp" if udp else "tcp"
        self.server = server.popen(
            [*PKTTOOL, f"{kind}-hold-server", str(port), "--timeout", str(timeout)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(REPO),
        )  # fmt: skip
        self.client: Any = None
        self.peer: tuple[str, int] | None = None
        self.answered_from: tuple[str, int] | None = None
        try:
            if self.server.stdout.readline().decode().strip() != "READY":
                raise TrafficError(
                    f"{kind} hold server on {server.name} did not start: {self.server.stderr.read().decode()}"
                )
            self.client = client.popen(
                [*PKTTOOL, f"{kind}-hold-client", addr, str(port), "--timeout", str(timeout)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(REPO),
            )  # fmt: skip
            line = self.server.stdout.readline().decode().strip()
            if not line.startswith("CONNECTED"):
                raise TrafficError(f"the held {kind} connection to {addr}:{port} was not opened: {line!r}")
            seen = json.loads(line.split(" ", 1)[1])
            self.peer = (seen["peer"], seen["port"])
        except BaseException:
            self.close()
            raise

    def speak(self, timeout: float = 10.0) -> tuple[str | None, str | None]:
        self.server.stdin.write(b"speak\n")
        self.server.stdin.flush()
        try:
            cli_out, _ = self.client.communicate(timeout=timeout)
            srv_out, _ = self.server.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None, None
        finally:
            self.close()
        got = json.loads(cli_out.decode().strip().splitlines()[-1]).get("got")
        said = json.loads(srv_out.decode().strip().splitlines()[-1])
        if said.get("from"):
            self.answered_from = (said["from"][0], said["from"][1])
        return got, said.get("echo")

    def close(self) -> None:
        for proc in (self.client, self.server):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


class UdpEcho:
    """A UDP echo server in a host; ``stop()`` returns the peers it answered."""

    def __init__(self, host: Any, port: int) -> None:
        self.host = host
        self.proc = _start_ready(host, ["udp-echo", str(port)], "udp echo")

    def stop(self) -> list[tuple[str, int]]:
        out, err = self.proc.communicate(input=b"", timeout=30)
        if self.proc.returncode != 0:
            raise TrafficError(f"udp echo on {self.host.name} failed: {err.decode()}")
        return [(p[0], p[1]) for p in json.loads(out.decode().strip().splitlines()[-1])["peers"]]


class UdpLoad:
    """A paced UDP load from ``src`` to ``addr``:``port`` where ``sink`` counts it.

    ``result()`` waits for the sender and returns what was sent and what arrived."""

    def __init__(self, src: Any, sink: Any, addr: str, port: int, pps: int, seconds: float) -> None:
        self.seconds = seconds
        self.sink = sink
        self.sink_proc = _start_ready(sink, ["udp-sink", str(port), "--seconds", str(seconds + 60)], "udp sink")
        self.src = src
        self.proc = src.popen(
            [*PKTTOOL, "udp-load", addr, str(port), "--pps", str(pps), "--seconds", str(seconds)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=str(REPO),
        )

    def result(self) -> dict[str, Any]:
        try:
            out, err = self.proc.communicate(timeout=self.seconds + 30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise TrafficError(f"udp load from {self.src.name} did not end") from None
        finally:
            time.sleep(0.5)  # what is still in flight arrives
            sunk, sink_err = self.sink_proc.communicate(input=b"", timeout=30)
        if self.proc.returncode != 0:
            raise TrafficError(f"udp load from {self.src.name} failed: {err.decode()}")
        if self.sink_proc.returncode != 0:
            raise TrafficError(f"udp sink on {self.sink.name} failed: {sink_err.decode()}")
        res = dict(json.loads(out.decode().strip().splitlines()[-1]))
        res.update(json.loads(sunk.decode().strip().splitlines()[-1]))
        return res


def udp_probe(host: Any, addr: str, port: int, sport: int, timeout: float = 3.0) -> dict[str, Any]:
    res = run(
        host,
        [*PKTTOOL, "udp-probe", addr, str(port), "--sport", str(sport), "--timeout", str(timeout)],
        check=False,
        timeout=timeout + 10,
    )
    if res.returncode not in (0, 1):
        raise TrafficError(f"udp probe on {host.name} failed to run: {res.stderr}")
    return dict(json.loads(res.stdout.strip().splitlines()[-1]))


def neighbour_mac(host: Any, ip: str) -> str | None:
    """The MAC ``host``'s kernel has for ``ip`` (None if unresolved)."""
    out = run(host, ["ip", "-j", "neigh", "show", ip]).stdout
    for entry in json.loads(out or "[]"):
        if entry.get("lladdr") and entry.get("state", ["FAILED"])[0] not in ("FAILED", "INCOMPLETE"):
            return str(entry["lladdr"])
    return None


def probe_gap(ping_output: bytes, interval: float) -> tuple[float, list[int]]:
    """The loss window of a ``ping -D`` probe: the longest silence between two
    consecutive replies, minus the probe interval (wall clock, from ping's own
    timestamps, so a slow sender does not shrink it)."""
    import re

    replies = [
        (float(ts), int(seq))
        for ts, seq in re.findall(rb"\[(\d+\.\d+)\] \d+ bytes from .*?icmp_seq=(\d+) ttl", ping_output)
    ]
    if len(replies) < 2:
        return float("inf"), [seq for _, seq in replies]
    times = [t for t, _ in replies]
    gap = max(b - a for a, b in zip(times, times[1:], strict=False)) - interval
    return max(gap, 0.0), [seq for _, seq in replies]


_HTTP_GET = """
import json, sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2])) as r:
        print(json.dumps({"ok": True, "status": r.status, "body": r.read().decode(errors="replace")}))
except Exception as exc:
    print(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"}))
"""


def http_get(host: Any, url: str, timeout: float = 3.0) -> dict[str, Any]:
    """Fetch ``url`` from inside ``host``: {"ok", "status", "body"} or {"ok": False, "error"}."""
    res = run(host, [sys.executable, "-c", _HTTP_GET, url, str(timeout)], check=False, timeout=timeout + 10)
    if res.returncode != 0:
        raise TrafficError(f"http client on {host.name} failed to run: {res.stderr}")
    return dict(json.loads(res.stdout.strip().splitlines()[-1]))


_UDP_ERRORS = r"""
import json, socket, struct, sys, time
dst, port, sport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ttls = [int(t) for t in sys.argv[4].split(",")]
IP_RECVERR = 11
out = []
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
if sport:
    s.bind(("0.0.0.0", sport))
s.connect((dst, port))
for ttl in ttls:
    s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
    s.send(b"edgelab-udp-error-probe")
    got = None
    deadline = time.monotonic() + 1.5
    while got is None and time.monotonic() < deadline:
        try:
            _data, anc, _flags, _addr = s.recvmsg(512, 512, socket.MSG_ERRQUEUE | socket.MSG_DONTWAIT)
        except BlockingIOError:
            time.sleep(0.01)
            continue
        for level, kind, data in anc:
            if level == socket.IPPROTO_IP and kind == IP_RECVERR:
                errno_, origin, itype, code = struct.unpack_from("=IBBB", data)
                offender = socket.inet_ntoa(data[20:24]) if len(data) >= 24 else None
                got = {"ttl": ttl, "origin": origin, "type": itype, "code": code, "from": offender}
    out.append(got or {"ttl": ttl, "type": None, "from": None})
print(json.dumps(out))
"""


def udp_errors(host: Any, dst: str, port: int, sport: int, ttls: list[int]) -> list[dict[str, Any]]:
    """One connected UDP socket in ``host`` sends a datagram per TTL in ``ttls`` to
    ``dst``:``port`` and reads the ICMP error the kernel queued for that socket (IP_RECVERR):
    [{"ttl", "type", "code", "from"}], type None where no error reached the socket.  The kernel
    hands an error to a socket only when the quoted packet is the socket's own (addresses and
    ports), so this is what the application sees, not what crossed the wire."""
    res = run(
        host,
        [sys.executable, "-c", _UDP_ERRORS, dst, str(port), str(sport), ",".join(map(str, ttls))],
        check=False,
        timeout=2 * len(ttls) + 10,
    )
    if res.returncode != 0:
        raise TrafficError(f"udp error probe on {host.name} failed to run: {res.stderr}")
    return list(json.loads(res.stdout.strip().splitlines()[-1]))
