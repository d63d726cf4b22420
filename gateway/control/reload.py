"""Config reload: the file read again, what may change at run time applied, all or nothing.

Where this sits: the control command ``reload`` (``commands.py``) and SIGHUP
(``python -m gateway``) call :func:`reload`.  The file the daemon was started
with (or ``path``) is parsed and checked as at start (the same located
errors), and a model is built from it on the side; a config that fails is
refused with its error and nothing changes — the running config stays in
force.

What a reload changes (per router): its static routes (DR and SR), its
firewall rules, its NAT rules, the connection limit and timeouts, and the
cache settings.  A rule that is the same in both keeps its object (its
counters, and the sessions it created); a removed NAT rule's sessions end on
their next packet, as with ``nat del``.  Rules added at run time by control
commands are not in the file: a reload removes them (the file is the truth).
Anything else that differs (ports, instances, routers, HA, EVI, services,
the kernel transport, tables) needs a restart: the reload is refused and
names what differs.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from gateway import config
from gateway.build import build
from gateway.epoch import Epoch
from gateway.gcpolicy import young_garbage
from gateway.model import add_route
from gateway.services.conntrack import DEFAULT_TIMEOUTS
from gateway.services.rules import FirewallConfig, NatConfig

if TYPE_CHECKING:
    from gateway.datapath import Datapath


class ReloadRefused(Exception):
    """The new config cannot be applied; the message is for the user."""


def _bare(half: Any) -> Any:
    if half is None:
        return None
    return dataclasses.replace(
        half,
        routes=[],
        nat=NatConfig() if half.nat is not None else None,
        firewall=FirewallConfig() if half.firewall is not None else None,
    )


def _fixed(cfg: config.Config) -> dict[str, Any]:
    """What only a restart can change, field by field."""
    out = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.name not in ("source", "cache")}
    out["routers"] = [dataclasses.replace(rc, dr=_bare(rc.dr), sr=_bare(rc.sr)) for rc in cfg.routers]
    return out


def _key(rule: Any) -> tuple[Any, ...]:
    return tuple((k, str(v)) for k, v in sorted(rule.to_dict().items()) if k not in ("hits",))


def _merge(old: list[Any], new: list[Any]) -> tuple[list[Any], list[str], list[str]]:
    """The new rule list, keeping the old object of a rule that did not change; added, removed names."""
    by_key = {_key(r): r for r in old}
    merged = [by_key.pop(_key(r), r) for r in new]
    kept = {id(r) for r in merged}
    removed = [r for r in old if id(r) not in kept]
    for r in removed:
        r.active = False
    added = [r.name for r in merged if r not in old]
    return merged, added, [r.name for r in removed]


def reload(dp: Datapath, path: str | None = None) -> dict[str, Any]:
    source = path or dp.cfg.source
    new = config.load(source)  # ConfigError: refused with its located message
    # What only the model checks (next hops on connected subnets ...), on a model built on
    # the side: its objects refer to each other, and the daemon never runs a full collection.
    with young_garbage():
        build(new, Epoch())
    old_fixed, new_fixed = _fixed(dp.cfg), _fixed(new)
    differ = [name for name in old_fixed if old_fixed[name] != new_fixed[name]]
    if differ:
        if "routers" in differ:
            names = [
                f"routers[{i}] ({rc.name})"
                for i, rc in enumerate(new.routers)
                if i >= len(dp.cfg.routers) or old_fixed["routers"][i] != new_fixed["routers"][i]
            ] or ["routers"]
            differ = [d for d in differ if d != "routers"] + names
        raise ReloadRefused(f"{source}: these differ and need a restart: {', '.join(differ)} (nothing was changed)")
    changed: dict[str, Any] = {}
    for rc_old, rc in zip(dp.cfg.routers, new.routers, strict=True):
        for kind in ("dr", "sr"):
            half, old_half = getattr(rc, kind), getattr(rc_old, kind)
            if half is None:
                continue
            router = next(r for r in dp.model.routers if r.name == rc.name and r.kind == kind)
            report = _apply(dp, router, old_half, half)
            if report:
                changed[router.label] = report
    c = new.cache
    if c != dp.cfg.cache:
        dp.cache.enabled, dp.cache.capacity, dp.cache.idle_timeout = c.enabled, c.capacity, c.idle_timeout
        dp.cache.flush()
        changed["cache"] = dataclasses.asdict(c)
    dp.cfg = new
    return {"reloaded": source, "changed": changed}


def _apply(dp: Datapath, router: Any, old: Any, new: Any) -> dict[str, Any]:
    report: dict[str, Any] = {}
    before = {(r.prefix, r.via) for r in old.routes}
    after = {(r.prefix, r.via) for r in new.routes}
    for prefix, _via in sorted(before - after, key=str):
        router.fib.remove(int(prefix.network_address), prefix.prefixlen)
    for prefix, via in sorted(after - before, key=str):
        add_route(dp.model, router, prefix, [int(via)])
    if before != after:
        report["routes"] = {
            "added": sorted(f"{p} via {v}" for p, v in after - before),
            "removed": sorted(f"{p} via {v}" for p, v in before - after),
        }
    svc = router.services
    if svc is None:
        return report
    if new.firewall is not None:
        rules, added, removed = _merge(svc.fw.rules, new.firewall.rules)
        if added or removed or [r.name for r in rules] != [r.name for r in svc.fw.rules]:
            svc.fw.replace(rules)
            report["firewall"] = {"added": added, "removed": removed}
    if new.nat is not None:
        nat = svc.nat
        out: dict[str, Any] = {}
        for table in ("snat", "dnat", "one_to_one"):
            rules, added, removed = _merge(getattr(nat, table), getattr(new.nat, table))
            setattr(nat, table, rules)
            if added or removed:
                out[table] = {"added": added, "removed": removed}
        if out:
            nat._refresh()
            report["nat"] = out
        if svc.ct.limit != new.nat.max_sessions or svc.ct.timeouts != dict(DEFAULT_TIMEOUTS, **new.nat.timeouts):
            svc.ct.limit = new.nat.max_sessions
            svc.ct.timeouts = dict(DEFAULT_TIMEOUTS, **new.nat.timeouts)
            report["sessions"] = {"max_sessions": svc.ct.limit, "timeouts": new.nat.timeouts}
    return report
