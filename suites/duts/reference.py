"""The reference gateway as a DUT: ``python -m gateway`` on a GatewayNode.

:func:`render` turns the plan's intent for a gateway node
(``gateways.NAME``: ports, instances, routers with their NAT, firewall and HA)
into the reference gateway's YAML, with the control socket placed in the lab's
run directory; the daemon's output goes to ``RUNDIR/NAME.log``.  ``start`` returns once the control socket answers.
The handle maps the contract (``base.GatewayHandle``) onto control-socket
requests; its drop reasons fold into the normalized categories by
:data:`DROP_CATEGORY`.
"""

from __future__ import annotations

import copy
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from gateway.control.client import ControlClient, ControlError
from gateway.io import kernel_side
from suites.duts.base import CAPABILITIES, DROP_CATEGORIES, DutDriver, GatewayHandle
from topologies.nodes import GatewayNode, run

READY_TIMEOUT = 20.0

# The reference gateway's drop reasons (``stage/reason``) by normalized category; a
# reason not listed here counts as "other".
DROP_CATEGORY = {
    "classify/no-service-instance": "no-instance",
    "classify/runt": "malformed",
    "l2switch/arp-spoofed": "arp",
    "transit/no-transit-peer": "no-route",
    "l2switch/split-horizon": "tunnel",
    "evi_encap/mtu-exceeded": "tunnel",
    "evi_encap/no-link": "tunnel",
    **{
        f"evi_decap/{reason}": "tunnel"
        for reason in (
            "not-a-neighbour",
            "gre-truncated",
            "gre-bad-header",
            "gre-not-teb",
            "unknown-network-id",
            "not-carried",
            "inner-truncated",
        )
    },
    **{
        f"{stage}/{reason}": category
        for stage in ("dr", "sr")
        for category, reasons in (
            ("no-route", ("no-route",)),
            ("ttl", ("ttl-expired", "hop-limit-expired")),
            (
                "malformed",
                (
                    "not-ip",
                    "ip-truncated",
                    "ip-bad-version",
                    "ip-bad-ihl",
                    "ip-bad-length",
                    "ip-bad-checksum",
                    "icmp-truncated",
                    "arp-truncated",
                    "ip6-truncated",
                    "frag-overlap",
                    "frag-bad-length",
                    "frag-too-big",
                    "ip6-bad-version",
                    "ip6-bad-length",
                    "ip6-ext-truncated",
                    "ip6-ext-chain-too-long",
                    "ip6-hbh-not-first",
                    "icmp6-truncated",
                    "icmp6-bad-checksum",
                ),
            ),
            (
                "arp",  # neighbour resolution: IPv6's neighbour discovery too
                (
                    "nd-truncated",
                    "nd-bad-hop-limit",
                    "nd-bad-code",
                    "nd-multicast-target",
                    "nd-bad-option",
                    "nd-off-link",
                    "nd-spoofed",
                    "nd-queue-full",
                    "nd-unresolved",
                    "ra-from-host",
                ),
            ),
            ("arp", ("arp-unsupported", "arp-queue-full", "arp-unresolved", "arp-off-subnet", "arp-spoofed")),
            (
                "firewall",
                ("fw-drop", "fw-reject", "fw-unsolicited", "ct-invalid", "untrackable", "mgmt-refused", "urpf"),
            ),
            ("nat", ("nat-no-session", "nat-table-full", "nat-pool-exhausted", "ct-clash", "frag-table-full")),
        )
        for reason in reasons
    },
}


def render(plan: dict[str, Any], gateway: str) -> dict[str, Any]:
    """The reference gateway's config for node ``gateway`` from the plan's intent."""
    gw = plan["gateways"][gateway]
    cfg: dict[str, Any] = {
        "node": gateway,
        "ports": {
            name: {"ifname": p["ifname"], "role": p.get("role", "tenant"), **({"mtu": p["mtu"]} if "mtu" in p else {})}
            for name, p in gw["ports"].items()
        },
        "instances": {name: {"records": [dict(r) for r in recs]} for name, recs in gw["instances"].items()},
        "routers": [],
    }
    for intent in gw.get("routers", []):
        router: dict[str, Any] = {"name": intent["name"], "tlr_id": intent["tlr_id"]}
        for half in ("dr", "sr"):
            if half in intent:
                router[half] = copy.deepcopy(intent[half])
        if "transit" in intent:
            router["transit"] = copy.deepcopy(intent["transit"])
        # NAT and the firewall are the SR's services in the reference gateway.
        if "nat" in intent:
            router["sr"]["nat"] = copy.deepcopy(intent["nat"])
        if "firewall" in intent:
            router["sr"]["firewall"] = {"rules": copy.deepcopy(intent["firewall"])}
        if "nptv6" in intent:
            router["sr"]["nptv6"] = copy.deepcopy(intent["nptv6"])
        if "ha" in intent:
            router["ha"] = copy.deepcopy(intent["ha"])
        cfg["routers"].append(router)
    if "evi" in gw:
        cfg["evi"] = copy.deepcopy(gw["evi"])
    services = []
    if "dhcp_relay" in gw:
        services.append({"name": "dhcp-relay", "kind": "dhcp-relay", "dhcp": {"server": gw["dhcp_relay"]["server"]}})
    if "ftp_alg" in gw:
        services.append({"name": "ftp-alg", "kind": "ftp-alg", "ftp": {"ports": list(gw["ftp_alg"]["ports"])}})
    if services:
        cfg["services"] = {"list": services}
    if "management" in gw:
        cfg.setdefault("kernel", {})["management"] = copy.deepcopy(gw["management"])
    if "bgp" in gw:
        bgp = gw["bgp"] if isinstance(gw["bgp"], list) else [gw["bgp"]]  # one session per tenant router
        cfg.setdefault("kernel", {})["bgp"] = copy.deepcopy(bgp)
    for key, value in copy.deepcopy(gw.get("dut", {}).get("reference", {})).items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key].update(value)  # one level deep: the kernel section has parts from both
        else:
            cfg[key] = value
    return cfg


def _kernel_namespaces(cfg: dict[str, Any]) -> list[dict[str, Any]] | None:
    """What the daemon's kernel transport builds for ``cfg`` (its own computation, without I/O)."""
    if cfg.get("kernel") is None:
        return None
    from gateway import config as gwconfig
    from gateway.datapath import Datapath

    dp = Datapath(gwconfig.build(copy.deepcopy(cfg), cfg["node"]))
    return dp.kernel.namespaces() if dp.kernel is not None else None


class ReferenceGateway(GatewayHandle):
    # The reference gateway is the measure of the contract: it has every capability.
    capabilities = frozenset(CAPABILITIES)
    replication = ("udp", 3780)  # gateway/ha/sync.py, the default port

    def __init__(self, name: str, proc: subprocess.Popen[bytes], sock: str, log: Path, cfg: Path) -> None:
        self.name = name
        self.proc = proc
        self.client = ControlClient(sock)
        self.socket = sock
        self.log = log
        self.config = cfg
        self.agent: subprocess.Popen[bytes] | None = None
        self.agent_log: Path | None = None
        self.evi_agent: subprocess.Popen[bytes] | None = None
        self.start_evi: Any = None  # starts the EVI control process again (stop_process/start_process)
        self.start_ha: Any = None  # ... the HA agent
        self.mgmt_service: subprocess.Popen[bytes] | None = None
        # The namespaces its kernel transport builds (None: it has none).
        self.kernel_namespaces: list[dict[str, Any]] | None = None

    def show(self, what: str = "summary") -> Any:
        return self.client.show(what)

    def leaks(self) -> dict[str, Any] | None:
        """The daemon's ``gc`` command: it runs without automatic garbage collection, so an
        object in a reference cycle is never freed (``gateway/gcpolicy.py``)."""
        return self.request({"cmd": "gc"})  # type: ignore[no-any-return]

    def config_text(self) -> str:
        return self.config.read_text()

    def reload(self, text: str) -> str | None:
        """The file rewritten, then the ``reload`` command (the daemon's SIGHUP does the same)."""
        self.config.write_text(text)
        try:
            self.request({"cmd": "reload"})
        except ControlError as exc:
            return str(exc)
        return None

    def request(self, req: dict[str, Any]) -> Any:
        return self.client.request(req)

    def trace_inject(self, port: str, frame: bytes) -> Any:
        return self.client.trace_inject(port, frame)

    def alive(self) -> bool:
        if self.proc.poll() is not None:
            return False
        try:
            self.client.ping()
        except ControlError:
            return False
        return True

    def counters(self) -> dict[str, Any]:
        ports = self.show("ports")
        dropped = dict.fromkeys(DROP_CATEGORIES, 0)
        for reason, n in self.show("drops").items():
            dropped[DROP_CATEGORY.get(reason, "other")] += int(n)
        return {"forwarded": sum(int(p["tx"]) for p in ports), "dropped": dropped}

    def add_route(self, prefix: str, via: str | list[str], router: str = "t1") -> None:
        """Into the half of the logical router (DR or SR) on whose segments the next hop lies."""
        errors = []
        for label in self.show("summary")["routers"]:
            name, _, half = label.rpartition("-")
            if name != router:
                continue
            try:
                self.request(
                    {"cmd": "route", "action": "add", "router": router, "half": half, "prefix": prefix, "via": via}
                )
                return
            except ControlError as exc:
                errors.append(f"{label}: {exc}")
        raise ControlError("; ".join(errors) or f"no router {router!r} on {self.name}")

    def del_route(self, prefix: str, router: str = "t1") -> None:
        """The static routes to ``prefix`` of either half (the DR's route to its SR stays)."""
        labels = [
            r["router"]
            for r in self.show("fib")
            if r["prefix"] == prefix and r["origin"] == "static" and r["router"].rpartition("-")[0] == router
        ]
        if not labels:
            raise ControlError(f"{self.name}: router {router} has no static route {prefix}")
        for label in labels:
            half = label.rpartition("-")[2]
            self.request({"cmd": "route", "action": "del", "router": router, "half": half, "prefix": prefix})

    def add_firewall_rule(self, rule: dict[str, Any], position: int | None = None, router: str = "t1") -> None:
        req: dict[str, Any] = {"cmd": "firewall", "action": "add", "router": router, "rule": rule}
        if position is not None:
            req["position"] = position
        self.request(req)

    def del_firewall_rule(self, name: str, router: str = "t1") -> None:
        self.request({"cmd": "firewall", "action": "del", "router": router, "name": name})

    def add_nat_rule(self, kind: str, rule: dict[str, Any], router: str = "t1") -> None:
        self.request({"cmd": "nat", "action": "add", "router": router, "kind": kind, "rule": rule})

    def del_nat_rule(self, name: str, router: str = "t1") -> None:
        self.request({"cmd": "nat", "action": "del", "router": router, "name": name})

    def crash(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=5)

    def _processes(self) -> dict[str, tuple[str, Any]]:
        """name -> (the handle's attribute holding its process, what starts it again)."""
        out: dict[str, tuple[str, Any]] = {}
        if self.start_evi is not None:
            out["evi"] = ("evi_agent", self.start_evi)
        if self.start_ha is not None:
            out["ha"] = ("agent", self.start_ha)
        return out

    def stop_process(self, name: str) -> None:
        procs = self._processes()
        if name not in procs:
            raise NotImplementedError(f"{self.name} has no process {name!r} to stop (it has: {', '.join(procs)})")
        proc = getattr(self, procs[name][0])
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)

    def start_process(self, name: str) -> None:
        procs = self._processes()
        if name not in procs:
            raise NotImplementedError(f"{self.name} has no process {name!r} to start (it has: {', '.join(procs)})")
        self.stop_process(name)
        setattr(self, procs[name][0], procs[name][1]())

    def settled(self) -> bool:
        """Alive, and: with HA, BFD up on every session of its agent (peers and neighbors); with EVI, its control
        process has found another site and elected its site's forwarders, and its links and
        forwarders have not changed for two intervals (the other sites know them)."""
        if not self.alive():
            return False
        if self.evi_agent is not None:
            evi = self.show("evi") or {}
            if not evi.get("links") or not evi.get("control", {}).get("agent", {}).get("settled"):
                return False  # no other site found yet, or the forwarders' election not known everywhere
        if self.agent is None:
            return True
        sessions = self.show("ha")["agent"]
        peers = [v for k, v in sessions.items() if isinstance(v, dict) and "state" in v]
        neighbors = list((sessions.get("neighbors") or {}).values())  # BFD with the provider, say
        return bool(peers) and all(v["state"] == "up" for v in peers + neighbors)

    def logs(self) -> dict[str, str]:
        out = {f"{self.name}.log": self.log_text()}
        evi_log = self.log.with_name(f"{self.name}-evi.log")
        if evi_log.exists():
            out[evi_log.name] = evi_log.read_text(errors="replace")
        if self.agent_log is not None:
            out[f"{self.name}-ha.log"] = self.agent_text()
        return out

    def log_text(self) -> str:
        try:
            return self.log.read_text()
        except OSError:
            return ""

    def agent_text(self) -> str:
        try:
            return self.agent_log.read_text() if self.agent_log else ""
        except OSError:
            return ""


class ReferenceDriver(DutDriver):
    name = "reference"
    node_cls = GatewayNode
    capabilities = ReferenceGateway.capabilities
    description = "edgelab's reference gateway: userspace datapath (AF_PACKET rings), DR/SR, BFD + GARP failover"

    def __init__(self, lab: Any) -> None:
        super().__init__(lab)
        self._handles: dict[str, ReferenceGateway] = {}

    def start(self, gateway: str) -> ReferenceGateway:
        lab = self.lab
        cfg = render(lab.plan, gateway)
        sock = str(lab.rundir / f"{gateway}.sock")
        cfg["control_socket"] = sock
        has_ha = False
        for router in cfg.get("routers", []):
            if router.get("ha") is not None:
                router["ha"]["socket"] = str(lab.rundir / f"{gateway}-{router['name']}-ha.sock")
                has_ha = True
        if cfg.get("evi") is not None:
            cfg["evi"]["socket"] = str(lab.rundir / f"{gateway}-evi.sock")
        if cfg.get("services") is not None:
            cfg["services"]["socket"] = str(lab.rundir / f"{gateway}-svc.sock")
        cfg_path = lab.rundir / f"{gateway}.yaml"
        cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        log_path = lab.rundir / f"{gateway}.log"
        node = lab.host(gateway)
        with open(log_path, "wb") as log:
            proc = node.popen(
                [sys.executable, "-u", "-m", "gateway", "--config", str(cfg_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=str(Path(__file__).resolve().parents[2]),
            )
        handle = ReferenceGateway(gateway, proc, sock, log_path, cfg_path)
        handle.kernel_namespaces = _kernel_namespaces(cfg)
        self._handles[gateway] = handle
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"gateway {gateway} exited with status {proc.returncode}: {handle.log_text().strip()[-2000:]}"
                )
            try:
                handle.client.ping()
                break
            except ControlError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"gateway {gateway} did not answer on {sock} within {READY_TIMEOUT:.0f} s: {handle.log_text()[-2000:]}"
                    ) from None
                time.sleep(0.1)
        management = lab.plan["gateways"][gateway].get("management")
        if management is not None:
            handle.mgmt_service = self._start_management_service(gateway, node, management, sock)
        if cfg.get("evi", {}).get("key") is not None:
            # The EVI control process: discovery and MAC advertisement through the datapath.
            handle.start_evi = lambda: self._start_evi_agent(gateway, node, cfg_path)
            handle.evi_agent = handle.start_evi()
        if has_ha:
            # The HA agent: a separate process that talks BFD through the datapath's unix socket.
            handle.agent_log = lab.rundir / f"{gateway}-ha.log"
            handle.start_ha = lambda: self._start_process(node, "gateway.ha.agent", cfg_path, handle.agent_log)
            handle.agent = handle.start_ha()
        return handle

    def _start_evi_agent(self, gateway: str, node: Any, cfg_path: Path) -> subprocess.Popen[bytes]:
        return self._start_process(node, "gateway.evi.agent", cfg_path, self.lab.rundir / f"{gateway}-evi.log")

    def _start_process(self, node: Any, module: str, cfg_path: Path, log_path: Path) -> subprocess.Popen[bytes]:
        """One of the gateway's control-plane processes (the HA agent, the EVI control process)."""
        with open(log_path, "ab") as log:
            return node.popen(  # type: ignore[no-any-return]
                [sys.executable, "-u", "-m", module, "--config", str(cfg_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=str(Path(__file__).resolve().parents[2]),
            )

    def _start_management_service(self, gateway: str, node: Any, management: dict[str, Any], sock: str) -> Any:
        """The gateway's management page (``gateway/mgmt_web.py``) in the management namespace its
        kernel transport made; it answers at the management address once this returns."""
        port = next((p["port"] for p in management["ports"] if p["proto"] == "tcp" and "port" in p), None)
        if port is None:
            return None
        address = management["address"].split("/")[0]
        with open(self.lab.rundir / f"{gateway}-mgmt.log", "ab") as log:
            proc = node.popen(
                ["ip", "netns", "exec", f"{gateway}-mgmt", sys.executable, "-u", "-m", "gateway.mgmt_web",
                 "--bind", address, "--port", str(port), "--node", gateway, "--control", sock],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=str(Path(__file__).resolve().parents[2]),
            )  # fmt: skip
        deadline = time.monotonic() + READY_TIMEOUT
        while f":{port}" not in run(node, ["ip", "netns", "exec", f"{gateway}-mgmt", "ss", "-ltnH"]).stdout:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the management page of {gateway} did not start (see {gateway}-mgmt.log)")
            time.sleep(0.05)
        return proc

    def stop(self, gateway: str) -> None:
        handle = self._handles.pop(gateway, None)
        if handle is None:
            return
        for proc in (handle.mgmt_service, handle.agent, handle.evi_agent, handle.proc):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
        # What the daemon's kernel transport built, also when the daemon was killed hard.
        if handle.kernel_namespaces is not None:
            kernel_side.teardown(gateway, handle.kernel_namespaces)

    def kill(self, gateway: str) -> None:
        """Kill the gateway's datapath hard (SIGKILL), as a crash would; the agent is left to notice."""
        self._handles[gateway].crash()
