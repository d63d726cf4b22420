"""Reading a parsed YAML document field by field, with located errors.

Where this sits: the base of the config schema (``schema.py``), of the rule
grammar (``rules.py``) and of the control commands that add rules at run
time: each reads its input with a :class:`Reader`, which names the file (or
``control``), the field path and the offending value in every error, in one
sentence.  :class:`ConfigError` is the only exception that leaves the package.
"""

from __future__ import annotations

import hashlib
import ipaddress
from typing import Any

from gateway.gcpolicy import acyclic
from gateway.headers import mac_bytes


class ConfigError(Exception):
    """A configuration the gateway cannot run; the message is for the user."""


class Reader:
    """Walks the parsed YAML, keeping the field path for error messages."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {path}: {message}")

    def mapping(
        self, value: Any, path: str, required: tuple[str, ...], optional: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"expected a mapping, got {show_value(value)}")
        for key in value:
            if key not in required and key not in optional:
                allowed = ", ".join(required + optional)
                raise self.fail(f"{path}.{key}" if path else str(key), f"unknown field; expected one of: {allowed}")
        for key in required:
            if key not in value:
                raise self.fail(path or "(top level)", f"missing required field '{key}'")
        return value

    def named(self, value: Any, path: str) -> dict[str, Any]:
        """A mapping of user-chosen names to bodies (ports, instances)."""
        if not isinstance(value, dict):
            raise self.fail(path, f"expected a mapping of names, got {show_value(value)}")
        return value

    def sequence(self, value: Any, path: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(path, f"expected a list, got {show_value(value)}")
        return value

    def name(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not value or any(c.isspace() for c in value):
            raise self.fail(path, f"{show_value(value)} is not a name (a non-empty string without spaces)")
        return value

    def integer(self, value: Any, path: str, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(path, f"{show_value(value)} is not an integer in {low}..{high}")
        return value

    def number(self, value: Any, path: str, low: float, high: float = 1e9) -> float:
        # ``not low <= value <= high`` also refuses NaN, which fails every comparison.
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise self.fail(path, f"{show_value(value)} is not a number in {low:g}..{high:g}")
        return float(value)

    def choice(self, value: Any, path: str, choices: tuple[str, ...] | dict[str, Any], what: str) -> str:
        if not isinstance(value, str) or value not in choices:
            raise self.fail(path, f"{show_value(value)} is not {what}")
        return value

    def path(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not value.startswith("/") or "\0" in value or len(value) > 107:
            raise self.fail(path, f"{show_value(value)} is not an absolute path of a unix socket (at most 107 bytes)")
        return value

    def interface(self, value: Any, path: str) -> ipaddress.IPv4Interface:
        try:
            if not isinstance(value, str) or "/" not in value:
                raise ValueError
            return acyclic(ipaddress.IPv4Interface(value))
        except ValueError:
            raise self.fail(
                path, f"{show_value(value)} is not an IPv4 address with a prefix length (like 172.16.10.1/24)"
            ) from None

    def network(self, value: Any, path: str) -> ipaddress.IPv4Network:
        try:
            if not isinstance(value, str):
                raise ValueError
            return acyclic(ipaddress.IPv4Network(value))
        except ValueError:
            raise self.fail(
                path, f"{show_value(value)} is not an IPv4 prefix with host bits zero (like 10.0.0.0/8)"
            ) from None

    def address(self, value: Any, path: str) -> ipaddress.IPv4Address:
        try:
            if not isinstance(value, str):
                raise ValueError
            return ipaddress.IPv4Address(value)
        except ValueError:
            raise self.fail(path, f"{show_value(value)} is not an IPv4 address (like 192.0.2.1)") from None

    def interface6(self, value: Any, path: str) -> ipaddress.IPv6Interface:
        try:
            if not isinstance(value, str) or "/" not in value:
                raise ValueError
            iface = acyclic(ipaddress.IPv6Interface(value))
        except ValueError:
            raise self.fail(
                path, f"{show_value(value)} is not an IPv6 address with a prefix length (like 2001:db8:10::1/64)"
            ) from None
        if iface.ip.is_multicast or iface.ip.is_link_local or iface.ip.is_unspecified or iface.ip.is_loopback:
            raise self.fail(path, f"{iface.ip} is not a unicast global or unique-local address")
        return iface

    def route_prefix(self, value: Any, path: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        """A route's prefix, of either family."""
        try:
            if not isinstance(value, str):
                raise ValueError
            return acyclic(ipaddress.ip_network(value))
        except ValueError:
            raise self.fail(
                path, f"{show_value(value)} is not an IPv4 or IPv6 prefix with host bits zero (like 10.0.0.0/8)"
            ) from None

    def any_address(self, value: Any, path: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        try:
            if not isinstance(value, str):
                raise ValueError
            return ipaddress.ip_address(value)
        except ValueError:
            raise self.fail(path, f"{show_value(value)} is not an IPv4 or IPv6 address") from None

    def mac(self, value: Any, path: str) -> bytes:
        try:
            if not isinstance(value, str):
                raise ValueError(f"{show_value(value)} is not a MAC address (expected like 02:00:00:00:00:01)")
            raw = mac_bytes(value)
        except ValueError as exc:
            raise self.fail(path, str(exc)) from None
        if raw[0] & 1:
            raise self.fail(path, f"{value!r} is a multicast MAC; a router port needs a unicast one")
        return raw


def show_value(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return f"a {type(value).__name__}"
    return repr(value)


def derived_mac(*parts: str) -> bytes:
    """A stable locally administered MAC for a router port with none configured."""
    digest = hashlib.sha256("/".join(parts).encode()).digest()
    return bytes([0x02]) + digest[:5]
