"""Keywords: connections across an SR failover, as the hosts see them (DUT-neutral).

A held connection (TCP, or a UDP flow) is opened through the active SR and left idle;
after the failover the far side speaks first: only an SR that knows the connection lets
that packet in.  A stream is a transfer running while the SR fails: it arrives whole, or
the connection broke.  The replication channel is cut on the transit switch, by the
protocol and port the DUT's handle names (``GatewayHandle.replication``).
"""

from __future__ import annotations

import time
from typing import Any

from robot.api import logger
from robotlibcore import keyword

from suites.lib import traffic
from suites.lib.expect import poll
from suites.lib.keywords.context import Context
from suites.lib.plans import addr6

STREAM_BYTES = 2 << 20
STREAM_PORT = 5701


class FailoverKeywords:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.held: dict[str, traffic.HeldConnection] = {}
        self.streams: dict[str, traffic.TcpStream] = {}
        self.cut: list[str] = []

    # -- held connections -----------------------------------------------------------------
    def _hold(self, kind: str, client: str, server: str) -> None:
        lab = self.ctx.lab
        old = self.held.pop(kind, None)
        if old is not None:
            old.close()
        port = 5601 if kind == "tcp" else 5602
        self.held[kind] = traffic.HeldConnection(
            lab.host(client), lab.host(server), self.ctx.resolve(server), port=port, udp=kind == "udp"
        )
        logger.info(f"{server} sees the held {kind} connection from {self.held[kind].peer}")

    @keyword("${client:[\\w-]+} holds a TCP connection open to ${server:[\\w-]+}")
    def hold_connection(self, client: str, server: str) -> None:
        self._hold("tcp", client, server)

    @keyword("${client:[\\w-]+} holds a UDP flow open to ${server:[\\w-]+}")
    def hold_udp(self, client: str, server: str) -> None:
        self._hold("udp", client, server)

    @keyword("${server:[\\w-]+} sees the held connections from the SNAT pool")
    def held_from_pool(self, server: str) -> None:
        pool = self.ctx.plan["nat"]["pool"]
        seen = {kind: held.peer for kind, held in self.held.items()}
        if not seen or any(peer is None or peer[0] not in pool for peer in seen.values()):
            raise AssertionError(f"{server} sees {seen}, expected addresses of the pool {pool}")

    def _speak(self, kind: str) -> traffic.HeldConnection:
        held = self.held.pop(kind, None)
        if held is None:
            raise AssertionError(f"no {kind} connection is held")
        got, echo = held.speak(timeout=10)
        logger.info(f"the client got {got!r}; the server got back {echo!r} from {held.answered_from}")
        if got != traffic.HELD_MARKER or echo != traffic.HELD_MARKER:
            raise AssertionError(f"the client got {got!r} and the server got back {echo!r}: it did not survive")
        return held

    @keyword("${server:[\\w-]+} speaks first on the held connection and ${client:[\\w-]+} hears it")
    def speaks_first(self, server: str, client: str) -> None:
        """The far side's packet is the first the SR sees of the connection since the failover."""
        self._speak("tcp")

    @keyword("${server:[\\w-]+} speaks first on the UDP flow and hears ${client:[\\w-]+} from the same endpoint")
    def udp_speaks_first(self, server: str, client: str) -> None:
        held = self._speak("udp")
        if held.answered_from != held.peer:
            raise AssertionError(f"the flow came from {held.peer}, its answer from {held.answered_from}: a new mapping")

    @keyword("the held connections are closed")
    def close_held(self) -> None:
        for held in self.held.values():
            held.close()
        self.held.clear()

    # -- streams ------------------------------------------------------------------------
    @keyword("${client:[\\w-]+} streams to ${server:[\\w-]+} for ${s:\\d+} s")
    def stream(self, client: str, server: str, s: str) -> None:
        lab = self.ctx.lab
        self.streams[f"{client}>{server}"] = traffic.TcpStream(
            lab.host(client), lab.host(server), self.ctx.resolve(server), STREAM_PORT, float(s), STREAM_BYTES
        )

    @keyword("${client:[\\w-]+} streams to the port forward ${rule:[\\w-]+} for ${s:\\d+} s")
    def stream_forward(self, client: str, rule: str, s: str) -> None:
        lab = self.ctx.lab
        fwd = self.ctx.plan["nat"]["dnat"][rule]
        self.streams[f"{client}>{rule}"] = traffic.TcpStream(
            lab.host(client), lab.host(fwd["host"]), fwd["public"], fwd["port"], float(s), STREAM_BYTES,
            listen_port=fwd["to_port"],
        )  # fmt: skip

    @keyword("${client:[\\w-]+} streams to ${server:[\\w-]+} over IPv6 for ${s:\\d+} s")
    def stream6(self, client: str, server: str, s: str) -> None:
        lab = self.ctx.lab
        self.streams[f"{client}>{server}/6"] = traffic.TcpStream(
            lab.host(client), lab.host(server), addr6(self.ctx.plan, server), STREAM_PORT + 1, float(s), STREAM_BYTES
        )

    @keyword("the stream from ${client:[\\w-]+} to ${server:[\\w-]+} arrived whole")
    def stream_whole(self, client: str, server: str) -> None:
        self._whole(f"{client}>{server}")

    @keyword("the IPv6 stream from ${client:[\\w-]+} to ${server:[\\w-]+} arrived whole")
    def stream6_whole(self, client: str, server: str) -> None:
        self._whole(f"{client}>{server}/6")

    def _whole(self, key: str) -> None:
        stream = self.streams.pop(key, None)
        if stream is None:
            raise AssertionError(f"no stream {key} was started")
        res = stream.result()
        logger.info(str(res))
        cli, srv = res["client"], res["server"]
        if cli.get("error") or cli.get("bytes") != STREAM_BYTES or srv.get("sha256") != cli.get("sha256"):
            raise AssertionError(f"the stream broke: client {cli}, server {srv}")

    @keyword("the streams are stopped")
    def stop_streams(self) -> None:
        for stream in self.streams.values():
            stream.close()
        self.streams.clear()

    # -- the SRs ----------------------------------------------------------------------------
    @keyword("${edge:[\\w-]+} crashes")
    def crashes(self, edge: str) -> None:
        self.ctx.lab.gateway(edge).crash()

    @keyword("${edge:[\\w-]+} comes back")
    def comes_back(self, edge: str) -> None:
        self.ctx.lab.stop_gateway(edge)
        self.ctx.lab.start_gateway(edge)

    @keyword("${src:[\\w-]+} reaches ${dst:[\\w-]+} again within ${s:\\d+} s")
    def reaches_again(self, src: str, dst: str, s: str) -> None:
        host, addr = self.ctx.lab.host(src), self.ctx.resolve(dst)
        poll(lambda: traffic.ping(host, addr, count=1, wait=0.5).ok, timeout=int(s), what=f"{src} reaching {dst}")

    @keyword("the SRs have had ${s:\\d+} s to catch up")
    def catch_up(self, s: str) -> None:
        """Time for the replication to notice what it missed (its peers' state is not visible
        from the hosts: the test after this says whether it caught up)."""
        time.sleep(int(s))

    def _replication(self, switch: str) -> tuple[str, str]:
        gw = self.ctx.lab.gateway(next(iter(self.ctx.plan["gateways"])))  # (one DUT: one driver)
        rep: Any = getattr(gw, "replication", None)
        if rep is None:
            raise AssertionError(f"{self.ctx.dut} names no replication channel (GatewayHandle.replication)")
        proto, port = rep
        return switch, f"{proto},tp_dst={port}"

    @keyword("the replication between the SRs is cut on ${switch:[\\w-]+}")
    def cut_replication(self, switch: str) -> None:
        from topologies.nodes import run_root

        sw, match = self._replication(switch)
        run_root(["ovs-ofctl", "add-flow", sw, f"priority=100,{match},actions=drop"])
        self.cut.append(switch)

    @keyword("the replication between the SRs is restored on ${switch:[\\w-]+}")
    def restore_replication(self, switch: str) -> None:
        from topologies.nodes import run_root

        if switch in self.cut:
            sw, match = self._replication(switch)
            run_root(["ovs-ofctl", "--strict", "del-flows", sw, f"priority=100,{match}"])
            self.cut.remove(switch)
