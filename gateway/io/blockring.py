"""The default port transport (``io: block``): TPACKET_V3 receive blocks, a V2 transmit ring.

Where this sits: under a :class:`gateway.port.Port`, an ``io.Transport``.
The kernel writes received frames (and their VLAN tags) into shared memory
that the datapath reads without a system call, a whole block at a time;
outgoing frames go through ``txring.TxRing``, one ``send`` per batch.  A
quiet port is read frame by frame instead (``fanout.py``): a block waits for
the kernel's timeout before it is handed over, and that wait is the latency a
quiet network would see.
"""

from __future__ import annotations

import socket
import struct
import sys
import time
from typing import Any, Final

from mypy_extensions import mypyc_attr

from gateway.io import fanout
from gateway.io.afpacket import SOL_PACKET, TP_STATUS_VLAN_VALID, AfPacket
from gateway.io.netdev import PortError
from gateway.io.txring import PACKET_VERSION, TxRing

PACKET_RX_RING: Final = 5
TP_STATUS_KERNEL: Final = 0
TP_STATUS_USER: Final = 1
_U32: Final = struct.Struct("I")
_LOW: Final = 0 if sys.byteorder == "little" else 3  # where a native u32's low byte is
TPACKET_V3: Final = 2
_BLK_STATUS: Final = 8  # tpacket_block_desc.hdr.bh1.block_status
_BLK_NUM: Final = 12  # ... num_pkts
_BLK_FIRST: Final = 16  # ... offset_to_first_pkt
_T3: Final = struct.Struct("IIIIIIHHIIH")  # tpacket3_hdr up to tp_vlan_tpid
WINDOW: Final = 0.01  # the receive rate is judged over windows of this many seconds
TO_BLOCKS: Final = 80  # frames in one window (8,000/s) that move a port to blocks
TO_FRAMES: Final = 40  # at most this many in each of QUIET_WINDOWS windows (4,000/s): back to frames
ONE_BY_ONE: Final = 4  # the first frames of a window are read one per call
BEHIND: Final = 32  # a read of the socket that brings this many, all it asked for: to blocks at once
QUIET_WINDOWS: Final = 10
SETTLE: Final = 0.005  # after a switch to frames, wait at most this long for the open block


RING_BYTES: Final = 16 << 20  # the receive ring, whatever its blocks' size
_SIOCGIFMTU: Final = 0x8921
_FRAME_ROOM: Final = 18 + 128  # beyond the MTU: Ethernet header and a VLAN tag; the ring's own header, aligned


def size_blocks(ifname: str) -> int:
    """The smallest receive block (a power of two, a page at least) that holds the largest frame
    ``ifname`` can receive: its MTU, an Ethernet header and a VLAN tag, and the ring's header.
    (A frame that would not fit is cut short by the kernel and dropped here: ``rx_truncated``.)"""
    import fcntl

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            req = fcntl.ioctl(sock, _SIOCGIFMTU, struct.pack("16si12x", ifname.encode()[:15], 0))
            mtu = struct.unpack_from("i", req, 16)[0]
        except OSError:
            mtu = 9000  # unknown: room for a jumbo frame
    size = 4096
    while size < mtu + _FRAME_ROOM:
        size *= 2
    return size


class _Muted(AfPacket):
    """The frame-by-frame socket: receives nothing of its own until it joins the group."""

    def setup(self, sock: socket.socket) -> None:
        fanout.mute(sock)


# Compiled (native.py); the ring tests subclass it with a model of the kernel in place of the socket.
@mypyc_attr(allow_interpreted_subclasses=True)
class BlockRingPort(AfPacket):
    """Receive through a TPACKET_V3 ring (whole blocks handed over at once), transmit
    through a TPACKET_V2 ring on a second, receive-nothing socket.

    Blocks are owned by one side at a time, so the reader can never wait on a slot
    the kernel skipped; a block is handed over when full or after ``retire_ms``.

    The default (``io: block``).  The ring is :data:`RING_BYTES` (16 MiB, some
    115k 64-byte frames) of the smallest blocks that hold the largest frame
    the interface can receive (:func:`size_blocks`: 4 KiB, some 28 small
    frames, up to an MTU of 3,950; 16 KiB for 9,000).  Small blocks because a
    block is handed over when full or after the kernel's timeout (1 ms at the
    least): with 64 KiB blocks (455 small frames) every frame below 455 kpps
    waited for the timeout, and a ping beside 65 kpps of paced traffic took
    0.66-0.86 ms through the gateway; with 4 KiB blocks 0.41-0.51 ms, with the
    no-loss rate unchanged (``edgelab bench forwarding``'s paced load, three
    runs each, 2026-12-05).  The ring's size is for bursts: with 64 blocks of
    64 KiB it overflowed at 20-50 kpps of trafgen's bursty load while the
    daemon idled.  The loop also reads the ring at least every
    ``poll_interval`` instead of relying on epoll alone (see ``loop.py``).

    Quiet and busy: frames go to a plain socket (``quiet``, one ``recvmsg``
    each, read as soon as epoll says so) while fewer than ``TO_BLOCKS`` arrive
    in a ``WINDOW`` (8,000/s) and the socket keeps up (a read that brings
    ``BEHIND`` frames, all it asked for, moves the port at once), and to the
    blocks above that, until ``QUIET_WINDOWS`` windows in a row bring
    ``TO_FRAMES`` or fewer (4,000/s).  The frame-by-frame side waits for no
    block, but costs a system call a frame: with the switch back at 400/s, as
    it was, a port that a burst had moved to blocks stayed there at 1,300/s,
    and a ping beside that load took 0.37-0.78 ms instead of 0.04-0.05; with
    the switch to blocks at 40,000/s, new connections (two frames each, 25 µs
    a frame) were read frame by frame at 20,000-30,000/s, and the rate
    sustained fell from 13.8k to 11.2k connections/s (``edgelab bench
    connections``, paced, 2026-12-05).  The kernel sends each
    frame to one of the two (a fanout group), so a switch loses and repeats
    nothing; and order is kept across it: after a switch to blocks the
    socket's queue is read first, after a switch to frames the blocks are (the
    block the kernel is filling is waited for, up to ``SETTLE``).  Without
    fanout in the kernel the port reads blocks only.
    """

    poll_interval: float | None = 0.001

    def __init__(self, ifname: str, block_size: int | None = None, retire_ms: int = 1, adaptive: bool = True) -> None:
        self._block_size = block_size or size_blocks(ifname)
        self._blocks = RING_BYTES // self._block_size
        self._retire_ms = retire_ms
        super().__init__(ifname)
        self.blk = 0
        self.rx_truncated = 0
        self.rx_resyncs = 0  # blocks the kernel passed by (see _passed_by)
        self.rx_by_frame = 0  # frames read one by one from the quiet socket
        self.rx_switches = 0  # between frames and blocks, either way
        self.quiet: AfPacket | None = None
        self.on_blocks = True
        self._window_end = 0.0
        self._window_n = 0
        self._quiet_windows = 0
        self._settle_until = 0.0
        if adaptive:
            self._join_quiet(ifname)
        # TX: a second, transmit-only socket with a V2 ring.
        self.tx = TxRing(ifname, frames=4096)

    def send(self, frame: bytes | bytearray) -> None:
        self.tx.send(frame)

    def flush(self) -> None:
        self.tx.flush()

    def _join_quiet(self, ifname: str) -> None:
        try:
            quiet = _Muted(ifname)
        except (PortError, OSError):
            return
        try:
            fanout.join(self.sock, quiet.sock)
            fanout.choose(self.sock, 1)
        except OSError:
            quiet.close()  # this kernel has no fanout (or not these flags): blocks only
            return
        self.quiet = quiet
        self.on_blocks = False

    def filenos(self) -> tuple[int, ...]:
        # A retired block and a frame on the quiet socket both wake the loop.
        return (self.sock.fileno(),) if self.quiet is None else (self.sock.fileno(), self.quiet.fileno())

    def take_error(self) -> int:
        err = self.quiet.take_error() if self.quiet is not None else 0
        return super().take_error() or err

    def kernel_drops(self) -> int:
        quiet = self.quiet.kernel_drops() if self.quiet is not None else 0
        return super().kernel_drops() + quiet

    def recv_batch(self, limit: int, readable: bool = True) -> list[tuple[bytearray, int | None]]:
        """``readable=False``: the quiet socket is not read (an empty read is a system call
        and an exception; epoll reports the socket when it has a frame).  While the window
        has brought fewer than ``ONE_BY_ONE`` frames, one frame is read per call: a second
        read would almost always come back empty, and epoll reports the socket again at
        once while it holds more.  Past that, as many as there are: the window counts the
        frames read, and a burst must be judged one within the window it came in."""
        quiet = self.quiet
        if quiet is None:
            return self._blocks_batch(limit)
        if self.on_blocks:
            # What came before the switch (and stragglers) first.
            out = quiet.recv_batch(limit) if readable else []
            if len(out) < limit:
                out += self._blocks_batch(limit - len(out))
        else:
            out = self._blocks_batch(limit)  # what the blocks took before the switch first
            if len(out) < limit and readable and not self._block_open():
                want = 1 if self._window_n < ONE_BY_ONE else limit - len(out)
                got = quiet.recv_batch(want)
                self.rx_by_frame += len(got)
                out += got
                if want >= BEHIND and len(got) == want:
                    self._switch(True)  # the socket holds more than a read: the frame side is behind
        self._judge(len(out))
        return out

    def _judge(self, n: int) -> None:
        """Count received frames per window; switch between frames and blocks on the rate."""
        self._window_n += n
        now = time.monotonic()
        if now < self._window_end:
            return
        n, self._window_n, self._window_end = self._window_n, 0, now + WINDOW
        if not self.on_blocks:
            if n >= TO_BLOCKS:
                self._switch(True)
            return
        self._quiet_windows = self._quiet_windows + 1 if n <= TO_FRAMES else 0
        if self._quiet_windows >= QUIET_WINDOWS:
            self._switch(False)
            self._settle_until = now + SETTLE

    def _switch(self, blocks: bool) -> None:
        try:
            fanout.choose(self.sock, 0 if blocks else 1)
        except OSError:
            return  # stays as it is; tried again next window
        self.on_blocks = blocks
        self._quiet_windows = 0
        self.rx_switches += 1

    def _block_open(self) -> bool:
        """Whether the kernel is filling the block the reader waits at (frames that came
        before a switch to frames), for at most ``SETTLE`` after the switch.  Blocks are
        given back with a zero count, so a count there is the kernel's since."""
        if time.monotonic() >= self._settle_until:
            return False
        return _U32.unpack_from(self.mm, self.blk * self._block_size + _BLK_NUM)[0] > 0

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
            # The ring's memory (an mmap; declared Any: the ring tests hand it a bytearray).
            self.mm: Any = mmap.mmap(
                sock.fileno(), self._block_size * self._blocks, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE
            )
        except OSError as exc:
            sock.close()
            raise PortError(f"cannot set up a TPACKET_V3 ring on {self.ifname!r}: {exc.strerror}") from None

    def _blocks_batch(self, limit: int) -> list[tuple[bytearray, int | None]]:
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
            _U32.pack_into(mm, base + _BLK_NUM, 0)  # see _block_open
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

    def counters(self) -> dict[str, int]:
        return {
            "rx_dropped": self.kernel_drops(),
            "tx_dropped": self.tx.tx_dropped,
            "rx_resyncs": self.rx_resyncs,
            "rx_by_frame": self.rx_by_frame,
            "rx_switches": self.rx_switches,
            "rx_truncated": self.rx_truncated,
        }

    def close(self) -> None:
        try:
            self.mm.close()
            self.tx.close()
            if self.quiet is not None:
                self.quiet.close()
        finally:
            super().close()
