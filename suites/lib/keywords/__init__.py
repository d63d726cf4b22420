"""Robot Framework keyword library for edgelab (robotframework-pythonlibcore).

Where this sits: ``suites/robot/*.robot`` import :class:`EdgelabLibrary`
(``suites.lib.keywords.EdgelabLibrary``).
The keywords are thin: they reuse the pytest helpers in ``suites/lib``
(traffic, expect, plans, gateway) so both suites test the same way.
Components by domain: topology, traffic, gateway state.

Names in keywords are plan names: ``t1``, ``ext1``, ``edge1``; a destination
may also be an address.
"""

from __future__ import annotations

from robotlibcore import DynamicCore

from suites.lib.keywords.behaviour import BehaviourKeywords
from suites.lib.keywords.context import Context
from suites.lib.keywords.dhcp import DhcpKeywords
from suites.lib.keywords.evi import EviKeywords
from suites.lib.keywords.failover import FailoverKeywords
from suites.lib.keywords.ftp import FtpKeywords
from suites.lib.keywords.internals import CacheKeywords, HaKeywords
from suites.lib.keywords.ipv6 import Ipv6Keywords
from suites.lib.keywords.management import ManagementKeywords
from suites.lib.keywords.network import GatewayKeywords, TopologyKeywords, TrafficKeywords
from suites.lib.keywords.services import NatKeywords
from suites.lib.keywords.tenancy import TenancyKeywords


class EdgelabLibrary(DynamicCore):
    """Keywords for edgelab acceptance suites.  Import with ``dut=NAME`` (default reference)."""

    ROBOT_LIBRARY_SCOPE = "SUITE"

    def __init__(self, dut: str = "reference") -> None:
        ctx = Context(dut)
        super().__init__(
            [
                TopologyKeywords(ctx),
                TrafficKeywords(ctx),
                GatewayKeywords(ctx),
                NatKeywords(ctx),
                CacheKeywords(ctx),
                HaKeywords(ctx),
                ManagementKeywords(ctx),
                EviKeywords(ctx),
                DhcpKeywords(ctx),
                FtpKeywords(ctx),
                TenancyKeywords(ctx),
                BehaviourKeywords(ctx),
                FailoverKeywords(ctx),
                Ipv6Keywords(ctx),
            ]
        )
