"""AF_PACKET port: one raw socket per NIC, polled by the datapath loop.

Where this sits: under every :class:`gateway.model.Port`.  ``recv_batch``
drains up to ``limit`` frames without blocking; ``send`` writes one frame.

Why it is done this way:

- The kernel always strips a received 802.1Q tag off the frame (even with
  rx-vlan offload off) and reports it in ``PACKET_AUXDATA``; so we ask for
  auxdata and return the VLAN next to the frame.  Frames we *send* keep their
  tag inline.
- ``PACKET_IGNORE_OUTGOING`` keeps our own transmitted frames out of our
  receive queue (older kernels: we skip ``PACKET_OUTGOING`` ourselves).
- Checksum offloads on a veth produce frames whose TCP/UDP checksum is only
  partial; forwarded from userspace they arrive corrupt.  ``prepare()`` turns
  offloads off on the interface, and keeps VLAN tags inline.
- The port is put in promiscuous mode through ``PACKET_ADD_MEMBERSHIP`` (it is
  dropped automatically when the socket closes): the router MACs are ours, not
  the NIC's.
"""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess

SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_AUXDATA = 8
PACKET_IGNORE_OUTGOING = 23
PACKET_OUTGOING = 4
TP_STATUS_VLAN_VALID = 0x10
ETH_P_ALL = 0x0003
SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33
_AUX = struct.Struct("IIIHHHH")
_AUX_SPACE = socket.CMSG_SPACE(_AUX.size)
MAX_FRAME = 65535 + 18


class PortError(Exception):
    """A port that cannot be opened; the message is for the user."""


def prepare(ifname: str) -> None:
    """Bring the interface up with offloads off and no IPv6 chatter from the kernel."""
    ethtool = shutil.which("ethtool") or "/usr/sbin/ethtool"
    try:
        subprocess.run(["ip", "link", "set", ifname, "up"], check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as exc:
        raise PortError(f"cannot bring up interface {ifname!r}: {exc.stderr.strip()}") from None
    except FileNotFoundError:
        raise PortError("the 'ip' command (iproute2) is missing; install iproute2") from None
    try:
        # Unsupported features make ethtool exit non-zero although the rest applied.
        subprocess.run(
            [
                ethtool,
                "-K",
                ifname,
                "rx",
                "off",
                "tx",
                "off",
                "tso",
                "off",
                "gso",
                "off",
                "gro",
                "off",
                "rxvlan",
                "off",
                "txvlan",
                "off",
            ],
            capture_output=True,
            text=True,
        )
    except FileNotFoundError:
        raise PortError(
            "ethtool is missing; it is needed to turn checksum offloads off (apt-get install ethtool)"
        ) from None
    try:
        with open(f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6", "w") as fh:
            fh.write("1")
    except OSError:
        pass  # no IPv6 in this kernel: nothing to silence


class AfPacket:
    def __init__(self, ifname: str, rcvbuf: int = 16 << 20) -> None:
        self.ifname = ifname
        try:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            sock.bind((ifname, 0))
        except OSError as exc:
            raise PortError(f"cannot open AF_PACKET socket on {ifname!r}: {exc.strerror}") from None
        sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        try:
            sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
            self._skip_outgoing = False
        except OSError:
            self._skip_outgoing = True
        ifindex = socket.if_nametoindex(ifname)
        sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, struct.pack("iHH8s", ifindex, PACKET_MR_PROMISC, 0, b""))
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
        sock.setblocking(False)
        self.sock = sock
        self.rx_dropped = 0

    def fileno(self) -> int:
        return self.sock.fileno()

    def recv_batch(self, limit: int) -> list[tuple[bytearray, int | None]]:
        out: list[tuple[bytearray, int | None]] = []
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

    def close(self) -> None:
        self.sock.close()
