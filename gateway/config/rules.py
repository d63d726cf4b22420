"""The rule grammar: NAT (SNAT pools, port forwards, 1:1) and firewall rules.

Where this sits: read by the config schema (``schema.py``) for an SR's
``nat`` and ``firewall``, and by the control commands for rules added at run
time, so a rule has the same errors in a file and on the socket.  The
records it builds are ``services.rules``'s.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from gateway.config.reader import Reader, show_value
from gateway.services.rules import (
    PROTOS,
    DnatRule,
    FirewallRule,
    NatConfig,
    OneToOne,
    SnatRule,
)

TIMEOUT_KEYS = ("tcp_established", "tcp_transitory", "tcp_closed", "udp", "icmp", "other")


def parse_nat(r: Reader, value: Any, path: str) -> NatConfig:
    body = r.mapping(value, path, (), ("snat", "dnat", "one_to_one", "max_sessions", "timeouts"))
    nat = NatConfig()
    nat.snat = [
        parse_snat(r, v, f"{path}.snat[{i}]", f"snat-{i + 1}")
        for i, v in enumerate(r.sequence(body.get("snat") or [], f"{path}.snat"))
    ]
    nat.dnat = [
        parse_dnat(r, v, f"{path}.dnat[{i}]", f"dnat-{i + 1}")
        for i, v in enumerate(r.sequence(body.get("dnat") or [], f"{path}.dnat"))
    ]
    nat.one_to_one = [
        parse_one_to_one(r, v, f"{path}.one_to_one[{i}]", f"one-to-one-{i + 1}")
        for i, v in enumerate(r.sequence(body.get("one_to_one") or [], f"{path}.one_to_one"))
    ]
    unique_names(r, [*nat.snat, *nat.dnat, *nat.one_to_one], path)
    if "max_sessions" in body:
        nat.max_sessions = r.integer(body["max_sessions"], f"{path}.max_sessions", 1, 10_000_000)
    if body.get("timeouts") is not None:
        tb = r.mapping(body["timeouts"], f"{path}.timeouts", (), TIMEOUT_KEYS)
        nat.timeouts = {k: r.number(v, f"{path}.timeouts.{k}", 1) for k, v in tb.items()}
    publics: dict[int, str] = {}
    for rule in nat.one_to_one:
        if rule.public in publics:
            raise r.fail(path, f"public address {ipaddress.IPv4Address(rule.public)} is used by two 1:1 rules")
        publics[rule.public] = rule.name
    return nat


def parse_snat(r: Reader, value: Any, path: str, default_name: str) -> SnatRule:
    b = r.mapping(value, path, ("source", "pool"), ("ports", "name"))
    pool_raw = b["pool"]
    if isinstance(pool_raw, str) and "/" in pool_raw:
        net = r.network(pool_raw, f"{path}.pool")
        if net.num_addresses > 65536:
            raise r.fail(f"{path}.pool", f"{pool_raw!r} is larger than a /16; name a smaller pool")
        pool = [int(a) for a in net] if net.prefixlen >= 31 else [int(a) for a in net.hosts()]
    else:
        items = pool_raw if isinstance(pool_raw, list) else [pool_raw]
        pool = [int(r.address(a, f"{path}.pool[{i}]")) for i, a in enumerate(items)]
    if not pool:
        raise r.fail(f"{path}.pool", "the pool has no address")
    lo, hi = parse_range(r, b.get("ports", "1024-65535"), f"{path}.ports", 1)
    name = r.name(b.get("name", default_name), f"{path}.name")
    return SnatRule(name, r.network(b["source"], f"{path}.source"), pool, lo, hi)


def parse_dnat(r: Reader, value: Any, path: str, default_name: str) -> DnatRule:
    b = r.mapping(value, path, ("public", "proto", "port", "to"), ("to_port", "name"))
    proto = r.choice(
        b["proto"],
        f"{path}.proto",
        ("tcp", "udp"),
        "tcp or udp (port forwarding needs ports; use one_to_one for a whole address)",
    )
    port = r.integer(b["port"], f"{path}.port", 1, 65535)
    to_port = r.integer(b.get("to_port", port), f"{path}.to_port", 1, 65535)
    name = r.name(b.get("name", default_name), f"{path}.name")
    return DnatRule(
        name,
        int(r.address(b["public"], f"{path}.public")),
        PROTOS[proto] or 0,
        port,
        int(r.address(b["to"], f"{path}.to")),
        to_port,
    )


def parse_one_to_one(r: Reader, value: Any, path: str, default_name: str) -> OneToOne:
    b = r.mapping(value, path, ("public", "private"), ("name",))
    name = r.name(b.get("name", default_name), f"{path}.name")
    return OneToOne(
        name, int(r.address(b["public"], f"{path}.public")), int(r.address(b["private"], f"{path}.private"))
    )


def parse_fw_rule(r: Reader, value: Any, path: str, default_name: str) -> FirewallRule:
    b = r.mapping(value, path, ("action",), ("name", "direction", "proto", "src", "dst", "dport"))
    action = r.choice(b["action"], f"{path}.action", ("allow", "drop", "reject"), "allow, drop or reject")
    direction = r.choice(b.get("direction", "any"), f"{path}.direction", ("in", "out", "any"), "in, out or any")
    proto = r.choice(b.get("proto", "any"), f"{path}.proto", PROTOS, "tcp, udp, icmp, icmpv6 or any")
    dport = None
    if b.get("dport") not in (None, "any"):
        if PROTOS[proto] not in (6, 17):
            raise r.fail(f"{path}.dport", "a destination port needs proto tcp or udp")
        dport = parse_range(r, b["dport"], f"{path}.dport", 1)
    # A rule with addresses is of their family; one without matches both.
    src = r.route_prefix(b["src"], f"{path}.src") if b.get("src") not in (None, "any") else None
    dst = r.route_prefix(b["dst"], f"{path}.dst") if b.get("dst") not in (None, "any") else None
    if src is not None and dst is not None and src.version != dst.version:
        raise r.fail(f"{path}.dst", f"{dst} is not of the source's family (IPv{src.version})")
    family = (src or dst).version if (src or dst) is not None else None  # type: ignore[union-attr]
    if family is not None and PROTOS[proto] in (1, 58) and family != (4 if PROTOS[proto] == 1 else 6):
        raise r.fail(f"{path}.proto", f"{proto} is not a protocol of IPv{family}")
    name = r.name(b.get("name", default_name), f"{path}.name")
    return FirewallRule(name, action, direction, PROTOS[proto], src, dst, dport)


def parse_range(r: Reader, value: Any, path: str, low: int) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        return r.integer(value, path, low, 65535), value
    text = str(value)
    parts = text.split("-")
    try:
        lo, hi = (int(parts[0]), int(parts[-1])) if len(parts) in (1, 2) else (0, -1)
    except ValueError:
        lo, hi = 0, -1
    if not (low <= lo <= hi <= 65535):
        raise r.fail(path, f"{show_value(value)} is not a port or port range like 1024-65535")
    return lo, hi


def unique_names(r: Reader, rules: list[Any], path: str) -> None:
    seen: set[str] = set()
    for rule in rules:
        if rule.name in seen:
            raise r.fail(path, f"two rules are named {rule.name!r}; rule names must be unique")
        seen.add(rule.name)
