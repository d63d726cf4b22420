"""AF_PACKET port (``io: socket``): one raw socket per NIC, polled by the datapath loop.

Where this sits: under a :class:`gateway.port.Port`, an ``io.Transport``.
``recv_batch`` drains up to ``limit`` frames without blocking (one
``recvmsg`` each); ``send`` writes one frame.  The ring transports
(``blockring.py``, ``txring.py``) build on its socket set-up.

Why it is done this way:

- The kernel always strips a received 802.1Q tag off the frame (even with
  rx-vlan offload off) and reports it in ``PACKET_AUXDATA``; so we ask for
  auxdata and return the VLAN next to the frame.  Frames we *send* keep their
  tag inline.
- ``PACKET_IGNORE_OUTGOING`` keeps our own transmitted frames out of our
  receive queue (older kernels: we skip ``PACKET_OUTGOING`` ourselves).
- Checksum offloads on a veth produce frames whose TCP/UDP checksum is only
  partial; forwarded from userspace they arrive corrupt.  ``netdev.prepare``
  turns offloads off on the interface, and keeps VLAN tags inline.
- The port is put in promiscuous mode through ``PACKET_ADD_MEMBERSHIP`` (it is
  dropped automatically when the socket closes): the router MACs are ours, not
  the NIC's.
"""

from __future__ import annotations

import socket
import struct
from typing import Any, Final

from mypy_extensions import mypyc_attr

from gateway.io.netdev import PortError

SOL_PACKET: Final = 263
PACKET_ADD_MEMBERSHIP: Final = 1
PACKET_MR_PROMISC: Final = 1
PACKET_AUXDATA: Final = 8
PACKET_STATISTICS: Final = 6
PACKET_IGNORE_OUTGOING: Final = 23
PACKET_OUTGOING: Final = 4
TP_STATUS_VLAN_VALID: Final = 0x10
ETH_P_ALL: Final = 0x0003
SO_SNDBUFFORCE: Final = 32
SO_RCVBUFFORCE: Final = 33
_AUX: Final = struct.Struct("IIIHHHH")
_AUX_SPACE: Final = socket.CMSG_SPACE(_AUX.size)
MAX_FRAME: Final = 65535 + 18


# Compiled (native.py); interpreted subclasses allowed: the ring tests stand models of the kernel in this way.
@mypyc_attr(allow_interpreted_subclasses=True)
class AfPacket:
    poll_interval: float | None = None  # read when epoll says so

    def __init__(self, ifname: str, rcvbuf: int = 16 << 20, receive: bool = True) -> None:
        self.ifname = ifname
        self.receive = receive  # False: a transmit-only socket, bound to receive nothing
        try:
            # Protocol 0: no frame is queued until the socket is set up and bound
            # (a frame queued before a ring exists would sit in the socket forever).
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            ifindex = socket.if_nametoindex(ifname)
        except OSError as exc:
            raise PortError(f"cannot open AF_PACKET socket on {ifname!r}: {exc.strerror}") from None
        sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        try:
            sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
            self._skip_outgoing = False
        except OSError:
            self._skip_outgoing = True
        # Bigger buffers absorb bursts and scheduling hiccups of a userspace datapath.
        # The *FORCE variants pass net.core.rmem_max (root may); else fall back.
        for force, plain in ((SO_RCVBUFFORCE, socket.SO_RCVBUF), (SO_SNDBUFFORCE, socket.SO_SNDBUF)):
            try:
                sock.setsockopt(socket.SOL_SOCKET, force, rcvbuf)
            except OSError:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, plain, rcvbuf)
                except OSError:
                    pass
        # A socket.socket; declared Any, so that the ring tests' model of the kernel can stand in.
        self.sock: Any = sock
        self.rx_dropped = 0
        self.setup(sock)
        try:
            sock.bind((ifname, ETH_P_ALL if receive else 0))
        except OSError as exc:
            sock.close()
            raise PortError(f"cannot bind AF_PACKET socket to {ifname!r}: {exc.strerror}") from None
        if receive:
            sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, struct.pack("iHH8s", ifindex, PACKET_MR_PROMISC, 0, b""))
        sock.setblocking(False)

    def setup(self, sock: socket.socket) -> None:
        """Options that must be in place before the socket sees its first frame."""

    def fileno(self) -> int:
        return self.sock.fileno()

    def filenos(self) -> tuple[int, ...]:
        return (self.fileno(),)

    def take_error(self) -> int:
        """The socket's pending error (0 if none); reading it clears it."""
        try:
            return self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        except OSError as exc:
            return exc.errno or 0

    def kernel_drops(self) -> int:
        """Frames the kernel dropped because we did not read them in time (PACKET_STATISTICS).

        Reading the statistics resets them in the kernel, so they are accumulated here.
        """
        try:
            raw = self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
        except OSError:
            return self.rx_dropped
        _packets, drops = struct.unpack("II", raw)
        self.rx_dropped += drops
        return self.rx_dropped

    def counters(self) -> dict[str, int]:
        return {"rx_dropped": self.kernel_drops(), "tx_dropped": 0, "rx_resyncs": 0}

    def recv_batch(self, limit: int, readable: bool = True) -> list[tuple[bytearray, int | None]]:
        out: list[tuple[bytearray, int | None]] = []
        if not readable:
            return out
        recvmsg = self.sock.recvmsg
        for _ in range(limit):
            try:
                data, ancdata, _flags, addr = recvmsg(MAX_FRAME, _AUX_SPACE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.rx_dropped += 1
                break
            if self._skip_outgoing and addr[2] == PACKET_OUTGOING:
                continue
            vlan = None
            for level, kind, cdata in ancdata:
                if level == SOL_PACKET and kind == PACKET_AUXDATA and len(cdata) >= _AUX.size:
                    status, _len, _snap, _mac, _net, tci, _tpid = _AUX.unpack_from(cdata)
                    if status & TP_STATUS_VLAN_VALID:
                        vlan = (tci & 0x0FFF) or None  # VID 0: priority tag only
            out.append((bytearray(data), vlan))
        return out

    def send(self, frame: bytes | bytearray) -> None:
        self.sock.send(frame)

    def flush(self) -> None:
        """Frames are sent as they come: nothing is queued."""

    def close(self) -> None:
        self.sock.close()
