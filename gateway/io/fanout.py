"""Two receive sockets on one port, and a switch between them: a PACKET_FANOUT group
whose classic-BPF program says which socket gets every frame.

Where this sits: under ``blockring.BlockRingPort`` (``io: block``), which reads
a busy port through its TPACKET_V3 blocks and a quiet one frame by frame from
a plain socket.  Each frame goes to exactly one member of a fanout group, and
replacing the group's program (``PACKET_FANOUT_DATA``) takes effect for the
next frame: no frame is lost or delivered twice at a switch.

Why it is done this way:

- A block is handed over when full or after the kernel's block timeout (1 ms at
  the least): that timeout is what a quiet port's frames wait.  A socket read
  per frame has no such wait, but costs a system call per frame.
- The group's own hook decides about outgoing frames, not its members'
  ``PACKET_IGNORE_OUTGOING``: ``PACKET_FANOUT_FLAG_IGNORE_OUTGOING`` keeps the
  port's transmitted frames out of both.
- The second socket must not receive on its own between its ``bind`` and joining
  the group (it would see frames the first socket sees too): it drops every
  frame (a socket filter) until it has joined.
- A kernel without these options: ``join`` raises OSError and the port stays on
  blocks alone.
"""

from __future__ import annotations

import ctypes
import socket
import struct

SOL_PACKET = 263
PACKET_FANOUT = 18
PACKET_FANOUT_DATA = 22
PACKET_FANOUT_CBPF = 6
FLAG_UNIQUEID = 0x2000
FLAG_IGNORE_OUTGOING = 0x4000
SO_ATTACH_FILTER = 26
SO_DETACH_FILTER = 27
BPF_RET_K = 0x06


# The one-instruction classic BPF programs returning 0 and 1, each a ``struct sock_fprog``
# pointing at its instruction.  Built once: the instructions live as long as the module,
# and a switch allocates nothing (a ctypes buffer made per call also made its array type,
# a reference cycle, garbage the daemon's collector-less memory would keep).
_INSNS = [ctypes.create_string_buffer(struct.pack("HBBI", BPF_RET_K, 0, 0, ret), 8) for ret in (0, 1)]
PROGRAMS = [struct.pack("HP", 1, ctypes.addressof(insn)) for insn in _INSNS]


def mute(sock: socket.socket) -> None:
    """Drop every frame at this socket (before it is bound), until :func:`join`."""
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, PROGRAMS[0])


def join(first: socket.socket, second: socket.socket) -> None:
    """Put two bound sockets of one port in a new fanout group: ``first`` is member 0 and
    gets every frame until :func:`choose` says otherwise; ``second`` (muted) is member 1."""
    flags = PACKET_FANOUT_CBPF | FLAG_IGNORE_OUTGOING
    first.setsockopt(SOL_PACKET, PACKET_FANOUT, (flags | FLAG_UNIQUEID) << 16)
    group = struct.unpack("I", first.getsockopt(SOL_PACKET, PACKET_FANOUT, 4))[0] & 0xFFFF
    second.setsockopt(SOL_PACKET, PACKET_FANOUT, flags << 16 | group)
    second.setsockopt(socket.SOL_SOCKET, SO_DETACH_FILTER, 0)


def choose(sock: socket.socket, member: int) -> None:
    """Every frame from now on to ``member`` (0 or 1) of the group ``sock`` is in."""
    sock.setsockopt(SOL_PACKET, PACKET_FANOUT_DATA, PROGRAMS[member])
