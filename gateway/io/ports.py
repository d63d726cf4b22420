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
import sys

SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_AUXDATA = 8
PACKET_STATISTICS = 6
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
        self.sock = sock
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

    def flush(self) -> None:
        """Frames are sent as they come: nothing is queued."""

    def close(self) -> None:
        self.sock.close()


# -- PACKET_MMAP rings -------------------------------------------------------------------
PACKET_RX_RING = 5
PACKET_VERSION = 10
PACKET_TX_RING = 13
TPACKET_V2 = 1
TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1
TP_STATUS_AVAILABLE = 0
TP_STATUS_SEND_REQUEST = 1
TP_STATUS_SENDING = 2
TP_STATUS_WRONG_FORMAT = 4
_T2HDR = struct.Struct("IIIHHIIHH")  # tpacket2_hdr without its padding
_U32 = struct.Struct("I")
_STATUS_LEN = struct.Struct("II")  # tp_status, tp_len: the head of a tpacket2_hdr
_LOW = 0 if sys.byteorder == "little" else 3  # where a native u32's low byte is
_TX_DATA = 32  # TPACKET_ALIGN(sizeof(struct tpacket2_hdr)): where a TX frame's data starts


class RingPort(AfPacket):
    """An AF_PACKET port with TPACKET_V2 receive and transmit rings (PACKET_MMAP).

    As a receive ring (``io: ring``) it is experimental: the reader was seen
    waiting on a slot the kernel had left at status 0 while the slots after
    it were full (TP_STATUS_USER|LOSING), i.e. out of step with the kernel's
    head; not understood, so ``io: block`` receives through TPACKET_V3
    blocks instead and uses this class for its transmit ring only.

    Why: with a plain socket every frame costs one ``recvmsg`` and one
    ``send``; the system calls, not the Python, dominate a cached packet.
    With rings the kernel writes received frames (and their VLAN tags) into
    shared memory that we read without a system call, and we queue outgoing
    frames in shared memory and hand them all over with one ``send`` per
    batch (:meth:`flush`).
    """

    poll_interval = 0.001  # the loop reads the ring at least this often (see Datapath.run)

    def __init__(self, ifname: str, frame_size: int = 2048, frames: int = 8192, receive: bool = True) -> None:
        self.frame_size = frame_size
        self._frames_wanted = frames
        super().__init__(ifname, receive=receive)
        self.rx_i = 0
        self.tx_i = 0
        self.tx_pending = 0
        self.tx_bytes = 0
        self.rx_truncated = 0
        self.tx_ring_full = 0
        self.tx_dropped = 0  # queued frames the kernel did not take (see flush)

    def setup(self, sock: socket.socket) -> None:
        import mmap

        block = 1 << 16
        per_block = block // self.frame_size
        blocks = max(1, self._frames_wanted // per_block)
        try:
            sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V2)
            req = struct.pack("IIII", block, blocks, self.frame_size, blocks * per_block)
            if self.receive:
                sock.setsockopt(SOL_PACKET, PACKET_RX_RING, req)
            sock.setsockopt(SOL_PACKET, PACKET_TX_RING, req)
            size = block * blocks
            rings = 2 if self.receive else 1  # the kernel maps the RX ring first
            self.mm = mmap.mmap(sock.fileno(), rings * size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except OSError as exc:
            sock.close()
            raise PortError(f"cannot set up PACKET_MMAP rings on {self.ifname!r}: {exc.strerror}") from None
        self.nframes = blocks * per_block
        self.tx_base = size if self.receive else 0

    def recv_batch(self, limit: int) -> list[tuple[bytearray, int | None]]:
        mm = self.mm
        fs = self.frame_size
        n = self.nframes
        i = self.rx_i
        out: list[tuple[bytearray, int | None]] = []
        unpack = _T2HDR.unpack_from
        for _ in range(limit):
            off = i * fs
            status, length, snaplen, mac, _net, _sec, _nsec, tci, _tpid = unpack(mm, off)
            if not status & TP_STATUS_USER:
                break
            if snaplen < length:
                self.rx_truncated += 1  # larger than a ring frame: dropped, counted
            else:
                vlan = ((tci & 0x0FFF) or None) if status & TP_STATUS_VLAN_VALID else None
                out.append((bytearray(mm[off + mac : off + mac + snaplen]), vlan))
            _U32.pack_into(mm, off, TP_STATUS_KERNEL)
            i = i + 1 if i + 1 < n else 0
        self.rx_i = i
        return out

    def send(self, frame: bytes | bytearray) -> None:
        mm = self.mm
        off = self.tx_base + self.tx_i * self.frame_size
        # The status flags that matter sit in the low byte of the u32 tp_status.
        if mm[off + _LOW] & (TP_STATUS_SEND_REQUEST | TP_STATUS_SENDING):
            self.flush()
            if mm[off + _LOW] & (TP_STATUS_SEND_REQUEST | TP_STATUS_SENDING):
                self.tx_ring_full += 1
                raise OSError("transmit ring full")
        n = len(frame)
        if n > self.frame_size - _TX_DATA:
            raise OSError(f"frame of {n} bytes does not fit a ring slot")
        mm[off + _TX_DATA : off + _TX_DATA + n] = frame
        # tp_status and tp_len in one write: the kernel reads a transmit slot only
        # inside our own send() (flush), never while we fill it.
        _STATUS_LEN.pack_into(mm, off, TP_STATUS_SEND_REQUEST, n)
        self.tx_i = self.tx_i + 1 if self.tx_i + 1 < self.nframes else 0
        self.tx_pending += 1
        self.tx_bytes += n

    def flush(self) -> None:
        """Hand every queued frame to the kernel with one system call.

        The kernel sends from its own head slot on while slots say
        SEND_REQUEST, and reports the bytes of the frames it moved past.  When
        a frame fails (a full peer queue: ENOBUFS; no buffer: EAGAIN; the link
        down: ENETDOWN) the kernel marks that slot available *without* moving
        its head past it; from then on it would find no request at its head
        and send nothing until we happened to fill that very slot again, a
        whole ring later (seen: seconds of silence, then a burst of stale
        frames).  So after every flush that did not take all we queued, we
        find where the kernel stopped, drop what it did not send (counted in
        ``tx_dropped``) and queue the next frame at its head.
        """
        pending, queued = self.tx_pending, self.tx_bytes
        if not pending:
            return
        self.tx_pending = self.tx_bytes = 0
        try:
            sent = self.sock.send(b"")
        except (BlockingIOError, InterruptedError):
            sent = 0  # nothing was taken (the head frame may have been dropped)
        except OSError:
            self._resync(pending, self._head_after_error(pending))
            return
        if sent != queued:
            self._resync(pending, self._head_after(pending, sent))

    def _slot(self, i: int) -> int:
        return self.tx_base + (i % self.nframes) * self.frame_size

    def _head_after(self, pending: int, sent: int) -> int:
        """The kernel's head after it reported ``sent`` bytes: past the frames they cover."""
        i = self.tx_i - pending
        for _ in range(pending):
            n = _U32.unpack_from(self.mm, self._slot(i) + 4)[0]  # tp_len
            if n > sent:
                break
            sent -= n
            i += 1
        return i

    def _head_after_error(self, pending: int) -> int:
        """The kernel's head after an error: on the slot before the first frame still
        requested, or on the first queued slot if it touched none (the link was down)."""
        start = self.tx_i - pending
        for k in range(pending):
            if _U32.unpack_from(self.mm, self._slot(start + k))[0] == TP_STATUS_SEND_REQUEST:
                return start + k - 1 if k else start
        return self.tx_i - 1  # the last frame failed

    def _resync(self, pending: int, head: int) -> None:
        """Drop the queued frames from ``head`` on and queue the next frame there."""
        mm = self.mm
        dropped = 0
        for i in range(head, self.tx_i):  # head <= tx_i: neither is reduced modulo the ring yet
            off = self._slot(i)
            if mm[off + _LOW] & (TP_STATUS_SEND_REQUEST | TP_STATUS_WRONG_FORMAT):
                _U32.pack_into(mm, off, TP_STATUS_AVAILABLE)
            dropped += 1
        self.tx_dropped += dropped
        self.tx_i = head % self.nframes

    def close(self) -> None:
        try:
            self.mm.close()
        finally:
            super().close()


TPACKET_V3 = 2
_BLK_STATUS = 8  # tpacket_block_desc.hdr.bh1.block_status
_BLK_NUM = 12  # ... num_pkts
_BLK_FIRST = 16  # ... offset_to_first_pkt
_T3 = struct.Struct("IIIIIIHHIIH")  # tpacket3_hdr up to tp_vlan_tpid


class BlockRingPort(AfPacket):
    """Receive through a TPACKET_V3 ring (whole blocks handed over at once), transmit
    through a TPACKET_V2 ring on a second, receive-nothing socket.

    Blocks are owned by one side at a time, so the reader can never wait on a slot
    the kernel skipped; a block is handed over when full or after ``retire_ms``.

    The default (``io: block``).  Sized for bursts: paced traffic (trafgen)
    arrives in bursts of a few hundred frames, and the kernel retires a block
    after each burst (``retire_ms``), so the ring holds as many bursts as it
    has blocks; with 64 blocks it overflowed at 20-50 kpps while the daemon
    idled, with 256 blocks of 64 KiB (16 MiB, ~115k 64-byte frames) it does
    not.  The loop also reads the ring at least every ``poll_interval``
    instead of relying on epoll alone (see ``Datapath.run``).
    """

    poll_interval = 0.001

    def __init__(self, ifname: str, block_size: int = 1 << 16, blocks: int = 256, retire_ms: int = 1) -> None:
        self._block_size = block_size
        self._blocks = blocks
        self._retire_ms = retire_ms
        super().__init__(ifname)
        self.blk = 0
        self.rx_truncated = 0
        self.rx_resyncs = 0  # blocks the kernel passed by (see _passed_by)
        # TX: a second, transmit-only socket with a V2 ring.
        self.tx = RingPort(ifname, frames=4096, receive=False)
        self.send = self.tx.send  # type: ignore[method-assign]
        self.flush = self.tx.flush  # type: ignore[method-assign]

    def setup(self, sock: socket.socket) -> None:
        import mmap

        try:
            sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
            frame = 2048
            req = struct.pack(
                "IIIIIII",
                self._block_size,
                self._blocks,
                frame,
                self._block_size // frame * self._blocks,
                self._retire_ms,
                0,
                0,
            )
            sock.setsockopt(SOL_PACKET, PACKET_RX_RING, req)
            self.mm = mmap.mmap(
                sock.fileno(), self._block_size * self._blocks, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE
            )
        except OSError as exc:
            sock.close()
            raise PortError(f"cannot set up a TPACKET_V3 ring on {self.ifname!r}: {exc.strerror}") from None

    def recv_batch(self, limit: int) -> list[tuple[bytearray, int | None]]:
        mm = self.mm
        bs = self._block_size
        out: list[tuple[bytearray, int | None]] = []
        unpack = _T3.unpack_from
        while len(out) < limit:
            base = self.blk * bs
            if not mm[base + _BLK_STATUS + _LOW] & TP_STATUS_USER:
                if not self._passed_by(base):
                    break
                self.rx_resyncs += 1
                self.blk = self.blk + 1 if self.blk + 1 < self._blocks else 0
                continue
            num = _U32.unpack_from(mm, base + _BLK_NUM)[0]
            off = base + _U32.unpack_from(mm, base + _BLK_FIRST)[0]
            for _ in range(num):
                nxt, _s, _ns, snaplen, length, status, mac, _net, _hash, tci, _tpid = unpack(mm, off)
                if snaplen < length:
                    self.rx_truncated += 1
                else:
                    vlan = ((tci & 0x0FFF) or None) if status & TP_STATUS_VLAN_VALID else None
                    out.append((bytearray(mm[off + mac : off + mac + snaplen]), vlan))
                off += nxt
            _U32.pack_into(mm, base + _BLK_STATUS, TP_STATUS_KERNEL)
            self.blk = self.blk + 1 if self.blk + 1 < self._blocks else 0
        return out

    def _passed_by(self, base: int) -> bool:
        """Whether the kernel went past the block at ``base`` without handing it over.

        The kernel hands blocks over in ring order, so the next block being ours
        while this one is not means this one was passed by.  Seen on this kernel
        (6.18): the reader then waited at that block for a whole lap of the ring
        (seconds at low rates) and some 50k frames came out late in one burst.
        This block's status is read again after the next one's: had the kernel
        closed this one while we looked at the next, we would see it now.
        """
        mm = self.mm
        nxt = (self.blk + 1 if self.blk + 1 < self._blocks else 0) * self._block_size
        return bool(mm[nxt + _BLK_STATUS + _LOW] & TP_STATUS_USER) and not (
            mm[base + _BLK_STATUS + _LOW] & TP_STATUS_USER
        )

    @property
    def tx_dropped(self) -> int:
        return self.tx.tx_dropped

    def close(self) -> None:
        try:
            self.mm.close()
            self.tx.close()
        finally:
            super().close()
