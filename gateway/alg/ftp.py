"""The FTP ALG (RFC 959, RFC 2428), a data-plane service of the gateway.

    python -m gateway.alg.ftp --config FILE --service NAME     (started by the daemon)

Where this sits: connected to the service transport, it gets every segment
with payload of the FTP control connections the SR carries (TCP port 21 on
the server's side), as the SR left them: translated, the payload as the
sender wrote it.  It looks for the four lines that announce a data
connection:

- from the client: ``PORT h1,h2,h3,h4,p1,p2`` and ``EPRT |1|addr|port|``
  (active mode: the server shall connect to the client);
- from the server: ``227 ... (h1,h2,h3,h4,p1,p2)`` and ``229 ... (|||port|)``
  (passive mode: the client shall connect to the server).

For each it asks the datapath (EXPECT) what to write instead: the SR checks
that the address is the sender's own (``229`` names none: the sender's),
reserves a public port when the sender is translated and expects the data
connection.  The line is rewritten with the answer and the segment resumes at
``sr``; the datapath carries the length change for the rest of the
connection.  A segment announcing nothing returns as it came.

Refused, each with its reason as the DROP verdict: a segment that is not
TCP/IPv4 (``not-tcp``); an announcing line with numbers out of range or
unreadable (``bad-port-command``, ``bad-passive-reply``); one longer than
:data:`MAX_LINE` (``line-too-long``); a segment ending in the first part of
an announcing line (``partial-command``: the sender retransmits, usually the
whole line in one segment); whatever the SR refuses of the announcement
(``not-senders-address``, ``privileged-port``, ``no-free-port``,
``connection-gone``).
"""

from __future__ import annotations

import re
import sys

from gateway import config
from gateway.headers import IPPROTO_TCP, checksum, pseudo_header
from gateway.io.service import (
    ENDPOINT,
    EXPECT,
    EXPECT_REFUSED,
    EXPECTED,
    HEADER,
    NO_VLAN,
    PUNT,
    REPLY_DIRECTION,
    RESUME,
    VERSION,
)
from gateway.io.service_process import ServiceProcess

MAX_LINE = 512  # an announcing line longer than this is refused
_SIX = rb"(\d{1,3}) *, *(\d{1,3}) *, *(\d{1,3}) *, *(\d{1,3}) *, *(\d{1,3}) *, *(\d{1,3})"
PORT_RE = re.compile(rb"^PORT +" + _SIX, re.I)
EPRT_RE = re.compile(rb"^EPRT +(.)(\d)\1([^\r\n]*?)\1(\d{1,5})\1", re.I)
PASV_RE = re.compile(rb"^227[ -][^\r\n(]*\(? *" + _SIX)
EPSV_RE = re.compile(rb"^229[ -][^\r\n(]*\((.)\1\1(\d{1,5})\1\)")
PREFIXES = ((b"PORT", b"EPRT"), (b"227", b"229"))  # per direction: client, server


class Refused(ValueError):
    pass


class Endpoint:
    """One announcing line found in a payload: where, which form, what it names."""

    def __init__(self, start: int, end: int, form: str, addr: int, port: int, text: bytes) -> None:
        self.start, self.end, self.form = start, end, form  # the match within the payload
        self.addr, self.port = addr, port  # addr 0: none named (229)
        self.text = text


def _six(groups: tuple[bytes, ...], reason: str) -> tuple[int, int]:
    nums = [int(g) for g in groups]
    if any(n > 255 for n in nums):
        raise Refused(reason)
    return int.from_bytes(bytes(nums[:4]), "big"), nums[4] << 8 | nums[5]


def find(payload: bytes, from_server: bool) -> list[Endpoint]:
    """The announcing lines of ``payload`` (refused: malformed, too long, cut short)."""
    found: list[Endpoint] = []
    prefixes = PREFIXES[from_server]
    at = 0
    for line in payload.split(b"\n"):
        start, at = at, at + len(line) + 1
        head = line[:4].upper()
        if at > len(payload):  # the segment ends inside this line (or right after a newline)
            if line and any(p.startswith(head) or head.startswith(p) for p in prefixes):
                raise Refused("partial-command")  # it may be the first part of an announcing line
            continue
        if not any(head.startswith(p) for p in prefixes):
            continue
        if len(line) > MAX_LINE:
            raise Refused("line-too-long")
        found.extend(_parse(line, start, from_server))
    return found


def _parse(line: bytes, start: int, from_server: bool) -> list[Endpoint]:
    if not from_server:
        m = PORT_RE.match(line)
        if m is not None:
            addr, port = _six(m.groups(), "bad-port-command")
            return [Endpoint(start + m.start(1), start + m.end(6), "port", addr, port, line)]
        m = EPRT_RE.match(line)
        if m is not None:
            if m.group(2) != b"1":
                return []  # not IPv4: nothing an IPv4 NAT translates
            try:
                parts = [int(x) for x in m.group(3).split(b".")]
            except ValueError:
                raise Refused("bad-port-command") from None
            port = int(m.group(4))
            if len(parts) != 4 or any(p > 255 for p in parts) or port > 65535:
                raise Refused("bad-port-command")
            return [
                Endpoint(start + m.start(1), start + m.end(0), "eprt", int.from_bytes(bytes(parts), "big"), port, line)
            ]
        if line[:4].upper() in (b"PORT", b"EPRT"):
            raise Refused("bad-port-command")
        return []
    m = PASV_RE.match(line)
    if m is not None:
        addr, port = _six(m.groups(), "bad-passive-reply")
        return [Endpoint(start + m.start(1), start + m.end(6), "pasv", addr, port, line)]
    m = EPSV_RE.match(line)
    if m is not None:
        port = int(m.group(2))
        if port > 65535:
            raise Refused("bad-passive-reply")
        return [Endpoint(start + m.start(0) + line[m.start(0) :].index(b"("), start + m.end(0), "epsv", 0, port, line)]
    if line[:3] in (b"227", b"229"):
        raise Refused("bad-passive-reply")
    return []


def render(form: str, addr: int, port: int) -> bytes:
    """An endpoint written back in the form it was read."""
    a = addr.to_bytes(4, "big")
    if form in ("port", "pasv"):
        return b"%d,%d,%d,%d,%d,%d" % (a[0], a[1], a[2], a[3], port >> 8, port & 0xFF)
    if form == "eprt":
        return b"|1|%d.%d.%d.%d|%d|" % (a[0], a[1], a[2], a[3], port)
    return b"(|||%d|)" % port


def rebuild(ip: bytes, payload: bytes) -> bytes:
    """The IPv4/TCP packet ``ip`` with ``payload`` instead of its own, lengths and checksums anew."""
    ihl = (ip[0] & 0x0F) * 4
    thl = (ip[ihl + 12] >> 4) * 4
    out = bytearray(ip[: ihl + thl]) + payload
    out[2:4] = len(out).to_bytes(2, "big")
    out[10:12] = b"\x00\x00"
    out[10:12] = checksum(out[:ihl]).to_bytes(2, "big")
    out[ihl + 16 : ihl + 18] = b"\x00\x00"
    tcp_sum = checksum(pseudo_header(bytes(out[12:16]), bytes(out[16:20]), IPPROTO_TCP, len(out) - ihl) + out[ihl:])
    out[ihl + 16 : ihl + 18] = tcp_sum.to_bytes(2, "big")
    return bytes(out)


class FtpAlg(ServiceProcess):
    """FTP application-level gateway"""

    kind = "ftp-alg"

    def __init__(self, cfg: config.Config, service: str) -> None:
        super().__init__(cfg, service)
        self.ports = [port for _proto, port in self.service.punts]
        self.counts = {"segments": 0, "rewritten": 0, "refused": 0}

    def start_event(self) -> dict[str, object]:
        return {**super().start_event(), "ports": self.ports}

    def handle(self, data: bytes) -> bytes:
        """One punted segment -> the message to answer it with (RESUME or DROP)."""
        _v, _kind, flags, seq, _stage, _inst, _port, _vlan, router_i = HEADER.unpack_from(data)
        ip = data[HEADER.size :]
        self.counts["segments"] += 1
        try:
            if len(ip) < 40 or ip[0] >> 4 != 4 or ip[9] != IPPROTO_TCP:
                raise Refused("not-tcp")
            ihl = (ip[0] & 0x0F) * 4
            body = ihl + (ip[ihl + 12] >> 4) * 4
            if body > len(ip):
                raise Refused("not-tcp")
            payload = ip[body:]
            out = bytearray()
            last = 0
            for ep in find(payload, bool(flags & REPLY_DIRECTION)):
                addr, port = self.expect(seq, ep.addr, ep.port)
                out += payload[last : ep.start] + render(ep.form, addr, port)
                last = ep.end
            if last:
                out += payload[last:]
                self.counts["rewritten"] += 1
                ip = rebuild(ip, bytes(out))
        except Refused as exc:
            self.counts["refused"] += 1
            return self.drop(seq, str(exc))
        stage = self.names["stages"].index("sr")
        return HEADER.pack(VERSION, RESUME, 0, seq, stage, 0, 0, NO_VLAN, router_i) + ip

    def expect(self, seq: int, addr: int, port: int) -> tuple[int, int]:
        """Ask the datapath what to write for (``addr``, ``port``) announced in punt ``seq``."""
        assert self.sock is not None
        self.sock.send(
            HEADER.pack(VERSION, EXPECT, 0, seq, 0, 0, 0, NO_VLAN, 0) + ENDPOINT.pack(addr.to_bytes(4, "big"), port)
        )
        while True:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the datapath closed the service socket")
            if len(data) < HEADER.size:
                continue
            _v, kind, flags, got_seq, *_ = HEADER.unpack_from(data)
            if kind != EXPECTED or got_seq != seq:
                if kind == PUNT:
                    self.queue.append(data)
                continue
            if flags & EXPECT_REFUSED:
                raise Refused(data[HEADER.size :].decode(errors="replace") or "refused")
            got, gport = ENDPOINT.unpack_from(data, HEADER.size)
            return int.from_bytes(got, "big"), gport


if __name__ == "__main__":
    sys.exit(FtpAlg.main())
