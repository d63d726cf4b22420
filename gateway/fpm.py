"""Routes from the kernel side: zebra's FPM stream into an SR's FIB.

Where this sits: polled by the datapath loop like its other listeners.  FRR
runs in an SR's TLR namespace (``kernel.py``; its BGP session crosses the
datapath like any traffic of the SR); its zebra, with the ``dplane_fpm_nl``
module, connects to this listener and streams every route it installs as
netlink route messages (the Forwarding Plane Manager protocol: a 4-byte
header — version 1, type 1 = netlink, length — then the netlink message).
The messages are parsed with pyroute2.

A route with a next hop (or several: equal-cost) on a segment of the SR goes
into its FIB (IPv4 or IPv6: the message's family) with origin ``bgp``; a deletion removes it; routes without a
next hop (connected) are left to the config.  When zebra connects, every
``bgp`` route is dropped first (zebra resends all of them: a full resync);
when it goes away they are dropped too (nobody vouches for them any more).
A message that breaks the framing closes the connection; one that cannot be
used is counted (``rejected``), with the first few reasons kept.

The listening socket is made inside the TLR namespace (``setns`` for the
time of ``bind``), so zebra reaches it at 127.0.0.1 there.
"""

from __future__ import annotations

import ctypes
import functools
import ipaddress
import os
import select
import socket
import struct
from collections import deque
from typing import Any

from gateway.gcpolicy import acyclic, young_garbage
from gateway.model import Model, Router, add_route

FPM_PORT = 2620
CLONE_NEWNET = 0x40000000
RTM_NEWROUTE, RTM_DELROUTE = 24, 25
MAX_MESSAGE = 65535
_HDR = struct.Struct("!BBH")


class FpmError(Exception):
    pass


@functools.cache
def _libc() -> ctypes.CDLL:
    """The C library, loaded once: a ``CDLL`` builds a class of its own, a reference cycle that
    the daemon's collector-less memory would keep for each one dropped (``gcpolicy``)."""
    return ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc().setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise FpmError(f"setns: {os.strerror(err)}")


def listen_in(netns: str, port: int = FPM_PORT) -> socket.socket:
    """A listening TCP socket at 127.0.0.1:``port`` inside network namespace ``netns``."""
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        target = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    except OSError as exc:
        os.close(own)
        raise FpmError(f"no network namespace {netns}: {exc.strerror}") from None
    try:
        _setns(target)
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
            sock.listen(4)
            sock.setblocking(False)
        finally:
            _setns(own)
    finally:
        os.close(target)
        os.close(own)
    return sock


class FpmServer:
    """The FPM listener of one SR (``router``): accept zebra, apply its route messages."""

    def __init__(self, model: Model, router: Router, sock: Any) -> None:
        # pyroute2's decoder takes ~160 ms of CPU to import: here, at start, not in the loop at the
        # first route zebra sends (both SRs of edge-ha stalled that long at once when their BGP
        # sessions came up, and every BFD session on the machine missed 150 ms of packets).
        from pyroute2.netlink.rtnl.rtmsg import rtmsg

        self._rtmsg = rtmsg
        self.model = model
        self.router = router
        self.sock = sock
        self.conn: Any = None
        self.buf = bytearray()
        self._ep: Any = None
        self._handlers: dict[int, Any] = {}
        self.connects = 0
        self.added = 0
        self.removed = 0
        self.rejected = 0
        self.errors: deque[str] = deque(maxlen=5)

    # -- the loop's listener interface -------------------------------------------------------
    def attach(self, ep: Any, handlers: dict[int, Any]) -> None:
        self._ep, self._handlers = ep, handlers
        handlers[self.sock.fileno()] = self._accept
        ep.register(self.sock.fileno(), select.EPOLLIN)

    def _accept(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.errors.append(f"accept: {exc.strerror}")
            return
        self._drop_conn()
        conn.setblocking(False)
        self.conn = conn
        self.connects += 1
        self.buf.clear()
        self.flush_bgp()  # zebra sends everything again: start from nothing
        self._handlers[conn.fileno()] = self._readable
        self._ep.register(conn.fileno(), select.EPOLLIN)

    def _readable(self) -> None:
        try:
            data = self.conn.recv(1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop_conn()
            self.flush_bgp()
            return
        self.feed(data)

    def _drop_conn(self) -> None:
        if self.conn is None:
            return
        fd = self.conn.fileno()
        self._handlers.pop(fd, None)
        try:
            self._ep.unregister(fd)
        except (OSError, ValueError, AttributeError):
            pass
        self.conn.close()
        self.conn = None

    def tick(self) -> None:
        pass

    def close(self) -> None:
        self._drop_conn()
        self.sock.close()

    # -- the stream ----------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """Take bytes of the FPM stream; apply every whole message.  A parsed message is a
        cycle of pyroute2 objects: a read is applied under ``young_garbage``."""
        buf = self.buf
        buf += data
        at, end = 0, len(buf)
        view = memoryview(buf)
        try:
            with young_garbage():
                while end - at >= _HDR.size:
                    version, kind, length = _HDR.unpack_from(buf, at)
                    if version != 1 or length < _HDR.size:
                        self.errors.append(f"bad FPM header (version {version}, length {length}): connection closed")
                        self.rejected += 1
                        at = end
                        self._drop_conn()
                        return
                    if end - at < length:
                        return  # the rest of the message is still on its way
                    message = bytes(view[at + _HDR.size : at + length])
                    at += length
                    if kind == 1:
                        self.apply(message)
        finally:
            view.release()
            del buf[:at]  # once per read, not once per message (a full table is a million of them)

    def apply(self, message: bytes) -> None:
        try:
            msg = self._rtmsg(message)
            msg.decode()
            mtype = msg["header"]["type"]
            family = msg["family"]
            if family not in (socket.AF_INET, socket.AF_INET6) or mtype not in (RTM_NEWROUTE, RTM_DELROUTE):
                return
            v6 = family == socket.AF_INET6
            dst = msg.get_attr("RTA_DST") or ("::" if v6 else "0.0.0.0")
            prefix = acyclic(ipaddress.ip_network(f"{dst}/{msg['dst_len']}"))
            hops = []
            gateway = msg.get_attr("RTA_GATEWAY")
            if gateway:
                hops.append(gateway)
            for nh in msg.get_attr("RTA_MULTIPATH") or []:
                if nh.get_attr("RTA_GATEWAY"):
                    hops.append(nh.get_attr("RTA_GATEWAY"))
        except Exception as exc:  # noqa: BLE001 - whatever pyroute2 makes of garbage: counted
            self._reject(f"cannot decode a route message: {type(exc).__name__}: {exc}")
            return
        fib = self.router.fib6 if v6 else self.router.fib
        if fib is None:
            if mtype == RTM_NEWROUTE and hops:
                self._reject(f"{prefix}: {self.router.label} has no IPv6 address on any segment")
            return
        net, plen = int(prefix.network_address), prefix.prefixlen
        if mtype == RTM_DELROUTE:
            current = fib.get(net, plen)
            if current is not None and current.origin == "bgp":
                fib.remove(net, plen)
                self.removed += 1
            return
        if not hops:
            return  # connected or blackhole: the config's business
        try:
            addrs = [ipaddress.ip_address(h) for h in hops]
            if any(a.version != prefix.version for a in addrs):
                raise ValueError("of the other address family")
            if any(a.is_link_local for a in addrs):
                # Which segment a link-local next hop is on, the namespace's one interface cannot
                # say: bgpd's route-map prefers the global one (io/frr.py).
                raise ValueError("is link-local (use the peer's global address)")
            route = add_route(self.model, self.router, prefix, [int(a) for a in addrs])
        except ValueError as exc:
            self._reject(f"{prefix}: next hop {exc}")
            return
        route.origin = "bgp"
        self.added += 1

    def _reject(self, why: str) -> None:
        self.rejected += 1
        self.errors.append(why)

    def flush_bgp(self) -> None:
        for fib in (self.router.fib, self.router.fib6):
            if fib is None:
                continue
            for route in [r for r in fib.routes() if r.origin == "bgp"]:
                fib.remove(route.prefix, route.plen)
                self.removed += 1

    def listener_counters(self) -> dict[str, Any]:
        return self.counters()

    def counters(self) -> dict[str, Any]:
        return {
            "router": self.router.label,
            "connected": self.conn is not None,
            "connects": self.connects,
            "added": self.added,
            "removed": self.removed,
            "rejected": self.rejected,
            "last_errors": list(self.errors),
        }
