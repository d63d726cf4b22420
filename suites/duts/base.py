"""The DUT driver interface."""

from __future__ import annotations

from typing import Any


class GatewayHandle:
    """What suites may ask of a running gateway."""

    capabilities: frozenset[str] = frozenset()

    def show(self, what: str = "summary") -> Any:
        raise NotImplementedError(f"this gateway cannot show {what!r}")

    def alive(self) -> bool:
        raise NotImplementedError


class DutDriver:
    name = "base"
    node_cls: Any = None

    def __init__(self, lab: Any) -> None:
        self.lab = lab

    def start(self, gateway: str) -> GatewayHandle:
        raise NotImplementedError

    def stop(self, gateway: str) -> None:
        raise NotImplementedError
