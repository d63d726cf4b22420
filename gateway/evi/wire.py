"""The EVI control protocol on the wire: UDP ``EVI_PORT`` between tunnel addresses.

Where this sits: used by the control process (``evi/agent.py``).  A message
is ``MAGIC``, an HMAC-SHA256 of the body under the site's key, and the body:
a JSON object with a ``type`` (``register``, ``sites``, ``macs``).
:func:`open_message` refuses anything else: :class:`AuthError` for a bad
digest, :class:`BadMessage` for the rest.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from gateway.evi import EVI_PORT
from gateway.headers import IPPROTO_UDP, IPv4, Udp, ip_int, ip_str

MAGIC = b"EVI1"
DIGEST = 32


class AuthError(PermissionError):
    pass


@dataclass
class Site:
    site: int
    address: int
    mtu: int
    netids: list[int]
    heard: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"site": self.site, "address": ip_str(self.address), "mtu": self.mtu, "netids": self.netids}


class BadMessage(ValueError):
    pass


def parse_site(value: Any) -> Site:
    if not isinstance(value, dict):
        raise BadMessage("a site is an object")
    site, addr, mtu, netids = value.get("site"), value.get("address"), value.get("mtu"), value.get("netids")
    if not isinstance(site, int) or not 1 <= site <= 65535 or isinstance(site, bool):
        raise BadMessage(f"site {site!r}")
    if not isinstance(mtu, int) or not 576 <= mtu <= 9000 or isinstance(mtu, bool):
        raise BadMessage(f"mtu {mtu!r}")
    if not isinstance(netids, list) or len(netids) > 4096 or not all(isinstance(n, int) for n in netids):
        raise BadMessage("netids")
    if not isinstance(addr, str):
        raise BadMessage(f"address {addr!r}")
    try:
        address = ip_int(addr)
    except ValueError:
        raise BadMessage(f"address {addr!r}") from None
    return Site(site, address, mtu, sorted(set(netids)))


def seal(key: bytes, body: dict[str, Any]) -> bytes:
    data = json.dumps(body, separators=(",", ":")).encode()
    return MAGIC + hmac.new(key, data, hashlib.sha256).digest() + data


def open_message(key: bytes, payload: bytes) -> dict[str, Any]:
    if len(payload) < len(MAGIC) + DIGEST or not payload.startswith(MAGIC):
        raise BadMessage("not an EVI control message")
    digest, data = payload[len(MAGIC) : len(MAGIC) + DIGEST], payload[len(MAGIC) + DIGEST :]
    if not hmac.compare_digest(digest, hmac.new(key, data, hashlib.sha256).digest()):
        raise AuthError("bad authentication")
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        raise BadMessage("not JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        raise BadMessage("not an object with a type")
    return body


def packet(src: int, dst: int, payload: bytes) -> bytes:
    """The IPv4/UDP packet carrying one message from ``src`` to ``dst``."""
    udp = Udp(EVI_PORT, EVI_PORT).serialize(payload, src, dst)
    return IPv4(src=src, dst=dst, proto=IPPROTO_UDP, ttl=64).serialize(len(udp)) + udp
