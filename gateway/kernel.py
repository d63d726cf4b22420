"""The user-kernel transport: the datapath's TAP to the node's kernel network stack.

Where this sits: owned by the datapath, polled in its loop like a port.  The
node's kernel side (``io/kernel_side.py``) hangs one network namespace per
tag off the TAP: a TLR namespace per router listed in ``kernel.tlrs`` (tag =
its TLR id; it holds the SR's addresses, forwarding off: it terminates, the
datapath forwards) and the management namespace (tag ``MANAGEMENT_TAG``).

Down (datapath -> kernel): a stage punts a packet for an SR address the
datapath does not consume itself (``routing.RouterStage.to_kernel``); it
leaves on the TAP as an Ethernet frame to the namespace's MAC, tagged with
the namespace's tag.

Up (kernel -> datapath): a frame from a namespace, tagged.  An ARP request, or
an IPv6 neighbour solicitation, is answered here with this side's MAC,
whatever it asks for: the namespaces send everything to the datapath (their
routes point at their one interface) and the datapath stays the one owner of
ARP and neighbour discovery on the wire.  An IPv4 or IPv6 packet re-enters the
pipeline as the SR's own traffic and is routed like any packet that SR sends.
What only makes sense on the namespace's own link (IPv6 multicast and
link-local: MLD reports, router solicitations, duplicate-address probes) stays
there (``link-scoped``).  Anything else (no tag, an unknown tag, another
EtherType, a malformed header) is dropped and counted.
"""

from __future__ import annotations

import os
import select
from collections.abc import Callable
from typing import Any

from gateway.config.kernel import MANAGEMENT_TAG, KernelConfig
from gateway.config.reader import derived_mac
from gateway.headers import ETH_P_8021Q, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, Arp, HeaderError, ip_str, ipv4_check
from gateway.headers6 import (
    IPPROTO_ICMPV6,
    NA_OVERRIDE,
    NA_ROUTER,
    NA_SOLICITED,
    ND_NS,
    Neighbour,
    icmp6_check,
    ip6_str,
    ipv6_check,
)
from gateway.l3 import arp_reply
from gateway.l3v6 import neighbour_advert
from gateway.model import Model, Router

BATCH = 64
DROPS = ("no-tag", "unknown-tag", "not-ip", "malformed", "link-scoped", "ip6-not-enabled")


class Kernel:
    def __init__(self, cfg: KernelConfig, node: str, model: Model, send_from: Callable[[Router, bytes], None]) -> None:
        self.cfg = cfg
        self.node = node
        self.send_from = send_from  # route an IP packet as the router's own (the datapath's)
        self.mac = derived_mac(node, "kernel")  # this side's MAC: the namespaces' next hop
        # tag -> the SR whose namespace it is
        self.routers: dict[int, Router] = {r.kernel_tag: r for r in model.routers if r.kernel_tag is not None}
        if cfg.management is not None:
            self.routers[MANAGEMENT_TAG] = model.router(cfg.management.router, "sr")
        self.tap: Any = None  # io.tap.Tap, or a test double with recv_batch/send/fileno/close/gone
        self.down = 0
        self.up = 0
        self.arp_answered = 0
        self.nd_answered = 0
        self.drops = dict.fromkeys(DROPS, 0)
        self._ep: Any = None
        self.lost = False  # the TAP was deleted under us
        self.names = [ns["name"] for ns in self.namespaces()]
        self.missing: set[str] = set()  # namespaces deleted under the daemon

    def namespace_mac(self, tag: int) -> bytes:
        return derived_mac(self.node, "kernel", str(tag))

    def namespaces(self) -> list[dict[str, Any]]:
        """What the kernel side must build: one namespace per tag, its MAC and addresses."""
        out = []
        for tag, router in sorted(self.routers.items()):
            if tag == MANAGEMENT_TAG:
                mc = self.cfg.management
                assert mc is not None
                name, addresses = f"{self.node}-mgmt", [str(mc.address)]
            else:
                name = f"{self.node}-tlr{tag}"
                ports = [p for p in router.ports if p.instance is not None]
                addresses = [f"{ip_str(p.ip)}/{p.plen}" for p in ports]
                addresses += [f"{ip6_str(p.ip6)}/{p.plen6}" for p in ports if p.ip6 is not None]
            out.append({"name": name, "tag": tag, "mac": self.namespace_mac(tag), "addresses": addresses})
        return out

    # -- down: datapath -> kernel ----------------------------------------------------------
    def deliver(self, tag: int, ip_packet: bytes) -> bool:
        if self.tap is None or self.tap.gone or tag not in self.routers:
            return False  # (the stage drops the packet and counts it: no-punt-client)
        ethertype = b"\x86\xdd" if ip_packet[:1] and ip_packet[0] >> 4 == 6 else b"\x08\x00"
        frame = self.namespace_mac(tag) + self.mac + _tag(tag) + ethertype + ip_packet
        self.tap.send(frame)
        self.down += 1
        return True

    # -- up: kernel -> datapath ------------------------------------------------------------
    def readable(self) -> None:
        for frame in self.tap.recv_batch(BATCH):
            self.receive(frame)
        if self.tap.gone:
            self._lost()

    def _lost(self) -> None:
        """The TAP was deleted under the daemon: its descriptor reports an error for ever, so
        it leaves the loop (else the loop would spin on it); what is for the kernel is dropped
        and counted from now on, tenant traffic goes on.  A restart builds it again."""
        if self.lost:
            return
        self.lost = True
        try:
            self._ep.unregister(self.tap.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        print(
            f"gateway: the kernel transport's TAP {self.cfg.tap} is gone: traffic for the TLR and management "
            "namespaces is dropped (no-punt-client) until the gateway restarts; tenant traffic is unaffected",
            flush=True,
        )

    def receive(self, frame: bytearray) -> None:
        if len(frame) < 18 or (frame[12] << 8 | frame[13]) != ETH_P_8021Q:
            self.drops["no-tag"] += 1
            return
        tag = ((frame[14] << 8) | frame[15]) & 0x0FFF
        router = self.routers.get(tag)
        if router is None:
            self.drops["unknown-tag"] += 1
            return
        ethertype = (frame[16] << 8) | frame[17]
        payload = bytes(frame[18:])
        if ethertype == ETH_P_ARP:
            self._arp(tag, frame, payload)
            return
        if ethertype == ETH_P_IPV6:
            self._ipv6(tag, router, frame, payload)
            return
        if ethertype != ETH_P_IP:
            self.drops["not-ip"] += 1
            return
        if len(payload) < 20 or ipv4_check(payload, 0) is not None:
            self.drops["malformed"] += 1
            return
        total = (payload[2] << 8) | payload[3]
        self.up += 1
        self.send_from(router, payload[:total])

    def _ipv6(self, tag: int, router: Router, frame: bytearray, payload: bytes) -> None:
        if router.fib6 is None:
            self.drops["ip6-not-enabled"] += 1  # (its namespace has no IPv6 address either)
            return
        if ipv6_check(payload, 0) is not None:
            self.drops["malformed"] += 1
            return
        packet = payload[: 40 + ((payload[4] << 8) | payload[5])]
        src, dst = int.from_bytes(packet[8:24], "big"), int.from_bytes(packet[24:40], "big")
        if packet[6] == IPPROTO_ICMPV6 and len(packet) > 40 and packet[40] == ND_NS and src != 0:
            msg = packet[40:]
            try:
                if icmp6_check(src, dst, msg) is not None:
                    raise HeaderError("icmp6-bad-checksum")
                ns = Neighbour.parser(packet[7], msg)
            except HeaderError:
                self.drops["malformed"] += 1
                return
            # Whatever it asks for is this side (the namespace's next hop for everything).
            flags = NA_ROUTER | NA_SOLICITED | NA_OVERRIDE
            answer = neighbour_advert(self.mac, ns.target, bytes(frame[6:12]), src, ns.target, flags)
            self.tap.send(bytes(answer[:12]) + _tag(tag) + bytes(answer[12:]))
            self.nd_answered += 1
            return
        if dst >> 120 == 0xFF or dst >> 118 == 0x3FA or src >> 118 == 0x3FA or src == 0:
            self.drops["link-scoped"] += 1  # multicast or link-local: the namespace's link only
            return
        self.up += 1
        self.send_from(router, packet)

    def _arp(self, tag: int, frame: bytearray, payload: bytes) -> None:
        try:
            arp, _ = Arp.parser(memoryview(payload))
        except HeaderError:
            self.drops["malformed"] += 1
            return
        if arp.op != Arp.REQUEST:
            return  # a reply to nothing we asked: the namespaces' neighbour is always us
        reply = arp_reply(self.mac, arp.tpa, arp.sha, arp.spa)
        self.tap.send(bytes(reply[:12]) + _tag(tag) + bytes(reply[12:]))
        self.arp_answered += 1

    # -- the loop's listener interface -------------------------------------------------------
    def attach(self, ep: Any, handlers: dict[int, Any]) -> None:
        self._ep = ep
        handlers[self.tap.fileno()] = self.readable
        ep.register(self.tap.fileno(), select.EPOLLIN)

    def tick(self) -> None:
        if self.tap is not None and self.tap.gone:
            self._lost()  # (found by a send)
        missing = [ns for ns in self.names if not os.path.exists(f"/run/netns/{ns}")]
        for ns in missing:
            if ns not in self.missing:
                print(f"gateway: network namespace {ns} was deleted under the daemon; its processes run on "
                      "unreachable by name until the gateway restarts", flush=True)  # fmt: skip
        self.missing = set(missing)

    def close(self) -> None:
        if self.tap is not None:
            self.tap.close()
            self.tap = None

    def listener_counters(self) -> dict[str, Any]:
        return self.counters()

    def counters(self) -> dict[str, Any]:
        return {
            "tap": "gone" if self.lost else ("up" if self.tap is not None else "none"),
            "tap_rx_errors": getattr(self.tap, "rx_errors", 0),
            "tap_tx_dropped": getattr(self.tap, "tx_dropped", 0),
            "namespaces_missing": sorted(self.missing),
            "to_kernel": self.down,
            "from_kernel": self.up,
            "arp_answered": self.arp_answered,
            "nd_answered": self.nd_answered,
            "drops": dict(self.drops),
            "namespaces": {ns["name"]: ns["tag"] for ns in self.namespaces()},
        }


def _tag(vlan: int) -> bytes:
    return bytes([0x81, 0x00, vlan >> 8, vlan & 0xFF])
