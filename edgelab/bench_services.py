"""``edgelab bench services``: the service transport's cost, in this process, no root.

A datapath with edge-basic's configuration and its DHCP relay (the real
process, ``python -m gateway.relay.dhcp``, on the real unix socket) gets
DHCP discovers from a tenant; each is punted to the relay, relayed back
with option 82 and routed to the server's segment.  Two figures:

- **round trip**: one discover in flight at a time, the time from receiving
  it to sending the relayed request (punt, the relay's work, resume, routing);
- **rate**: as many as ``window`` in flight, the discovers relayed per second.

Beside them, for scale, the same datapath's cost of a frame it forwards
through the stages (a DR-routed UDP packet, cache off).

Then the FTP ALG (``python -m gateway.alg.ftp``): an FTP control connection
from t1 through the SR's SNAT, each client segment held, read by the ALG and
resumed — a ``NOOP`` (returned as it came) and a ``PORT`` (an EXPECT round
trip to the SR, the line rewritten) — timed from receiving the segment to
sending it on the uplink, one in flight at a time.
"""

from __future__ import annotations

import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml


def main(packets: int = 2000, window: int = 32) -> int:
    from scapy.layers.dhcp import BOOTP, DHCP
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import ARP, Ether

    import topologies
    from edgelab.bench import _NullWire
    from gateway import config
    from gateway.datapath import Datapath
    from suites.duts.reference import render

    plan = topologies.plan("edge-basic")
    h = plan["hosts"]
    raw = render(plan, "edge1")
    d = Path(tempfile.mkdtemp(prefix="edgelab-bench-svc-"))
    raw["services"]["socket"] = str(d / "svc.sock")
    raw["control_socket"] = str(d / "ctl.sock")
    raw.pop("kernel", None)  # no TAP here: the transport alone
    path = d / "edge1.yaml"
    path.write_text(yaml.safe_dump(raw))
    cfg = config.load(path)
    dp = Datapath(cfg)
    sent: list[int] = []

    class Counting(_NullWire):
        def send(self, frame: bytes | bytearray) -> None:
            sent.append(1)

    for name in dp.model.ports:
        dp.attach(name, Counting())
    dp.cache.enabled = False
    server = dp.open_services()
    ep = select.epoll()
    handlers: dict[int, Any] = {}
    server.attach(ep, handlers)
    relay = subprocess.Popen(
        [sys.executable, "-m", "gateway.relay.dhcp", "--config", str(path), "--service", "dhcp-relay"],
        stdout=subprocess.DEVNULL,
    )
    try:

        def serve(timeout: float) -> None:
            for fd, _ in ep.poll(timeout):
                handlers[fd]()

        deadline = time.monotonic() + 20
        while not server.services["dhcp-relay"].conn:
            serve(0.05)
            if time.monotonic() > deadline:
                raise RuntimeError("the relay did not register")
        trunk = dp.model.ports["trunk"]
        t3 = h["t3"]
        arp = Ether(src=t3["mac"], dst="ff:ff:ff:ff:ff:ff") / ARP(
            op=1, hwsrc=t3["mac"], psrc="172.16.20.13", pdst="172.16.20.1"
        )
        dp.receive(trunk, bytearray(bytes(arp)), 20)
        client = h["t1"]["mac"]
        discover = bytes(
            Ether(src=client, dst="ff:ff:ff:ff:ff:ff")
            / IP(src="0.0.0.0", dst="255.255.255.255")
            / UDP(sport=68, dport=67)
            / BOOTP(chaddr=bytes.fromhex(client.replace(":", "")), flags=0x8000)
            / DHCP(options=[("message-type", "discover"), "end"])
        )
        svc = server.services["dhcp-relay"]

        def wait_returned(n: int) -> None:
            while svc.counts["returned"] < n:
                serve(1.0)

        # Round trip: one in flight.
        times = []
        for i in range(packets // 4):
            t0 = time.perf_counter()
            dp.receive(trunk, bytearray(discover), 10)
            wait_returned(i + 1)
            times.append((time.perf_counter() - t0) * 1e6)
        base = svc.counts["returned"]
        # Rate: a window in flight.
        t0 = time.perf_counter()
        for i in range(packets):
            dp.receive(trunk, bytearray(discover), 10)
            if i - (svc.counts["returned"] - base) >= window:
                wait_returned(base + i - window + 1)
        wait_returned(base + packets)
        rate = packets / (time.perf_counter() - t0)
        # For scale: a frame routed by the DR through the stages, in the same datapath.
        frame = bytes(Ether(src=client, dst="02:00:00:10:00:01") / IP(src="172.16.10.11", dst="172.16.20.13") / UDP())
        dp.receive(trunk, bytearray(frame), 10)
        t1 = time.perf_counter()
        for _ in range(packets):
            dp.receive(trunk, bytearray(frame), 10)
        routed = (time.perf_counter() - t1) / packets * 1e6
        alg_times = _alg_round_trips(dp, server, serve, path, packets // 4, sent)
    finally:
        relay.terminate()
        relay.wait(timeout=5)
        server.close()
        ep.close()
    times.sort()
    print(f"service transport (DHCP relay, {len(times)} round trips, {packets} at a window of {window}):")
    print(f"  round trip  p50 {statistics.median(times):8.1f} us   p99 {times[int(len(times) * 0.99)]:8.1f} us")
    print(f"  rate        {rate:10.0f} packets/s through one service")
    print(f"  for scale: a DR-routed frame through the stages {routed:.1f} us "
          f"(round trip / routed = {statistics.median(times) / routed:.1f}x)")  # fmt: skip
    counts = svc.counts
    if counts["timed_out"] or counts["failed_closed"]:
        print(f"  (lost on the way: {counts['timed_out']} timed out, {counts['failed_closed']} failed closed)")
    for what, t in alg_times.items():
        t.sort()
        print(f"  FTP ALG, {what:<24} p50 {statistics.median(t):8.1f} us   p99 {t[int(len(t) * 0.99)]:8.1f} us")
    return 0


def _alg_round_trips(dp: Any, server: Any, serve: Any, path: Path, n: int, sent: list[int]) -> dict[str, list[float]]:
    """Segments of one FTP control connection through the ALG process: NOOPs, then PORTs."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import ARP, Ether
    from scapy.packet import Raw

    import topologies

    h = topologies.plan("edge-basic")["hosts"]
    alg = subprocess.Popen(
        [sys.executable, "-m", "gateway.alg.ftp", "--config", str(path), "--service", "ftp-alg"],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while not server.services["ftp-alg"].conn:
            serve(0.05)
            if time.monotonic() > deadline:
                raise RuntimeError("the FTP ALG did not register")
        trunk, uplink = dp.model.ports["trunk"], dp.model.ports["uplink"]
        t1, ext = h["t1"], h["ext1"]
        sr_mac = "02:00:00:cb:00:01"
        dr_mac = "02:00:00:10:00:01"
        ext_arp = Ether(src=ext["mac"], dst=sr_mac) / ARP(
            op=2, hwsrc=ext["mac"], psrc="203.0.113.10", hwdst=sr_mac, pdst="203.0.113.1"
        )
        dp.receive(uplink, bytearray(bytes(ext_arp)), None)
        t1_arp = Ether(src=t1["mac"], dst="ff:ff:ff:ff:ff:ff") / ARP(
            op=1, hwsrc=t1["mac"], psrc="172.16.10.11", pdst="172.16.10.1"
        )
        dp.receive(trunk, bytearray(bytes(t1_arp)), 10)

        def client(flags: str, seq: int, data: bytes = b"") -> bytearray:
            pkt = Ether(src=t1["mac"], dst=dr_mac) / IP(src="172.16.10.11", dst="203.0.113.10")
            return bytearray(bytes(pkt / TCP(sport=40100, dport=21, flags=flags, seq=seq, ack=1) / Raw(data)))

        dp.receive(trunk, client("S", 999), 10)
        syn_ack = Ether(src=ext["mac"], dst=sr_mac) / IP(src="203.0.113.10", dst="203.0.113.64")
        dp.receive(uplink, bytearray(bytes(syn_ack / TCP(sport=21, dport=40100, flags="SA", seq=0, ack=1000))), None)
        dp.receive(trunk, client("A", 1000), 10)
        seq, out = 1000, {}
        for what, line in (("NOOP (returned as it came)", lambda i: b"NOOP\r\n"),
                           ("PORT (EXPECT, rewritten)", lambda i: b"PORT 172,16,10,11,%d,%d\r\n" % (160 + i // 256, i % 256))):  # fmt: skip
            times = []
            for i in range(n):
                data = line(i)
                frame = client("PA", seq, data)  # (scapy is slow: built before the clock starts)
                before = len(sent)
                t0 = time.perf_counter()
                dp.receive(trunk, frame, 10)
                while len(sent) == before:
                    serve(1.0)
                times.append((time.perf_counter() - t0) * 1e6)
                seq += len(data)
            out[what] = times
        return out
    finally:
        alg.terminate()
        alg.wait(timeout=5)
