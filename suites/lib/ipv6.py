"""What a dual-stack host's own stack learned: its default router from router
advertisements, the path MTU it cached from a packet too big.  Shared by the
e2e tests and the Robot keywords (``keywords/ipv6.py``).
"""

from __future__ import annotations

import re
from typing import Any

from suites.lib.expect import poll
from topologies.nodes import run


def default_route(host: Any) -> str:
    return run(host, ["ip", "-6", "route", "show", "default"], check=False).stdout


def ra_route(host: Any, via: str = "", timeout: float = 25.0) -> str:
    """The host's IPv6 default route once it came from a router advertisement (via ``via``);
    raises if none did within ``timeout`` (the router advertises every 10 s at most)."""
    return str(
        poll(
            lambda: (lambda text: text if "proto ra" in text and via in text else "")(default_route(host)),
            timeout=timeout,
            what=f"{host.name}'s IPv6 default route from a router advertisement{' via ' + via if via else ''}",
        )
    )


def path_mtu(host: Any, dst: str) -> int | None:
    """The path MTU ``host`` has cached towards ``dst`` (from a packet too big or ICMP
    fragmentation needed), if any."""
    family = ["-6"] if ":" in dst else ["-4"]
    m = re.search(r"mtu (\d+)", run(host, ["ip", *family, "route", "get", dst], check=False).stdout)
    return int(m.group(1)) if m else None


def send_big(host: Any, dst: str, size: int) -> str:
    """Two pings of ``size`` bytes of payload, never fragmented by the host; what ping said."""
    res = run(host, ["ping", "-n", "-c", "2", "-i", "0.3", "-W", "1", "-M", "do", "-s", str(size), dst], check=False)
    return res.stdout + res.stderr
