"""A quiet, a busy and a quiet-again stretch of frames through one ``io: block`` port,
run inside a namespace that holds a veth pair (``python -m suites.lib.portio TX RX``).

Prints one JSON object: how many frames were sent and received, whether every frame
came once and in order, and the port's counters after each stretch.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import time

ETHERTYPE = b"\x88\xb5"  # local experimental: nothing else on the link uses it


def frame(i: int) -> bytes:
    return b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + ETHERTYPE + struct.pack("!I", i) + bytes(42)


def main(tx_if: str, rx_if: str) -> int:
    from gateway.io import open_port

    port = open_port(rx_if, "block")
    tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    tx.bind((tx_if, 0))
    got: list[int] = []
    report: dict[str, object] = {"adaptive": getattr(port, "quiet", None) is not None}
    sent = 0

    def take(batch: list[tuple[bytearray, int | None]]) -> int:
        for data, _vlan in batch:
            if data[12:14] == ETHERTYPE:
                got.append(struct.unpack_from("!I", data, 14)[0])
        return len(batch)

    def read(seconds: float) -> None:
        end = time.monotonic() + seconds
        while True:
            take(port.recv_batch(64))
            if time.monotonic() >= end:
                return

    def quiet(n: int) -> None:
        nonlocal sent
        for _ in range(n):
            tx.send(frame(sent))
            sent += 1
            read(0.005)

    # Two quiet frames waiting: not read while the loop says epoll did not report the port,
    # then one per read (a second read of the socket would come back empty).
    for _ in range(2):
        tx.send(frame(sent))
        sent += 1
    time.sleep(0.01)
    report["waiting"] = [take(port.recv_batch(64, False)), take(port.recv_batch(64)), take(port.recv_batch(64))]
    quiet(30)
    report["quiet"] = port.counters()
    # As fast as the sender goes, reading between bursts, for 5,000 frames and at least 0.2 s
    # (twenty of the port's rate windows: the frames sent before the port judged the rate are
    # a small share of the burst, however fast this machine sends).
    k, t0 = 0, time.monotonic()
    while k < 5000 or time.monotonic() - t0 < 0.2:
        tx.send(frame(sent))
        sent += 1
        k += 1
        if k % 100 == 0:
            read(0.0)
    report["burst"] = {"frames": k, "seconds": time.monotonic() - t0}
    read(0.05)
    report["busy"] = port.counters()
    read(0.3)  # long enough a lull to go back to frames
    quiet(30)
    read(0.05)
    report["quiet_again"] = port.counters()
    report.update(sent=sent, received=len(got), once_in_order=got == list(range(sent)))
    port.close()
    print(json.dumps(report))
    return 0


def jumbo(tx_if: str, rx_if: str) -> int:
    """Frames as large as the link's MTU (9,000) through an ``io: block`` port, a burst of them
    (through the blocks): the block size the port chose, and how many came whole."""
    import subprocess

    from gateway.io import open_port

    small = open_port(rx_if, "block")
    report: dict[str, object] = {"block_1500": small._block_size}  # type: ignore[attr-defined]
    small.close()
    for ifname in (tx_if, rx_if):
        subprocess.run(["ip", "link", "set", ifname, "mtu", "9000"], check=True)
    port = open_port(rx_if, "block")
    report["block_9000"] = port._block_size  # type: ignore[attr-defined]
    tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    tx.bind((tx_if, 0))
    big = [frame(i)[:18] + bytes([i % 251]) * (9014 - 18) for i in range(64)]
    sent, whole, end = 0, 0, time.monotonic() + 0.3
    while time.monotonic() < end:
        for f in big:
            tx.send(f)
            sent += 1
        for data, _vlan in port.recv_batch(64):
            whole += data[12:14] == ETHERTYPE and len(data) == 9014 and data == big[data[17] % 64]
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        for data, _vlan in port.recv_batch(64):
            whole += data[12:14] == ETHERTYPE and len(data) == 9014 and data == big[data[17] % 64]
    report.update(sent=sent, whole=whole, counters=port.counters())
    port.close()
    print(json.dumps(report))
    return 0


def transmit_after_drops(tx_if: str, rx_if: str) -> int:
    """The transmit ring behind a qdisc that drops (ENOBUFS), then with the qdisc gone: how
    many frames of each later round of 200 arrive."""
    import subprocess

    from gateway.io.txring import TxRing

    subprocess.run(["ip", "link", "set", rx_if, "up"], check=True)
    tx = TxRing(tx_if, frames=256)
    rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(int.from_bytes(ETHERTYPE, "big")))
    rx.bind((rx_if, 0))
    rx.setblocking(False)

    def drain() -> int:
        n = 0
        while True:
            try:
                rx.recv(2048)
            except BlockingIOError:
                return n
            n += 1

    def burst(first: int, n: int) -> int:
        refused = 0  # "transmit ring full": counted as the datapath's port counts it
        for i in range(n):
            try:
                tx.send(frame(first + i))
            except OSError:
                refused += 1
            if i % 32 == 31:
                tx.flush()
        tx.flush()
        return refused

    tbf = ["tc", "qdisc", "replace", "dev", tx_if, "root", "tbf", "rate", "100kbit", "burst", "1600", "limit", "200"]
    subprocess.run(tbf, check=True)
    refused = burst(0, 2000)
    time.sleep(0.2)
    report: dict[str, object] = {"overload": {"dropped": tx.tx_dropped, "refused": refused, "received": drain()}}
    subprocess.run(["tc", "qdisc", "del", "dev", tx_if, "root"], check=True)
    time.sleep(0.2)
    drain()
    rounds = []
    for r in range(3):
        dropped = tx.tx_dropped
        refused = burst(10_000 * (r + 1), 200)
        time.sleep(0.1)
        rounds.append({"received": drain(), "dropped": tx.tx_dropped - dropped, "refused": refused})
    report["after"] = rounds
    tx.close()
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "--transmit-after-drops":
        sys.exit(transmit_after_drops(*sys.argv[2:4]))
    if sys.argv[1] == "--jumbo":
        sys.exit(jumbo(*sys.argv[2:4]))
    sys.exit(main(*sys.argv[1:3]))
