"""Gateway configuration: YAML in, validated dataclasses out.

Where this sits: read once at start (``python -m gateway --config FILE``); the
datapath builds its tables from the result.  ``schema.py`` is the node
schema (ports, instances, routers, tables, cache, io), ``routers.py`` the routers (halves, transit,
HA), ``kernel.py`` the kernel transport, ``rules.py`` the NAT
and firewall rule grammar (also used by the control commands), ``reader.py``
the field reader that makes every error name the file, the field path and
the offending value.  :class:`ConfigError` is the only exception that leaves
this package.
"""

from __future__ import annotations

from gateway.config.reader import ConfigError, Reader, derived_mac
from gateway.config.routers import (
    HaConfig,
    HaPeer,
    RouteConfig,
    RouterConfig,
    RouterHalf,
    RouterPortConfig,
    TransitConfig,
)
from gateway.config.rules import parse_dnat, parse_fw_rule, parse_nat, parse_one_to_one, parse_range, parse_snat
from gateway.config.schema import (
    PORT_ROLES,
    CacheConfig,
    Config,
    InstanceConfig,
    PortConfig,
    Record,
    TablesConfig,
    build,
    load,
    parse,
)

__all__ = [
    "PORT_ROLES",
    "CacheConfig",
    "Config",
    "ConfigError",
    "HaConfig",
    "HaPeer",
    "InstanceConfig",
    "PortConfig",
    "Reader",
    "Record",
    "RouteConfig",
    "RouterConfig",
    "RouterHalf",
    "RouterPortConfig",
    "TablesConfig",
    "TransitConfig",
    "build",
    "derived_mac",
    "load",
    "parse",
    "parse_dnat",
    "parse_fw_rule",
    "parse_nat",
    "parse_one_to_one",
    "parse_range",
    "parse_snat",
]
