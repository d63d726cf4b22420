"""A TAP device: the datapath's side of the user-kernel transport.

Where this sits: ``gateway/kernel.py`` owns one :class:`Tap` and polls it in
the run-to-completion loop like a port.  A TAP is a network interface whose
other side is a file descriptor: what the datapath writes to the descriptor,
the kernel receives on the interface, and what the kernel sends on the
interface, the datapath reads (``IFF_TAP | IFF_NO_PI``: whole Ethernet frames,
no packet-information header).  802.1Q tags stay inline in both directions
(the TLR id of each frame; ``kernel.py``).

The device lives as long as the descriptor: closing it removes the interface,
so a dead daemon leaves no TAP behind.  Moving the interface to another
network namespace keeps the descriptor working.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct

from gateway.io.netdev import PortError

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
MAX_FRAME = 65535 + 18
GONE = (errno.EBADFD, errno.ENODEV, errno.ENXIO)  # what a descriptor whose TAP was deleted answers


class Tap:
    poll_interval: float | None = None  # read when epoll says so

    def __init__(self, ifname: str) -> None:
        if len(ifname) > 15:
            raise PortError(f"TAP name {ifname!r} is longer than the kernel's 15-character interface names")
        try:
            fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise PortError(f"cannot open /dev/net/tun for TAP {ifname!r}: {exc.strerror}") from None
        try:
            fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", ifname.encode(), IFF_TAP | IFF_NO_PI))
        except OSError as exc:
            os.close(fd)
            raise PortError(f"cannot create TAP {ifname!r}: {exc.strerror}") from None
        self.ifname = ifname
        self.fd = fd
        self.rx_errors = 0
        self.tx_dropped = 0
        self.gone = False  # the interface was deleted under the descriptor (EBADFD from then on)

    def fileno(self) -> int:
        return self.fd

    def filenos(self) -> tuple[int, ...]:
        return (self.fd,)

    def recv_batch(self, limit: int, readable: bool = True) -> list[bytearray]:
        """Up to ``limit`` frames the kernel sent, without blocking (tags inline)."""
        out: list[bytearray] = []
        if not readable:
            return out
        for _ in range(limit):
            try:
                data = os.read(self.fd, MAX_FRAME)
            except BlockingIOError:
                break
            except OSError as exc:
                self.rx_errors += 1
                self.gone = self.gone or exc.errno in GONE
                break
            if not data:
                break
            out.append(bytearray(data))
        return out

    def send(self, frame: bytes | bytearray) -> None:
        try:
            os.write(self.fd, frame)
        except BlockingIOError:
            self.tx_dropped += 1  # the kernel's queue is full: this frame, not the loop
        except OSError as exc:
            self.tx_dropped += 1  # the interface is down (or gone)
            self.gone = self.gone or exc.errno in GONE

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass
