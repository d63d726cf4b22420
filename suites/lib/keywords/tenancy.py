"""Keywords: two tenants with the same subnets behind one edge (multi-tenant), judged from the
hosts and the provider router."""

from __future__ import annotations

from robot.api import logger
from robotlibcore import keyword

from suites.lib import tenancy, traffic
from suites.lib.expect import poll
from suites.lib.keywords.context import Context


class TenancyKeywords:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def _pool(self, tenant: str) -> str:
        return str(self.ctx.plan["tenants"][tenant]["pool"])

    @keyword("the provider has a BGP session with ${sr:[\\d.]+} and routes ${tenant:\\w+}'s pool to it")
    def session_and_pool(self, sr: str, tenant: str) -> None:
        ext1 = self.ctx.lab.host("ext1")
        poll(lambda: sr in tenancy.established(ext1), timeout=30, what=f"the BGP session with {sr} Established")
        prefix = f"{self._pool(tenant)}/32"
        poll(lambda: tenancy.next_hops(ext1, prefix) == [sr], timeout=15, what=f"{prefix} routed via {sr}")

    @keyword("${hosts} reach the provider from their own tenants' pools")
    def from_own_pools(self, hosts: str) -> None:
        names = hosts.split()
        want = {self._pool(self.ctx.plan["hosts"][h]["instance"].split("-")[0]) for h in names}
        seen = tenancy.sources_seen(self.ctx.lab, names)
        logger.info(f"the provider saw {sorted(seen)}; the pools are {sorted(want)}")
        if seen != want:
            raise AssertionError(f"the provider saw {sorted(seen)}, not each tenant's pool {sorted(want)}")

    @keyword("${sender:\\w+} reaches ${address:[\\d.]+} at ${mine:\\w+} and never at ${theirs:\\w+}")
    def stays_in_tenant(self, sender: str, address: str, mine: str, theirs: str) -> None:
        lab = self.ctx.lab
        echoes = {h: traffic.UdpEcho(lab.host(h), 7009) for h in (mine, theirs)}
        try:
            got = traffic.udp_probe(lab.host(sender), address, 7009, sport=41002)
        finally:
            seen = {h: e.stop() for h, e in echoes.items()}
        logger.info(f"{sender} -> {address}: answered {got.get('answer') is not None}; peers seen {seen}")
        if got.get("answer") is None or not seen[mine]:
            raise AssertionError(f"{sender} did not reach {address} at {mine}: {got}, {seen}")
        if seen[theirs]:
            raise AssertionError(f"{sender}'s packet reached the other tenant's {theirs}: {seen[theirs]}")

    @keyword("while ${flooder:\\w+} floods SYNs, ${other:\\w+} moves data to the provider")
    def flood_isolation(self, flooder: str, other: str) -> None:
        lab = self.ctx.lab
        gw = lab.gateway("edge1")
        before = gw.counters()["dropped"]["nat"]
        flood = tenancy.syn_flood(lab, flooder)
        try:
            poll(lambda: gw.counters()["dropped"]["nat"] - before > 100, timeout=10, what=f"{flooder}'s quota full")
            for _ in range(3):
                moved = traffic.tcp_transfer(lab.host(other), lab.host("ext1"), tenancy.PROVIDER, 200_000, 5997)
                if moved["server"]["sha256"] != moved["client"]["sha256"]:
                    raise AssertionError(f"{other}'s transfer arrived damaged: {moved}")
            if flood.poll() is not None:
                raise AssertionError("the flood ended before the transfers did: they proved nothing")
            logger.info(f"refused during the flood: {gw.counters()['dropped']['nat'] - before}")
        finally:
            flood.kill()
            flood.communicate()

    @keyword("${host:\\w+} reaches the provider again once the flood's connections expire")
    def recovers(self, host: str) -> None:
        poll(lambda: tenancy.reaches(self.ctx.lab, host), timeout=40, interval=2, what=f"{host} reaching the provider")
