"""The default port transport (``io: block``): TPACKET_V3 receive blocks, a V2 transmit ring.

Where this sits: under a :class:`gateway.model.Port`, an ``io.Transport``.
The kernel writes received frames (and their VLAN tags) into shared memory
that the datapath reads without a system call, a whole block at a time;
outgoing frames go through ``txring.TxRing``, one ``send`` per batch.
"""

from __future__ import annotations

import socket
import struct
import sys

from gateway.io.afpacket import SOL_PACKET, TP_STATUS_VLAN_VALID, AfPacket
from gateway.io.netdev import PortError
from gateway.io.txring import PACKET_VERSION, TxRing

PACKET_RX_RING = 5
TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1
_U32 = struct.Struct("I")
_LOW = 0 if sys.byteorder == "little" else 3  # where a native u32's low byte is
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

    poll_interval: float | None = 0.001

    def __init__(self, ifname: str, block_size: int = 1 << 16, blocks: int = 256, retire_ms: int = 1) -> None:
        self._block_size = block_size
        self._blocks = blocks
        self._retire_ms = retire_ms
        super().__init__(ifname)
        self.blk = 0
        self.rx_truncated = 0
        self.rx_resyncs = 0  # blocks the kernel passed by (see _passed_by)
        # TX: a second, transmit-only socket with a V2 ring.
        self.tx = TxRing(ifname, frames=4096)
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

    def counters(self) -> dict[str, int]:
        return {"rx_dropped": self.kernel_drops(), "tx_dropped": self.tx.tx_dropped, "rx_resyncs": self.rx_resyncs}

    def close(self) -> None:
        try:
            self.mm.close()
            self.tx.close()
        finally:
            super().close()
