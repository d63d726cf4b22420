"""Control commands: one JSON request in, one JSON response out.

Where this sits: the control server (``server.py``) decodes a request line and
calls :func:`handle`; it never raises.  A request is an object with ``cmd``:

=========  ==========================================================================
cmd        fields
=========  ==========================================================================
ping       -
show       what: ports | instances | mac | arp | nd | npt | fib | counters | drops | traces | summary
                 | cache | ha | nat | conntrack | firewall   (router: NAME, optional)
trace      action: start (count) | show | clear | inject (port, frame: hex)
route      action: add | del, router, half: dr | sr, prefix, via (add only; a list: ECMP)
cache      action: enable | disable | flush | set (capacity, idle_timeout)
conntrack  action: flush, router (optional: every SR's)   (connections and their NAT sessions ended)
nat        action: add (router, kind: snat | dnat | one_to_one, rule: {...}) | del (router, name)
firewall   action: add (router, rule: {...}, position) | del (router, name)
ha         action: takeover | release, router, ip   (what the HA agent asks, by hand)
mirror     action: add (name, port | instance | router, direction: rx | tx | both) | del (name)
reload     -   (the config file read again: routes, firewall, NAT, cache; ``reload.py``)
gc         -   (a full collection: objects found in reference cycles, by type; a leak if any)
=========  ==========================================================================

Response: ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "one sentence"}``.
Every error is counted (``show counters`` -> control.errors; :class:`Control`
holds the counters).  A request that
trips a bug gets an ``internal error`` answer and is counted
(``control.internal_errors``); the daemon carries on.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gateway import gcpolicy
from gateway.bugs import report_bug
from gateway.model import add_route

if TYPE_CHECKING:
    from gateway.datapath import Datapath


class CommandError(Exception):
    pass


SHOW: dict[str, Callable[[Datapath], Any]] = {
    "ports": lambda dp: [p.to_dict() for p in dp.model.ports.values()],
    "instances": lambda dp: [i.to_dict() for i in dp.model.instances.values()],
    "arp": lambda dp: [dict(row, router=r.label) for r in dp.model.routers for row in r.arp.dump(time.monotonic())],
    "npt": lambda dp: {r.label: r.npt.show() for r in dp.model.routers if r.npt is not None},
    "nd": lambda dp: [
        dict(row, router=r.label) for r in dp.model.routers if r.nd is not None for row in r.nd.dump(time.monotonic())
    ],
    "fib": lambda dp: [
        dict(rt.to_dict(), router=r.label, tlr_id=r.tlr_id)
        for r in dp.model.routers
        for fib in (r.fib, r.fib6)
        if fib is not None
        for rt in fib.routes()
    ],
    "drops": lambda dp: dp.pipeline.drops(),
    "traces": lambda dp: list(dp.traces),
    "cache": lambda dp: {"counters": dp.cache.counters(), "entries": dp.cache.dump(time.monotonic())},
    "ha": lambda dp: dp.ha(),
    "mirror": lambda dp: dp.monitor.show(),
    "listeners": lambda dp: [x.listener_counters() for x in dp.listeners],
    "services": lambda dp: dp.services.counters() if dp.services is not None else None,
    "evi": lambda dp: (
        {**dp.model.evi.show(), "control": dp.evi_control.show()}  # type: ignore[union-attr]
        if dp.model.evi is not None
        else None
    ),
}


def _summary(dp: Datapath) -> dict[str, Any]:
    return {
        "node": dp.cfg.node,
        "uptime": round(time.time() - dp.started, 1),
        "ports": len(dp.model.ports),
        "instances": len(dp.model.instances),
        "routers": [r.label for r in dp.model.routers],
        "mac_entries": len(dp.macs),
        "drops": sum(dp.pipeline.drops().values()),
    }


SHOW["summary"] = _summary


def _services(dp: Datapath, req: dict[str, Any] | None = None) -> list[Any]:
    """The SRs with services, optionally only router ``req['router']``."""
    name = (req or {}).get("router")
    found = [r for r in dp.model.routers if r.services is not None and (name is None or r.name == name)]
    if name is not None and not found:
        known = ", ".join(r.name for r in dp.model.routers if r.services is not None) or "none"
        raise CommandError(f"router {name!r} has no SR with NAT or firewall; routers with services: {known}")
    return found


MAC_PAGE = 4096  # ``show mac`` answers at most this many entries unless asked for a page


def _page(req: dict[str, Any]) -> tuple[int, int]:
    """A request's page of a large table: ``offset`` (default 0) and ``limit`` (default and
    most MAC_PAGE; 0: the counts alone)."""
    offset, limit = req.get("offset", 0), req.get("limit", MAC_PAGE)
    for name, value in (("offset", offset), ("limit", limit)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise CommandError(f"field '{name}' must be a non-negative integer, got {value!r}")
    return offset, min(limit, MAC_PAGE)


def _mac_page(dp: Datapath, req: dict[str, Any]) -> list[dict[str, Any]]:
    """``show mac`` in pages (``offset``, ``limit``)."""
    return dp.macs.dump(time.monotonic(), *_page(req))


SHOW_WITH_REQUEST: dict[str, Callable[[Datapath, dict[str, Any]], Any]] = {
    "mac": _mac_page,
    # (sessions and connections in pages as MACs are: a million of them took seconds)
    "nat": lambda dp, req: {r.name: r.services.show_nat(time.monotonic(), *_page(req)) for r in _services(dp, req)},
    "conntrack": lambda dp, req: {
        r.name: r.services.show_conntrack(time.monotonic(), *_page(req)) for r in _services(dp, req)
    },
    "firewall": lambda dp, req: {r.name: r.services.fw.show() for r in _services(dp, req)},
}


def _field(req: dict[str, Any], name: str, kind: type = str) -> Any:
    if name not in req:
        raise CommandError(f"'{req.get('cmd')}' needs the field '{name}'")
    value = req[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise CommandError(f"field '{name}' must be a {kind.__name__}, got {value!r}")
    return value


def _show(ctl: Control, req: dict[str, Any]) -> Any:
    dp = ctl.dp
    what = req.get("what", "summary")
    if what == "counters":
        return {**dp.counters(), "control": ctl.counters()}
    if isinstance(what, str) and what in SHOW_WITH_REQUEST:
        return SHOW_WITH_REQUEST[what](dp, req)
    fn = SHOW.get(what) if isinstance(what, str) else None
    if fn is None:
        known = ", ".join(sorted([*SHOW, *SHOW_WITH_REQUEST, "counters"]))
        raise CommandError(f"cannot show {what!r}; choose one of: {known}")
    return fn(dp)


def _one_service(ctl: Control, req: dict[str, Any]) -> Any:
    dp = ctl.dp
    _field(req, "router")
    return _services(dp, req)[0].services


def _remove_rule(remove: Callable[[str], Any], name: str, what: str, names: list[str]) -> Any:
    try:
        return remove(name).to_dict()
    except KeyError:
        raise CommandError(f"no {what} rule named {name!r}; rules: {', '.join(names) or 'none'}") from None


def _add_rule(
    parse: Callable[..., Any], raw: dict[str, Any], default_name: str, add: Callable[..., None], *args: Any
) -> Any:
    """Validate a rule with the config's own parser (the same errors as in a file), then add it."""
    from gateway import config

    try:
        rule = parse(config.Reader("control"), raw, "rule", default_name)
        add(rule, *args)
    except (config.ConfigError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    return rule.to_dict()


def _nat(ctl: Control, req: dict[str, Any]) -> Any:
    from gateway import config

    svc = _one_service(ctl, req)
    action = _field(req, "action")
    if action == "del":
        return _remove_rule(svc.nat.remove, _field(req, "name"), "NAT", [r.name for r in svc.nat.all_rules()])
    if action != "add":
        raise CommandError(f"unknown nat action {action!r}; choose add or del")
    kind = _field(req, "kind")
    parsers: dict[str, Any] = {
        "snat": config.parse_snat,
        "dnat": config.parse_dnat,
        "one_to_one": config.parse_one_to_one,
    }
    if kind not in parsers:
        raise CommandError(f"unknown NAT kind {kind!r}; choose snat, dnat or one_to_one")
    default = f"{kind}-runtime-{len(svc.nat.all_rules()) + 1}"
    return _add_rule(parsers[kind], _field(req, "rule", dict), default, svc.nat.add)


def _firewall(ctl: Control, req: dict[str, Any]) -> Any:
    from gateway import config

    svc = _one_service(ctl, req)
    action = _field(req, "action")
    if action == "del":
        return _remove_rule(svc.fw.remove, _field(req, "name"), "firewall", [r.name for r in svc.fw.rules])
    if action != "add":
        raise CommandError(f"unknown firewall action {action!r}; choose add or del")
    position = req.get("position")
    if position is not None and (
        not isinstance(position, int) or isinstance(position, bool) or not 0 <= position <= len(svc.fw.rules)
    ):
        raise CommandError(f"position must be an integer in 0..{len(svc.fw.rules)}, got {position!r}")
    default = f"runtime-{svc.fw.generation}"
    return _add_rule(config.parse_fw_rule, _field(req, "rule", dict), default, svc.fw.add, position)


def _trace(ctl: Control, req: dict[str, Any]) -> Any:
    dp = ctl.dp
    action = _field(req, "action")
    if action == "start":
        count = req.get("count", 10)
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 10000:
            raise CommandError(f"trace count must be an integer in 1..10000, got {count!r}")
        dp.trace_budget = count
        return {"tracing": count}
    if action == "show":
        return list(dp.traces)
    if action == "clear":
        dp.traces.clear()
        dp.trace_budget = 0
        return {"cleared": True}
    if action == "inject":
        port = _field(req, "port")
        if port not in dp.model.ports:
            raise CommandError(f"no port {port!r}; ports: {', '.join(dp.model.ports)}")
        try:
            frame = bytes.fromhex(_field(req, "frame"))
        except ValueError:
            raise CommandError("field 'frame' must be the frame in hex") from None
        if not 14 <= len(frame) <= 9216:
            raise CommandError(f"an injected frame must be 14..9216 bytes, got {len(frame)}")
        return dp.inject(port, frame)
    raise CommandError(f"unknown trace action {action!r}; choose start, show, clear or inject")


def _route(ctl: Control, req: dict[str, Any]) -> Any:
    dp = ctl.dp
    action = _field(req, "action")
    name = _field(req, "router")
    half = req.get("half", "dr")
    router = next((r for r in dp.model.routers if r.name == name and r.kind == half), None)
    if router is None:
        known = ", ".join(r.label for r in dp.model.routers)
        raise CommandError(f"no router {name!r} with a {half!r} half; routers: {known}")
    raw_prefix = _field(req, "prefix")
    if not isinstance(raw_prefix, str):
        raise CommandError(f"bad prefix: {raw_prefix!r} is not a string like 10.0.0.0/8 or 2001:db8::/32")
    try:
        prefix = gcpolicy.acyclic(ipaddress.ip_network(raw_prefix))
    except ValueError as exc:
        raise CommandError(f"bad prefix: {exc}") from None
    fib = router.fib6 if prefix.version == 6 else router.fib
    if fib is None:
        raise CommandError(f"{router.label} has no IPv6 address on any segment: it routes no IPv6")
    if action == "del":
        removed = fib.remove(int(prefix.network_address), prefix.prefixlen)
        if removed is None:
            raise CommandError(f"{router.label} has no route {prefix}")
        return removed.to_dict()
    if action != "add":
        raise CommandError(f"unknown route action {action!r}; choose add or del")
    raw_via = req.get("via")
    vias = raw_via if isinstance(raw_via, list) else [_field(req, "via")]
    family = ipaddress.IPv6Address if prefix.version == 6 else ipaddress.IPv4Address
    try:
        hops = [int(family(v)) for v in vias]
    except ValueError as exc:
        raise CommandError(f"bad next hop (an IPv{prefix.version} address): {exc}") from None
    try:
        return add_route(dp.model, router, prefix, hops).to_dict()
    except ValueError as exc:
        raise CommandError(f"next hop {exc}") from None


def _cache(ctl: Control, req: dict[str, Any]) -> Any:
    dp = ctl.dp
    action = _field(req, "action")
    if action == "enable":
        dp.cache.enabled = True
    elif action == "disable":
        dp.cache.enabled = False
        dp.cache.flush()
    elif action == "flush":
        return {"flushed": dp.cache.flush()}
    elif action == "set":
        capacity = req.get("capacity", dp.cache.capacity)
        idle = req.get("idle_timeout", dp.cache.idle_timeout)
        if not isinstance(capacity, int) or isinstance(capacity, bool) or not 1 <= capacity <= 10_000_000:
            raise CommandError(f"capacity must be an integer in 1..10000000, got {capacity!r}")
        if not isinstance(idle, (int, float)) or isinstance(idle, bool) or not 0.1 <= idle <= 86400:
            # (a NaN fails every comparison: it is refused here too)
            raise CommandError(f"idle_timeout must be a number of seconds in 0.1..86400, got {idle!r}")
        dp.cache.capacity, dp.cache.idle_timeout = capacity, float(idle)
        dp.cache.flush()
        return {"capacity": capacity, "idle_timeout": float(idle)}
    else:
        raise CommandError(f"unknown cache action {action!r}; choose enable, disable, flush or set")
    return {"enabled": dp.cache.enabled}


def _conntrack(ctl: Control, req: dict[str, Any]) -> Any:
    """``flush``: every connection of the SRs (or of ``router``'s) ended as an expiry ends it: its
    NAT session and ports given back, the cache entries that used it dropped at their next hit,
    an HA peer told.  Answers how many went, per router."""
    action = _field(req, "action")
    if action != "flush":
        raise CommandError(f"unknown conntrack action {action!r}; choose flush")
    return {"flushed": {r.name: r.services.ct.flush() for r in _services(ctl.dp, req)}}


def _ha(ctl: Control, req: dict[str, Any]) -> Any:
    dp = ctl.dp
    action = _field(req, "action")
    if action not in ("takeover", "release"):
        raise CommandError(f"unknown ha action {action!r}; choose takeover or release")
    try:
        fn = dp.ownership.takeover if action == "takeover" else dp.ownership.release
        return fn(_field(req, "router"), _field(req, "ip"))
    except (KeyError, ValueError) as exc:
        raise CommandError(str(exc).strip("'\"")) from None


def _mirror(ctl: Control, req: dict[str, Any]) -> Any:
    from gateway.monitor import MonitorError

    action = _field(req, "action")
    name = _field(req, "name")
    try:
        if action == "add":
            return ctl.dp.monitor.add(name, req)
        if action == "del":
            return ctl.dp.monitor.remove(name)
    except MonitorError as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:  # the monitor TAP could not be opened
        raise CommandError(f"cannot open the monitor TAP: {exc}") from None
    raise CommandError(f"unknown mirror action {action!r}; choose add or del")


def _reload(ctl: Control, req: dict[str, Any]) -> Any:
    from gateway import config
    from gateway.control.reload import ReloadRefused, reload

    try:
        return reload(ctl.dp)
    except (config.ConfigError, ReloadRefused, ValueError) as exc:
        raise CommandError(f"reload refused, the running config stays: {exc}") from None


def _gc(ctl: Control, req: dict[str, Any]) -> Any:
    """A full garbage collection: the objects found in reference cycles (with automatic collection
    off, a leak; ``gcpolicy.cycles``).  It walks every object made since the start."""
    return gcpolicy.cycles()


def _ping(ctl: Control, req: dict[str, Any]) -> Any:
    dp = ctl.dp
    return {"node": dp.cfg.node, "uptime": round(time.time() - dp.started, 1)}


COMMANDS: dict[str, Callable[[Control, dict[str, Any]], Any]] = {
    "ping": _ping,
    "show": _show,
    "trace": _trace,
    "route": _route,
    "nat": _nat,
    "firewall": _firewall,
    "cache": _cache,
    "conntrack": _conntrack,
    "ha": _ha,
    "mirror": _mirror,
    "reload": _reload,
    "gc": _gc,
}


class Control:
    """The command layer of one datapath, with its own counters."""

    def __init__(self, dp: Datapath) -> None:
        self.dp = dp
        self.requests = 0
        self.errors = 0
        self.internal_errors = 0

    def handle(self, req: Any) -> dict[str, Any]:
        """Answer one decoded request; never raises."""
        self.requests += 1
        try:
            if not isinstance(req, dict):
                raise CommandError("a request must be a JSON object with a 'cmd' field")
            cmd = req.get("cmd")
            fn = COMMANDS.get(cmd) if isinstance(cmd, str) else None
            if fn is None:
                raise CommandError(f"unknown command {cmd!r}; commands: {', '.join(COMMANDS)}")
            return {"ok": True, "result": fn(self, req)}
        except CommandError as exc:
            self.errors += 1
            return {"ok": False, "error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - a bug costs this request, never the daemon
            self.errors += 1
            self.internal_errors += 1
            report_bug(self.internal_errors, f"in control request {_brief(req)}")
            return {"ok": False, "error": f"internal error ({type(exc).__name__}); the request was not carried out"}

    def refused(self, error: str) -> dict[str, Any]:
        """A request refused before it could be decoded (not JSON, too long): counted."""
        self.requests += 1
        self.errors += 1
        return {"ok": False, "error": error}

    def counters(self) -> dict[str, int]:
        return {"requests": self.requests, "errors": self.errors, "internal_errors": self.internal_errors}


def _brief(req: Any) -> str:
    text = repr(req)
    return text if len(text) <= 200 else text[:200] + "..."
