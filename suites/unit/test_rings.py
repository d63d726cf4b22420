"""The transmit ring's bookkeeping against a model of the kernel's tpacket_snd.

The model follows net/packet/af_packet.c: the kernel sends from its own head
slot while slots say SEND_REQUEST, moves its head past each frame it sent and
returns their bytes; a frame that fails is put back as requested and the head
stays on it (ENOBUFS from a full queue, EAGAIN or a short count when no buffer
could be had: what this kernel, 6.x, does, seen on a veth behind a dropping
qdisc); a link that is down fails before any slot is looked at.
What must hold whatever happens: no stall (the next frames go out) and every
frame either delivered or counted in ``tx_dropped``.
"""

from __future__ import annotations

import errno
import struct

import pytest

from gateway.io.txring import TP_STATUS_AVAILABLE, TP_STATUS_SEND_REQUEST, VNET, TxRing

SLOT = 64
DATA = 32
NFRAMES = 8
_HDR = struct.Struct("II")


class KernelTx:
    """tpacket_snd as a model: ``fail`` maps the n-th frame handed to the kernel
    (counting from 0 over the whole test) to a failure kind."""

    def __init__(self, mm: bytearray, vnet: int) -> None:
        self.mm = mm
        self.vnet = vnet  # a virtio_net_hdr before each frame (PACKET_VNET_HDR), or none
        self.head = 0
        self.seen = 0
        self.fail: dict[int, str] = {}
        self.down = False
        self.wire: list[bytes] = []

    def send(self, _data: bytes) -> int:
        if self.down:
            raise OSError(errno.ENETDOWN, "Network is down")
        total = 0
        while True:
            off = self.head * SLOT
            status, length = _HDR.unpack_from(self.mm, off)
            if status != TP_STATUS_SEND_REQUEST:
                return total
            kind = self.fail.get(self.seen)
            self.seen += 1
            if kind is not None:
                _HDR.pack_into(self.mm, off, TP_STATUS_SEND_REQUEST, length)  # put back, head stays
                if kind == "nobufs":
                    raise OSError(errno.ENOBUFS, "No buffer space available")
                if total == 0:
                    raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
                return total  # no buffer after some frames: a short count, no error
            frame = bytes(self.mm[off + DATA + self.vnet : off + DATA + length])
            if self.vnet:
                flags, gso, copy, _size, _start, _offset = VNET.unpack_from(self.mm, off + DATA)
                assert (flags, gso, copy) == (0, 0, len(frame)), "the whole frame copied, no offload asked"
            self.wire.append(frame)
            _HDR.pack_into(self.mm, off, TP_STATUS_AVAILABLE, length)  # sent and freed
            self.head = (self.head + 1) % NFRAMES
            total += length - self.vnet  # what send() reports: the frames' bytes


class ModelTxRing(TxRing):
    """A transmit ring with no socket: ``KernelTx`` stands in for the kernel."""

    def __init__(self, vnet: int) -> None:  # (not TxRing's: it would open a socket)
        self.mm = bytearray(SLOT * NFRAMES)
        self.frame_size, self.nframes, self.tx_base, self.vnet = SLOT, NFRAMES, 0, vnet
        self.tx_i = self.tx_pending = self.tx_bytes = self.tx_dropped = self.tx_ring_full = 0
        self.sock = KernelTx(self.mm, vnet)


def ring(vnet: int = VNET.size) -> tuple[TxRing, KernelTx]:
    port = ModelTxRing(vnet)
    return port, port.sock


def frames(first: int, n: int) -> list[bytes]:
    return [f"frame-{i:04d}".encode() for i in range(first, first + n)]


@pytest.mark.parametrize(
    "fail",
    [
        {},
        {2: "nobufs"},  # the third frame of the first batch meets a full peer queue
        {0: "nobufs"},
        {4: "nobufs"},  # the last frame of the batch
        {2: "nomem"},  # short count, no error
        {0: "nomem"},  # EAGAIN
        {1: "nobufs", 7: "nomem", 12: "nobufs"},
    ],
)
@pytest.mark.parametrize("vnet", [VNET.size, 0], ids=["vnet-header", "older-kernel"])
def test_no_stall_and_every_frame_accounted(fail: dict[int, str], vnet: int) -> None:
    port, kernel = ring(vnet)
    kernel.fail = dict(fail)
    sent: list[bytes] = []
    for batch in range(8):  # 40 frames through an 8-slot ring, 5 per flush
        for f in frames(batch * 5, 5):
            port.send(f)
            sent.append(f)
        port.flush()
    assert port.tx_dropped == len(sent) - len(kernel.wire)
    assert kernel.wire == [f for f in sent if f in kernel.wire], "frames left in order"
    # The last batch went out whole: nothing stalled behind a failed slot.
    assert kernel.wire[-5:] == sent[-5:]
    assert port.tx_i == kernel.head


def test_link_down_drops_what_was_queued_and_recovers() -> None:
    port, kernel = ring()
    for f in frames(0, 3):
        port.send(f)
    kernel.down = True
    port.flush()
    assert port.tx_dropped == 3 and kernel.wire == []
    kernel.down = False
    for f in frames(3, 6):
        port.send(f)
    port.flush()
    assert kernel.wire == frames(3, 6), "no stale frame from the down period, nothing stuck"


# -- the TPACKET_V3 receive ring -------------------------------------------------------------
BLOCK = 4096
BLOCKS = 4
_T3 = struct.Struct("IIIIIIHHIIH")
_BLK = struct.Struct("III")  # block_status, num_pkts, offset_to_first_pkt (at byte 8)


def block_ring():
    from gateway.io.blockring import BlockRingPort

    class ModelBlockRing(BlockRingPort):
        """A receive ring with no socket: the test plays the kernel."""

        def __init__(self) -> None:  # (not BlockRingPort's: it would open sockets)
            self.mm = bytearray(BLOCK * BLOCKS)
            self._block_size, self._blocks = BLOCK, BLOCKS
            self.blk = self.rx_truncated = self.rx_resyncs = 0
            self.quiet = None  # blocks only

    return ModelBlockRing()


def hand_over(port, block: int, payloads: list[bytes]) -> None:
    """Fill a block as the kernel does and give it to the reader (TP_STATUS_USER)."""
    base = block * BLOCK
    off = 48
    for i, data in enumerate(payloads):
        nxt = 0 if i == len(payloads) - 1 else 32 + 64
        _T3.pack_into(port.mm, base + off, nxt, 0, 0, len(data), len(data), 0, 32, 32, 0, 0, 0)
        port.mm[base + off + 32 : base + off + 32 + len(data)] = data
        off += 32 + 64
    _BLK.pack_into(port.mm, base + 8, 1, len(payloads), 48)


def status(port, block: int) -> int:
    return _BLK.unpack_from(port.mm, block * BLOCK + 8)[0]


def test_blocks_are_read_in_order_and_given_back():
    port = block_ring()
    hand_over(port, 0, frames(0, 3))
    hand_over(port, 1, frames(3, 2))
    got = [bytes(f) for f, _vlan in port.recv_batch(64)]
    assert got == frames(0, 5)
    assert status(port, 0) == status(port, 1) == 0 and port.blk == 2
    assert port.recv_batch(64) == [] and port.rx_resyncs == 0, "block 2 is still the kernel's"


def test_a_block_the_kernel_passed_by_does_not_stop_the_reader():
    """Block 0 never handed over while blocks 1 and 2 were: without the resync the
    reader waits at block 0 until the kernel comes round the whole ring."""
    port = block_ring()
    hand_over(port, 1, frames(0, 2))
    hand_over(port, 2, frames(2, 2))
    got = [bytes(f) for f, _vlan in port.recv_batch(64)]
    assert got == frames(0, 4) and port.rx_resyncs == 1 and port.blk == 3


def test_a_block_being_filled_is_waited_for():
    port = block_ring()
    assert port.recv_batch(64) == [] and port.blk == 0 and port.rx_resyncs == 0


@pytest.mark.parametrize(
    ("per_second", "on_blocks_after"),
    [(1_300, False), (3_000, False), (6_000, True), (100_000, True)],
)
def test_a_port_moved_to_blocks_goes_back_to_frames_below_the_frame_side_s_comfort(
    monkeypatch, per_second, on_blocks_after
):
    # After a burst moved it to blocks, a port under a steady load goes back to reading frame by
    # frame (no wait for a block's timeout) where that side keeps up with ease: with the
    # old bound of 400/s it stayed on blocks at 1,300/s, and a ping beside it waited ~0.8 ms.
    from gateway.io import blockring

    port = block_ring()
    port.on_blocks, port._quiet_windows, port._window_n, port._window_end, port.rx_switches = True, 0, 0, 0.0, 0
    monkeypatch.setattr(blockring.fanout, "choose", lambda sock, i: None)
    port.sock = None
    clock = [100.0]
    monkeypatch.setattr(blockring.time, "monotonic", lambda: clock[0])
    for _ in range(300):  # 0.3 s in reads of 1 ms
        clock[0] += 0.001
        port._judge(per_second // 1000)
    assert port.on_blocks is on_blocks_after


def test_a_frame_side_that_falls_behind_moves_to_blocks_at_once(monkeypatch):
    # Below the rate bound, a port reads frame by frame; a read that brings all it asked for
    # means the socket holds more: the frame side is behind (slow frames: new connections),
    # and the port moves to its blocks without waiting for the window's end.
    from gateway.io import blockring
    from gateway.io.afpacket import AfPacket

    class Socket(AfPacket):
        """The quiet side, holding ``held`` frames."""

        def __init__(self, held):  # (not AfPacket's: it would open a socket)
            self.held = held

        def recv_batch(self, limit, readable=True):
            n = min(limit, self.held)
            self.held -= n
            return [(bytearray(60), None)] * n

    monkeypatch.setattr(blockring.fanout, "choose", lambda sock, i: None)
    for held, to_blocks in ((10, False), (64, True)):
        port = block_ring()
        port.sock, port.quiet, port.on_blocks = None, Socket(held), False
        port._window_n, port._window_end, port._settle_until = blockring.ONE_BY_ONE, 1e18, 0.0
        port._quiet_windows = port.rx_switches = port.rx_by_frame = 0
        got = port.recv_batch(64)
        assert len(got) == min(held, 64) and port.on_blocks is to_blocks
