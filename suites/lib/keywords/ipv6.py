"""Keywords: IPv6 as hosts see it (router advertisements, ping -6, hop limit, path MTU)."""

from __future__ import annotations

from robot.api import logger
from robotlibcore import keyword

from suites.lib import traffic
from suites.lib.expect import poll
from suites.lib.ipv6 import path_mtu, ra_route, send_big
from suites.lib.keywords.context import Context
from suites.lib.plans import addr6, link_local


class Ipv6Keywords:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.transfer: dict | None = None  # type: ignore[type-arg]

    def _addr6(self, who: str) -> str:
        """A host's IPv6 address, a router port's (``t1-dr6:web``), or an address as given."""
        if who in self.ctx.plan["hosts"]:
            return addr6(self.ctx.plan, who)
        return self.ctx.address(who)

    @keyword("${host:[\\w-]+} has an IPv6 default route from ${port:[\\w.:-]+}")
    def default_route_from(self, host: str, port: str) -> None:
        """The host learned its default router from an RA: the link-local address of ``port``
        (``t1-dr:web``: the DR's port on web), which only its MAC determines."""
        name, _, rest = port.partition("-")
        half, _, segment = rest.partition(":")
        mac = next(
            p["mac"]
            for gw in self.ctx.plan["gateways"].values()
            for r in gw.get("routers", [])
            if r["name"] == name and half in r
            for p in r[half]["ports"]
            if p["instance"] == segment
        )
        logger.info(ra_route(self.ctx.lab.host(host), f"via {link_local(mac)}"))

    @keyword("${src:[\\w-]+} pings ${dst:[\\w.:-]+} over IPv6")
    def pings6(self, src: str, dst: str) -> None:
        if self.ctx.plan["hosts"].get(src, {}).get("instance") and not self.ctx.plan["hosts"][src].get("router"):
            ra_route(self.ctx.lab.host(src))  # a tenant: its default route comes from an RA
        self.ctx.last_ping = traffic.ping(self.ctx.lab.host(src), self._addr6(dst), count=3, wait=0.5)
        logger.info(self.ctx.last_ping.text)

    @keyword("${src:[\\w-]+} reaches ${dst:[\\w.:-]+} over IPv6 through ${hops:\\d+} routed hop(s)")
    def reaches6(self, src: str, dst: str, hops: str) -> None:
        self.pings6(src, dst)
        result = self.ctx.last_ping
        assert result is not None
        if not result.ok:
            raise AssertionError(f"ping -6 failed:\n{result.text}")
        if not result.ttls or any(t != 64 - int(hops) for t in result.ttls):
            raise AssertionError(f"expected every reply with hop limit {64 - int(hops)}, got {result.ttls}")

    @keyword("${src:[\\w-]+} reaches ${dst:[\\w.:-]+} over IPv6 within ${s:\\d+} s")
    def reaches6_within(self, src: str, dst: str, s: str) -> None:
        """A precondition, not a measurement: ping -6 until three in a row are answered (a
        gateway that just took its addresses back may need a moment; the tests that measure
        such moments say so themselves)."""

        def answered() -> bool:
            self.pings6(src, dst)
            return self.ctx.last_ping is not None and self.ctx.last_ping.ok

        poll(answered, timeout=int(s), what=f"{src} reaching {dst} over IPv6")

    @keyword("Hop limit ${n:\\d+} from ${src:[\\w-]+} to ${dst:[\\w.:-]+} expires at ${router:[\\w.:-]+}")
    def hop_limit_expires(self, n: str, src: str, dst: str, router: str) -> None:
        ra_route(self.ctx.lab.host(src))
        result = traffic.ping(self.ctx.lab.host(src), self._addr6(dst), count=1, ttl=int(n))
        logger.info(result.text)
        want = self._addr6(router)
        if not any(s.rstrip(":") == want and "hop limit" in t.lower() for s, t in result.errors):
            raise AssertionError(f"no time exceeded from {want}; ping said:\n{result.text}")

    @keyword("the ping gets no reply")
    def no_reply(self) -> None:
        result = self.ctx.last_ping
        if result is None or result.received:
            raise AssertionError(f"a reply came back:\n{result.text if result else ''}")

    @keyword("${src:[\\w-]+} sends ${kib:\\d+} KiB over TCP to ${dst:[\\w-]+} over IPv6")
    def tcp6(self, src: str, kib: str, dst: str) -> None:
        ra_route(self.ctx.lab.host(src))
        self.transfer = traffic.tcp_transfer(
            self.ctx.lab.host(src), self.ctx.lab.host(dst), addr6(self.ctx.plan, dst), nbytes=int(kib) * 1024, port=5017
        )
        if self.transfer["client"]["sha256"] != self.transfer["server"]["sha256"]:
            raise AssertionError(f"the bytes differ: {self.transfer}")

    @keyword("the far side saw ${host:[\\w-]+}'s own IPv6 address")
    def saw_own_address(self, host: str) -> None:
        seen = (self.transfer or {}).get("server", {}).get("peer")
        if seen != addr6(self.ctx.plan, host):
            raise AssertionError(f"the server saw {seen}, not {host}'s {addr6(self.ctx.plan, host)} (translated?)")

    @keyword("${src:[\\w-]+} sends ${size:\\d+}-byte pings to ${dst:[\\w-]+} over IPv6")
    def big_pings(self, src: str, size: str, dst: str) -> None:
        host = self.ctx.lab.host(src)
        ra_route(host)
        traffic.ping(host, addr6(self.ctx.plan, dst), count=1)  # a small one first: the flow is tracked
        logger.info(send_big(host, addr6(self.ctx.plan, dst), int(size)))

    @keyword("${src:[\\w-]+} has learned a path MTU of ${mtu:\\d+} towards ${dst:[\\w-]+}")
    def learned_mtu(self, src: str, mtu: str, dst: str) -> None:
        got = path_mtu(self.ctx.lab.host(src), addr6(self.ctx.plan, dst))
        if got != int(mtu):
            raise AssertionError(f"{src}'s path MTU towards {dst}: {got}, want {mtu} (no packet too big reached it?)")
