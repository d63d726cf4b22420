"""Keywords: in-band management, judged from the hosts."""

from __future__ import annotations

from typing import Any

from robot.api import logger
from robotlibcore import keyword

from suites.lib import traffic
from suites.lib.keywords.context import Context


class ManagementKeywords:
    """In-band management, judged from the hosts."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.fetched: dict[str, Any] = {}

    @keyword("${host:[\\w-]+} fetches the management page of ${gw:[\\w-]+}")
    def fetch(self, host: str, gw: str) -> None:
        mgmt = self.ctx.plan["gateways"][gw]["management"]
        port = next(p["port"] for p in mgmt["ports"] if p["proto"] == "tcp" and "port" in p)
        url = f"http://{mgmt['address'].split('/')[0]}:{port}/node"
        self.fetched = traffic.http_get(self.ctx.lab.host(host), url, timeout=2)
        logger.info(f"GET {url} from {host}: {self.fetched}")

    @keyword("${host:[\\w-]+} gets no answer from TCP port ${port:\\d+} of the management address of ${gw:[\\w-]+}")
    def no_answer_from_port(self, host: str, port: str, gw: str) -> None:
        """A port the management address does not admit never reaches the management plane: no
        connection, and no reset from a kernel behind it either (the connection attempt times out)."""
        address = self.ctx.plan["gateways"][gw]["management"]["address"].split("/")[0]
        res = traffic.tcp_attempt(self.ctx.lab.host(host), address, int(port), timeout=2.0)
        logger.info(f"TCP {address}:{port} from {host}: {res}")
        if res["outcome"] != "timeout":
            raise AssertionError(
                f"TCP port {port} of the management address {address} answered {host} ({res}): "
                "a port it does not admit reached the management plane"
            )

    @keyword("the page names ${gw:[\\w-]+}")
    def page_names(self, gw: str) -> None:
        if not self.fetched.get("ok") or self.fetched.get("body", "").strip() != gw:
            raise AssertionError(f"expected the page of {gw}, got {self.fetched}")

    @keyword("the fetch fails")
    def fetch_fails(self) -> None:
        if self.fetched.get("ok"):
            raise AssertionError(f"the management page was served: {self.fetched}")
