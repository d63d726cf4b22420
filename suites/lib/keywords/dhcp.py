"""Keywords: DHCP through the gateway's relay, judged by the leases real clients get."""

from __future__ import annotations

from robot.api import logger
from robotlibcore import keyword

from suites.lib import dhcp
from suites.lib.keywords.context import Context


class DhcpKeywords:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.server: dhcp.Server | None = None

    @keyword("a DHCP server with one range per circuit runs on ${host:[\\w-]+}")
    def server_runs(self, host: str) -> None:
        if self.server is None:
            self.server = dhcp.Server(self.ctx.lab, host)

    @keyword("${client:[\\w-]+} gets an address from the range of its circuit")
    def lease_in_range(self, client: str) -> None:
        assert self.server is not None, "no DHCP server runs: use 'a DHCP server ... runs on HOST' first"
        addr = dhcp.lease(self.ctx.lab, client, self.server)
        lo, hi = dhcp.RANGES[dhcp.CIRCUIT[client]]
        logger.info(f"{client} got {addr}; its circuit {dhcp.CIRCUIT[client]} has {lo}-{hi}")
        if not dhcp.in_range(addr, lo, hi):
            raise AssertionError(
                f"{client} got {addr or 'no lease'}, not one of {lo}-{hi} (circuit {dhcp.CIRCUIT[client]}); "
                f"the server said:\n{self.server.log()[-1200:]}"
            )

    @keyword("the DHCP server stops")
    def server_stops(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
