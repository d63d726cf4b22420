"""A TPACKET_V2 transmit ring (PACKET_MMAP) on a transmit-only AF_PACKET socket.

Where this sits: the transmit half of ``blockring.BlockRingPort`` (``io:
block``).  Why: with a plain socket every frame costs one ``send``; the
system calls, not the Python, dominate a cached packet.  With a ring we queue
outgoing frames in shared memory and hand them all over with one ``send``
per batch (:meth:`TxRing.flush`).  (A V2 *receive* ring was tried and left
out: its reader was seen out of step with the kernel's slot; receive blocks,
TPACKET_V3, hand whole blocks over and cannot be.)

Each slot starts with a ``virtio_net_hdr`` (``PACKET_VNET_HDR``) whose
``hdr_len`` is the whole frame: the kernel then copies the frame into the
packet it builds.  Without it the kernel copies only the Ethernet header and
hangs the rest of the slot on as a page fragment marked zero-copy, and a veth
may not deliver a fragment the sender still owns: it allocates a page and
copies it (``skb_copy_ubufs``), per frame.  On the ``bench`` topology's veths
that was 4 % of the DUT core's time (``perf``); with the header the reference's
cached path took 7.9 against 8.3 us of its core per frame at 110 kpps and
sustained 124 against 118 kpps (medians of 8 and 10 searches, interleaved,
2026-12-05).  A kernel without the option sends as before.
"""

from __future__ import annotations

import socket
import struct
import sys
from typing import Any, Final

from mypy_extensions import mypyc_attr

from gateway.io.afpacket import SOL_PACKET, AfPacket
from gateway.io.netdev import PortError

PACKET_VERSION: Final = 10
PACKET_TX_RING: Final = 13
PACKET_VNET_HDR: Final = 15
TPACKET_V2: Final = 1
TP_STATUS_AVAILABLE: Final = 0
TP_STATUS_SEND_REQUEST: Final = 1
TP_STATUS_SENDING: Final = 2
TP_STATUS_WRONG_FORMAT: Final = 4
_U32: Final = struct.Struct("I")
_STATUS_LEN: Final = struct.Struct("II")  # tp_status, tp_len: the head of a tpacket2_hdr
_LOW: Final = 0 if sys.byteorder == "little" else 3  # where a native u32's low byte is
_TX_DATA: Final = 32  # TPACKET_ALIGN(sizeof(struct tpacket2_hdr)): where a TX frame's data starts
# struct virtio_net_hdr: flags, gso_type, hdr_len (the bytes copied, not referenced), gso_size,
# csum_start, csum_offset; little-endian (virtio 1.0, as the kernel reads it on this side).
VNET: Final = struct.Struct("<BBHHHH")


# Compiled (native.py); the ring tests subclass it with a model of the kernel in place of the socket.
@mypyc_attr(allow_interpreted_subclasses=True)
class TxRing(AfPacket):
    """Queue frames in the ring (:meth:`send`), hand them to the kernel in one call (:meth:`flush`)."""

    def __init__(self, ifname: str, frame_size: int = 2048, frames: int = 4096) -> None:
        self.frame_size = frame_size
        self._frames_wanted = frames
        super().__init__(ifname, receive=False)
        self.tx_i = 0
        self.tx_pending = 0
        self.tx_bytes = 0
        self.tx_ring_full = 0
        self.tx_dropped = 0  # queued frames the kernel did not take (see flush)

    def setup(self, sock: socket.socket) -> None:
        import mmap

        block = 1 << 16
        per_block = block // self.frame_size
        blocks = max(1, self._frames_wanted // per_block)
        try:
            sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V2)
            try:
                sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)  # (before the ring: the kernel says EBUSY after)
                self.vnet = VNET.size
            except OSError:
                self.vnet = 0  # the frame's payload stays a fragment the kernel may copy again
            req = struct.pack("IIII", block, blocks, self.frame_size, blocks * per_block)
            sock.setsockopt(SOL_PACKET, PACKET_TX_RING, req)
            # The ring's memory (an mmap; declared Any: the ring tests hand it a bytearray).
            self.mm: Any = mmap.mmap(sock.fileno(), block * blocks, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except OSError as exc:
            sock.close()
            raise PortError(f"cannot set up a PACKET_MMAP transmit ring on {self.ifname!r}: {exc.strerror}") from None
        self.nframes = blocks * per_block
        self.tx_base = 0

    def counters(self) -> dict[str, int]:
        return {"rx_dropped": 0, "tx_dropped": self.tx_dropped, "rx_resyncs": 0}

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
        data = off + _TX_DATA + self.vnet
        if data + n > off + self.frame_size:
            raise OSError(f"frame of {n} bytes does not fit a ring slot")
        if self.vnet:
            VNET.pack_into(mm, data - self.vnet, 0, 0, n, 0, 0, 0)
        mm[data : data + n] = frame
        # tp_status and tp_len in one write: the kernel reads a transmit slot only
        # inside our own send() (flush), never while we fill it.
        _STATUS_LEN.pack_into(mm, off, TP_STATUS_SEND_REQUEST, n + self.vnet)
        self.tx_i = self.tx_i + 1 if self.tx_i + 1 < self.nframes else 0
        self.tx_pending += 1
        self.tx_bytes += n

    def flush(self) -> None:
        """Hand every queued frame to the kernel with one system call.

        The kernel sends from its own head slot on while slots say
        SEND_REQUEST, and reports the bytes of the frames it moved past.  When
        a frame fails (a full queue: ENOBUFS; no buffer: EAGAIN; the link
        down: ENETDOWN) the kernel stops *without* moving its head past it;
        were we to carry on from our own slot, it would find no request at its
        head and send nothing until we happened to fill that very slot again,
        a whole ring later (seen: seconds of silence, then a burst of stale
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
            n = _U32.unpack_from(self.mm, self._slot(i) + 4)[0] - self.vnet  # tp_len (with the header)
            if n > sent:
                break
            sent -= n
            i += 1
        return i

    def _head_after_error(self, pending: int) -> int:
        """The kernel's head after an error: on the first frame still requested.  The frame that
        failed is put back as requested (or marked wrong-format) and the head stays on it; the
        frames before it went (this kernel, 6.x: seen with a qdisc dropping, ENOBUFS).  Taking
        the slot before it for the head once left the ring a slot behind the kernel for good:
        a few frames of every 200 lost long after the overload had gone."""
        start = self.tx_i - pending
        for k in range(pending):
            if _U32.unpack_from(self.mm, self._slot(start + k))[0] & (TP_STATUS_SEND_REQUEST | TP_STATUS_WRONG_FORMAT):
                return start + k
        return self.tx_i  # every frame went (the error came after the last)

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
