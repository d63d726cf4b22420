"""The Linux kernel as a DUT: IP forwarding, Linux bridges, nftables, conntrack.

The plan's intent is rendered by ``linux_render.render`` (read its docstring
for how each part maps onto this kernel); this module applies it to the
gateway node and undoes it.  SRs with ``ha`` run keepalived (VRRP).  A crash
(``crash()``) is the box dying: keepalived killed hard and every port of the
node down, so nothing answers for it any more.  What this DUT does not do is
not declared: the HA variants the reference has beyond failover and
preemption (active/active), and the reference gateway's internals.  HA SRs run conntrackd beside keepalived
(the connection table replicated to the peer).  Its counters come from the kernel's own: the interfaces' packet
counters, ``/proc/net/snmp`` and ``/proc/net/netstat``, the nftables named
counters and the OVS rule that refuses frames of no instance.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from suites.duts.base import DROP_CATEGORIES, DutDriver, GatewayHandle
from suites.duts.linux_ipv6 import TABLE6, start6, stop6
from suites.duts.linux_render import TABLE, dnat_rule, fw_rule, one_to_one_rules, render, snat_rules
from topologies.nodes import OFFLOADS, GatewayNode, NodeCommandError, run, run_root, stop_process

NO_INSTANCE_COOKIE = "0x99"


def _snmp(text: str) -> dict[str, int]:
    """``/proc/net/snmp``-style text (header line, value line per protocol) as Proto.Field -> value."""
    out: dict[str, int] = {}
    lines = text.splitlines()
    for head, values in zip(lines[::2], lines[1::2], strict=False):
        proto, *names = head.split()
        _, *nums = values.split()
        for name, num in zip(names, nums, strict=False):
            if num.lstrip("-").isdigit():
                out[f"{proto.rstrip(':')}.{name}"] = int(num)
    return out


class LinuxGateway(GatewayHandle):
    capabilities = frozenset(
        {
            "switching",
            "routing",
            "counters",
            "route.runtime",
            "nat.snat",
            "nat.dnat",
            "nat.one_to_one",
            "nat.hairpin",
            "nat.runtime",
            "fw.stateful",
            "fw.reject",
            "fw.runtime",
            "ha.failover",
            "ha.preempt",
            "ha.stateful",  # conntrackd beside keepalived (linux_render.conntrackd)
            "fault.crash",
            # EVI over VXLAN (linux_render.evi): one L2 domain, flooding control, DF.
            "evi.l2",
            "evi.flooding",
            "evi.mtu",
            "dhcp.relay",  # ISC dhcrelay -a (linux_render.dhcp_relay)
            "alg.ftp",  # the kernel's FTP helper, attached by an nftables ct helper
            "config.reload",  # the nftables ruleset replaced in one transaction
            # Dual stack (linux_ipv6): kernel forwarding, radvd, an ip6 nftables table.
            "ipv6.routing",
            "ipv6.ra",
            "ipv6.fw",
        }
    )
    replication = ("udp", 3780)  # conntrackd's sync (linux_render.CONNTRACKD_PORT)

    def __init__(self, driver: LinuxDriver, name: str, spec: dict[str, Any]) -> None:
        self.driver = driver
        self.name = name
        self.spec = spec
        self.node = driver.lab.host(name)
        self.added_publics: dict[str, list[str]] = {}

    # -- configuration -----------------------------------------------------------------------
    def config_text(self) -> str:
        return str(self.spec["nft"])

    def reload(self, text: str) -> str | None:
        """The ruleset replaced in one nftables transaction (the old table deleted, the new one
        made): a file nft refuses changes nothing."""
        path = self.driver.lab.rundir / f"{self.name}-reload.nft"
        path.write_text(f"table ip {TABLE} {{}}\ndelete table ip {TABLE}\n{text}")
        res = run(self.node, ["nft", "-f", str(path)], check=False)
        if res.returncode != 0:
            return res.stderr.strip() or f"nft refused the ruleset (exit {res.returncode})"
        self.spec["nft"] = text
        return None

    # -- state -----------------------------------------------------------------------------
    def _run(self, argv: list[str], check: bool = True) -> str:
        return run(self.node, argv, check=check).stdout

    def crash(self) -> None:
        """The box dies: every port of the node down at once, then keepalived and conntrackd
        killed hard (keepalived's VRRP child too).  Ports first: a keepalived killed while
        its ports still carry traffic would leave its addresses forwarding until the peer
        took over, a failover without loss that no crash gives."""
        for ifname in self.driver.port_ifnames(self.name):
            in_root = ifname in {t["ifname"] for t in self.spec["trunks"].values()}
            argv = ["ip", "link", "set", ifname, "down"]
            if in_root:
                run_root(argv, check=False)
            else:
                run(self.node, argv, check=False)
        self.driver.kill_keepalived(self.name, signal.SIGKILL)
        self.driver.stop_conntrackd(self.name, signal.SIGKILL)

    def settled(self) -> bool:
        """Alive, and with HA: keepalived runs (start waited until it held what it owns)."""
        proc = self.driver._keepalived.get(self.name)
        return self.alive() and (self.spec["vrrp"] is None or (proc is not None and proc.poll() is None))

    def alive(self) -> bool:
        try:
            forwarding = self._run(["sysctl", "-n", "net.ipv4.ip_forward"]).strip() == "1"
            return forwarding and run(self.node, ["nft", "list", "table", "ip", TABLE], check=False).returncode == 0
        except NodeCommandError:
            return False

    def _tx_packets(self) -> int:
        total = 0
        for ifname in self.driver.port_ifnames(self.name):
            in_root = ifname in {t["ifname"] for t in self.spec["trunks"].values()}
            argv = ["ip", "-s", "-j", "link", "show", "dev", ifname]
            text = run_root(argv).stdout if in_root else self._run(argv)
            total += int(json.loads(text)[0]["stats64"]["tx"]["packets"])
        return total

    def _nft_counters(self) -> dict[str, int]:
        """The named counters of the ip table, and of the ip6 table added to them (a dual stack)."""
        tables = [("ip", TABLE)] + ([("ip6", TABLE6)] if self.spec.get("ipv6") is not None else [])
        out: dict[str, int] = {}
        for family, table in tables:
            data = json.loads(self._run(["nft", "-j", "list", "counters", "table", family, table]))
            for item in data.get("nftables", []):
                if "counter" in item:
                    name = item["counter"]["name"]
                    out[name] = out.get(name, 0) + int(item["counter"]["packets"])
        return out

    def _no_instance(self) -> int:
        total = 0
        for trunk in self.spec["trunks"].values():
            out = run_root(["ovs-ofctl", "dump-flows", trunk["bridge"], f"cookie={NO_INSTANCE_COOKIE}/-1"], check=False)
            for field in out.stdout.replace(",", " ").split():
                if field.startswith("n_packets="):
                    total += int(field.split("=")[1])
        return total

    def counters(self) -> dict[str, Any]:
        snmp = _snmp(self._run(["cat", "/proc/net/snmp"]))
        snmp.update(_snmp(self._run(["cat", "/proc/net/netstat"])))
        nft = self._nft_counters()
        dropped = dict.fromkeys(DROP_CATEGORIES, 0)
        dropped["no-instance"] = self._no_instance() if self.spec["trunks"] else 0
        dropped["no-route"] = snmp.get("Ip.OutNoRoutes", 0) + snmp.get("IpExt.InNoRoutes", 0)
        dropped["ttl"] = snmp.get("Icmp.OutTimeExcds", 0)
        dropped["malformed"] = snmp.get("Ip.InHdrErrors", 0) + snmp.get("IpExt.InTruncatedPkts", 0)
        dropped["firewall"] = nft.get("fw", 0)
        dropped["nat"] = nft.get("nat", 0)
        dropped["other"] = snmp.get("Ip.InDiscards", 0)
        dropped["tunnel"] = self._vxlan_drops()
        return {"forwarded": self._tx_packets(), "dropped": dropped}

    def _vxlan_drops(self) -> int:
        """What the VXLAN devices of an EVI edge refused to send (too big for the path) or lost."""
        ev = self.spec.get("evi")
        if ev is None or ev["idle"]:
            return 0
        total = 0
        for vx in ev["vxlans"]:
            stats = json.loads(self._run(["ip", "-s", "-j", "link", "show", "dev", vx["name"]]))[0]["stats64"]
            total += int(stats["tx"]["errors"]) + int(stats["tx"]["dropped"])
        return total

    # -- runtime changes -------------------------------------------------------------------
    def add_route(self, prefix: str, via: str | list[str], router: str = "t1") -> None:
        hops = via if isinstance(via, list) else [via]
        if len(hops) == 1:
            self._run(["ip", "route", "replace", prefix, "via", hops[0]])
        else:
            self._run(["ip", "route", "replace", prefix, *[w for h in hops for w in ("nexthop", "via", h)]])

    def del_route(self, prefix: str, router: str = "t1") -> None:
        self._run(["ip", "route", "del", prefix])

    def _nft(self, *words: str) -> None:
        self._run(["nft", *words])

    def _handles(self, chain: str, family: str = "ip", table: str = TABLE) -> list[tuple[int, str]]:
        """(handle, comment) of each rule of ``chain``, in order."""
        data = json.loads(self._run(["nft", "-j", "-a", "list", "chain", family, table, chain]))
        return [
            (int(item["rule"]["handle"]), str(item["rule"].get("comment", "")))
            for item in data.get("nftables", [])
            if "rule" in item
        ]

    def _delete_named(self, chains: tuple[str, ...], name: str) -> int:
        removed = 0
        for chain in chains:
            for handle, comment in self._handles(chain):
                if comment == name:
                    self._nft("delete", "rule", "ip", TABLE, chain, "handle", str(handle))
                    removed += 1
        return removed

    def _fw_tables(self) -> list[tuple[int, str, str]]:
        """(family, nft family, table) of the firewall's tables: ip, and ip6 on a dual stack."""
        return [(4, "ip", TABLE)] + ([(6, "ip6", TABLE6)] if self.spec.get("ipv6") is not None else [])

    def add_firewall_rule(self, rule: dict[str, Any], position: int | None = None, router: str = "t1") -> None:
        """Into the table of each family the rule applies to (a rule naming no address: both)."""
        for family, nft_family, table in self._fw_tables():
            text = fw_rule(rule, self.spec["uplink"], family)
            if text is None:
                continue
            rules = self._handles("fw_rules", nft_family, table)
            if position is None or position >= len(rules):
                self._nft(f"add rule {nft_family} {table} fw_rules {text}")
            else:
                self._nft(f"insert rule {nft_family} {table} fw_rules position {rules[position][0]} {text}")

    def del_firewall_rule(self, name: str, router: str = "t1") -> None:
        removed = 0
        for _family, nft_family, table in self._fw_tables():
            for handle, comment in self._handles("fw_rules", nft_family, table):
                if comment == name:
                    self._nft("delete", "rule", nft_family, table, "fw_rules", "handle", str(handle))
                    removed += 1
        if not removed:
            raise NodeCommandError(f"{self.name}: no firewall rule named {name!r}")

    def add_nat_rule(self, kind: str, rule: dict[str, Any], router: str = "t1") -> None:
        uplink = self.spec["uplink"]
        # Rules added at run time take precedence over configured ones: inserted first.
        if kind == "snat":
            for text in reversed(snat_rules(rule, uplink)):  # inserted first, in their order
                self._nft(f"insert rule ip {TABLE} postrouting {text}")
            publics = list(rule["pool"])
        elif kind == "dnat":
            self._nft(f"insert rule ip {TABLE} prerouting {dnat_rule(rule)}")
            publics = [rule["public"]]
        elif kind == "one_to_one":
            dnat, snat = one_to_one_rules(rule, uplink)
            self._nft(f"insert rule ip {TABLE} prerouting {dnat}")
            self._nft(f"insert rule ip {TABLE} postrouting {snat}")
            publics = [rule["public"]]
        else:
            raise ValueError(f"unknown NAT kind {kind!r}; choose snat, dnat or one_to_one")
        added = [a for a in publics if a not in self.spec["publics"]]
        for addr in added:
            self._run(["ip", "addr", "replace", f"{addr}/32", "dev", uplink])
        self.added_publics[rule.get("name", kind)] = added

    def del_nat_rule(self, name: str, router: str = "t1") -> None:
        if not self._delete_named(("prerouting", "postrouting"), name):
            raise NodeCommandError(f"{self.name}: no NAT rule named {name!r}")
        for addr in self.added_publics.pop(name, []):
            self._run(["ip", "addr", "del", f"{addr}/32", "dev", self.spec["uplink"]], check=False)

    # -- evidence ----------------------------------------------------------------------------
    def logs(self) -> dict[str, str]:
        parts = []
        for argv in (["nft", "list", "ruleset"], ["ip", "addr"], ["ip", "route"], ["ip", "neigh"]):
            res = run(self.node, argv, check=False)
            parts.append(f"$ {' '.join(argv)}\n{res.stdout}{res.stderr}")
        if self.spec["trunks"]:
            for trunk in self.spec["trunks"].values():
                res = run_root(["ovs-ofctl", "dump-flows", trunk["bridge"]], check=False)
                parts.append(f"$ ovs-ofctl dump-flows {trunk['bridge']}\n{res.stdout}{res.stderr}")
        out = {f"{self.name}-linux.txt": "\n".join(parts)}
        for name in (f"{self.name}-keepalived.log", f"{self.name}-conntrackd.log"):
            log = self.driver.lab.rundir / name
            if log.exists():
                out[log.name] = log.read_text()
        return out


class LinuxDriver(DutDriver):
    name = "linux"
    node_cls = GatewayNode
    capabilities = LinuxGateway.capabilities
    description = (
        "the Linux kernel as the gateway: IP forwarding, a Linux bridge per instance, nftables NAT and a "
        "conntrack firewall; VLAN trunks end on an Open vSwitch userspace bridge each, with one access port per "
        "instance (this kernel has no 802.1Q); the DR/SR split is one routing table (one hop, not two); EVI over "
        "VXLAN with a static mesh (this kernel has no GRE); SR failover by keepalived (VRRPv3) with conntrackd "
        "replicating the connection table"
    )

    def __init__(self, lab: Any) -> None:
        super().__init__(lab)
        self._specs: dict[str, dict[str, Any]] = {}
        self._keepalived: dict[str, subprocess.Popen[bytes]] = {}
        self._dhcrelay: dict[str, subprocess.Popen[bytes]] = {}
        self._radvd: dict[str, subprocess.Popen[bytes] | None] = {}
        self._conntrackd: dict[str, subprocess.Popen[bytes]] = {}

    @classmethod
    def versions(cls) -> dict[str, str]:
        out = {}
        # "nftables v1.0.6 (Lester Gooch #5)", "ovs-vsctl (Open vSwitch) 3.1.0"
        for name, argv, word in (
            ("nftables", ["nft", "--version"], 1),
            ("openvswitch", ["ovs-vsctl", "--version"], -1),
            ("conntrackd", ["conntrackd", "-v"], 4),  # "Connection tracking userspace daemon v1.4.7. ..."
        ):
            res = run_root(argv, check=False)
            first = (res.stdout.splitlines() or ["?"])[0].split()
            out[name] = first[word].rstrip(".") if res.returncode == 0 and first else "?"
        return out

    def port_ifnames(self, gateway: str) -> list[str]:
        return [p["ifname"] for p in self.lab.plan["gateways"][gateway]["ports"].values()]

    def start(self, gateway: str) -> LinuxGateway:
        """Set the gateway up; one that fails halfway is undone (no daemon left running)."""
        spec = render(self.lab.plan, gateway)
        self._specs[gateway] = spec
        try:
            return self._start(gateway, spec)
        except BaseException:
            self.stop(gateway)
            raise

    def _start(self, gateway: str, spec: dict[str, Any]) -> LinuxGateway:
        lab = self.lab
        node = lab.host(gateway)
        for key, value in (
            ("net.ipv4.ip_forward", 1),
            ("net.ipv4.conf.all.rp_filter", 0),
            ("net.ipv4.conf.default.rp_filter", 0),
            # Answer ARP for an address only on the interface that has it.
            ("net.ipv4.conf.all.arp_ignore", 1),
            ("net.ipv4.conf.all.arp_announce", 2),
        ):
            run(node, ["sysctl", "-qw", f"{key}={value}"])
        for instance in spec["bridges"].values():
            br = instance["name"]
            run(node, ["ip", "link", "add", br, "type", "bridge", "stp_state", "0"])
            if instance["mac"]:
                run(node, ["ip", "link", "set", br, "address", instance["mac"]])
            run(node, ["sysctl", "-qw", f"net.ipv6.conf.{br}.disable_ipv6=1"], check=False)
        # Switched frames must not meet the IP firewall (if br_netfilter is loaded at all).
        run(node, ["sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=0"], check=False)
        self._trunks_up(gateway, spec, node)
        for instance in spec["bridges"].values():
            for member in instance["members"]:
                if member not in {v["node"] for t in spec["trunks"].values() for v in t["vlans"].values()}:
                    run(node, ["ip", "link", "set", member, "master", instance["name"]])
                    run(node, ["ip", "link", "set", member, "up"])
            for address in instance["addresses"]:
                run(node, ["ip", "addr", "add", address, "dev", instance["name"]])
            run(node, ["ip", "link", "set", instance["name"], "up"])
        vrrp = spec["vrrp"]
        if vrrp is not None:
            for br, address in vrrp["base"].items():
                run(node, ["ip", "addr", "add", address, "dev", br])
        for prefix, via in spec["routes"]:
            run(node, ["ip", "route", "replace", prefix, "via", via])
        if spec["evi"] is not None:
            self._evi_up(node, spec["evi"])
        path = lab.rundir / f"{gateway}-linux.nft"
        path.write_text(spec["nft"])
        run(node, ["nft", "-f", str(path)])
        if spec["ipv6"] is not None:  # (before keepalived: the IPv6 VIPs need IPv6 on their bridges)
            self._radvd[gateway] = start6(node, spec["ipv6"], lab.rundir, gateway, run)
        if spec["conntrackd"] is not None:
            self._start_conntrackd(gateway, node, spec["conntrackd"])
        if vrrp is not None:
            self._start_keepalived(gateway, node, vrrp)
        if spec["dhcp_relay"] is not None:
            self._start_dhcrelay(gateway, node, spec["dhcp_relay"])
        return LinuxGateway(self, gateway, spec)

    def _start_dhcrelay(self, gateway: str, node: Any, relay: dict[str, Any]) -> None:
        argv = ["dhcrelay", "-4", "-d", "-a", "-pf", str(self.lab.rundir / f"{gateway}-dhcrelay.pid")]
        for br in relay["down"]:
            argv += ["-id", br]
        for br in relay["up"]:
            argv += ["-iu", br]
        with open(self.lab.rundir / f"{gateway}-dhcrelay.log", "ab") as log:
            self._dhcrelay[gateway] = node.popen(
                [*argv, relay["server"]], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )

    def _start_conntrackd(self, gateway: str, node: Any, ct: dict[str, Any]) -> None:
        """conntrackd in the node's namespace, in the foreground; ready once it answers on its socket."""
        rundir = self.lab.rundir
        files = {k: rundir / f"{gateway}-conntrackd.{k}" for k in ("conf", "log", "lock", "ctl")}
        files["lock"].unlink(missing_ok=True)
        text = ct["config"]
        for key in ("log", "lock", "ctl"):
            text = text.replace(f"@{key.upper()}@", str(files[key]))
        files["conf"].write_text(text)
        with open(rundir / f"{gateway}-conntrackd.out", "ab") as out:
            self._conntrackd[gateway] = node.popen(
                ["conntrackd", "-C", str(files["conf"])], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 10
        while run(node, ["conntrackd", "-C", str(files["conf"]), "-s"], check=False).returncode != 0:
            if self._conntrackd[gateway].poll() is not None or time.monotonic() > deadline:
                log = files["log"].read_text()[-2000:] if files["log"].exists() else ""
                raise RuntimeError(f"conntrackd on {gateway} did not start: {log}")
            time.sleep(0.1)

    def stop_conntrackd(self, gateway: str, sig: int) -> None:
        proc = self._conntrackd.pop(gateway, None)
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        (self.lab.rundir / f"{gateway}-conntrackd.lock").unlink(missing_ok=True)

    def _files(self, gateway: str) -> dict[str, Any]:
        rundir = self.lab.rundir
        return {
            "conf": rundir / f"{gateway}-keepalived.conf",
            "pid": rundir / f"{gateway}-keepalived.pid",
            "vrrp_pid": rundir / f"{gateway}-keepalived-vrrp.pid",
            "log": rundir / f"{gateway}-keepalived.log",
        }

    def _start_keepalived(self, gateway: str, node: Any, vrrp: dict[str, Any]) -> None:
        files = self._files(gateway)
        files["conf"].write_text(vrrp["config"])
        with open(files["log"], "ab") as log:
            self._keepalived[gateway] = node.popen(
                ["keepalived", "--dont-fork", "--log-console", "--vrrp", "-f", str(files["conf"]),
                 "-p", str(files["pid"]), "-r", str(files["vrrp_pid"])],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        # Ready when it holds what it owns (priority 200): VRRP's own start-up takes a few adverts.
        owned = [
            addr.split("/")[0] for inst in vrrp["instances"] if inst["priority"] == 200 for addr, _ in inst["addresses"]
        ]
        deadline = time.monotonic() + 15
        while True:
            have = run(node, ["ip", "-o", "-4", "addr", "show"]).stdout
            if all(f" {a}/" in have for a in owned):
                return
            if self._keepalived[gateway].poll() is not None or time.monotonic() > deadline:
                text = files["log"].read_text()[-2000:] if files["log"].exists() else ""
                raise RuntimeError(f"keepalived on {gateway} did not take its addresses {owned}: {text}")
            time.sleep(0.1)

    def kill_keepalived(self, gateway: str, sig: int) -> None:
        proc = self._keepalived.pop(gateway, None)
        files = self._files(gateway)
        pids = []
        for key in ("vrrp_pid", "pid"):
            try:
                pids.append(int(files[key].read_text().strip()))
            except (OSError, ValueError):
                pass
        if proc is not None:
            pids.append(proc.pid)
        for pid in pids:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        if proc is not None:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        # keepalived refuses to start while a pid in its pid files still exists, and the VRRP
        # child of a killed keepalived is reaped by init a moment later: wait for the pids to
        # be gone, then remove the files.
        deadline = time.monotonic() + 5
        while any(Path(f"/proc/{pid}").exists() for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        for key in ("vrrp_pid", "pid"):
            files[key].unlink(missing_ok=True)

    def _evi_up(self, node: Any, ev: dict[str, Any]) -> None:
        """The tunnel address on the core port; per extended instance a VXLAN device in its
        bridge, flooding broadcast (only) to the other sites' edges."""
        run(node, ["ip", "addr", "add", ev["address"], "dev", ev["port"]])
        run(node, ["ip", "link", "set", ev["port"], "up"])
        if ev["gateway"]:
            for remote in ev["remotes"]:
                run(node, ["ip", "route", "replace", f"{remote}/32", "via", ev["gateway"]])
        if ev["idle"]:
            return
        local = ev["address"].split("/")[0]
        for vx in ev["vxlans"]:
            name = vx["name"]
            run(node, ["ip", "link", "add", name, "type", "vxlan", "id", str(vx["vni"]), "local", local,
                       "dstport", "4789", "ttl", "64", "df", "set"])  # fmt: skip
            run(node, ["sysctl", "-qw", f"net.ipv6.conf.{name}.disable_ipv6=1"], check=False)
            run(node, ["ip", "link", "set", name, "mtu", str(vx["mtu"]), "master", vx["bridge"], "up"])
            run(node, ["bridge", "link", "set", "dev", name, "flood", "off", "mcast_flood", "off"])
            for remote in ev["remotes"]:
                run(node, ["bridge", "fdb", "append", "00:00:00:00:00:00", "dev", name, "dst", remote])

    def _trunks_up(self, gateway: str, spec: dict[str, Any], node: Any) -> None:
        """Each trunk port leaves the node for an OVS userspace bridge with an access port per VLAN."""
        for trunk in spec["trunks"].values():
            br = trunk["bridge"]
            run_root(["ovs-vsctl", "--may-exist", "add-br", br, "--", "set", "bridge", br, "datapath_type=netdev",
                      "fail_mode=secure"])  # fmt: skip
            ifname = trunk["ifname"]
            run(node, ["ip", "link", "set", ifname, "netns", "1"])
            run_root(["sysctl", "-qw", f"net.ipv6.conf.{ifname}.disable_ipv6=1"], check=False)
            run_root(["ip", "link", "set", ifname, "up"])
            vlans = ",".join(str(v) for v in sorted(trunk["vlans"]))
            run_root(["ovs-vsctl", "add-port", br, ifname, "--", "set", "port", ifname, f"trunks={vlans}"])
            for vlan, pair in sorted(trunk["vlans"].items()):
                root_side, node_side = pair["root"], pair["node"]
                run_root(
                    ["ip", "link", "add", root_side, "type", "veth", "peer", "name", node_side, "netns", str(node.pid)]
                )
                run_root(["sysctl", "-qw", f"net.ipv6.conf.{root_side}.disable_ipv6=1"], check=False)
                run_root(["ethtool", "-K", root_side, *OFFLOADS], check=False)
                run(node, ["ethtool", "-K", node_side, *OFFLOADS], check=False)
                run_root(["ip", "link", "set", root_side, "up"])
                run_root(["ovs-vsctl", "add-port", br, root_side, "--", "set", "port", root_side, f"tag={vlan}"])
                run(node, ["ip", "link", "set", node_side, "master", spec["bridges"][pair["instance"]]["name"]])
                run(node, ["ip", "link", "set", node_side, "up"])
                run_root(["ovs-ofctl", "add-flow", br, f"priority=100,in_port={ifname},dl_vlan={vlan},actions=NORMAL"])
            # A frame on the trunk with no record (another VLAN, or untagged) belongs to no instance.
            run_root(
                ["ovs-ofctl", "add-flow", br, f"cookie={NO_INSTANCE_COOKIE},priority=50,in_port={ifname},actions=drop"]
            )
            run_root(["ovs-ofctl", "add-flow", br, "priority=0,actions=NORMAL"])

    def stop(self, gateway: str) -> None:
        """Undo it all; every step runs even if one failed (the node may be half set up)."""
        spec = self._specs.pop(gateway, None)
        if spec is None:
            return
        node = self.lab.host(gateway)
        self.kill_keepalived(gateway, signal.SIGTERM)
        self.stop_conntrackd(gateway, signal.SIGTERM)
        stop_process(self._dhcrelay.pop(gateway, None))
        run(node, ["nft", "delete", "table", "ip", TABLE], check=False)
        if spec["ipv6"] is not None:
            stop6(node, self._radvd.pop(gateway, None), run)
        if spec["trunks"]:
            for trunk in spec["trunks"].values():
                run_root(["ovs-vsctl", "--if-exists", "del-br", trunk["bridge"]], check=False)
                # Back into the node, where Mininet will look for it at teardown.
                run_root(["ip", "link", "set", trunk["ifname"], "netns", str(node.pid)], check=False)
                run(node, ["ip", "link", "set", trunk["ifname"], "up"], check=False)
                for pair in trunk["vlans"].values():
                    run_root(["ip", "link", "del", pair["root"]], check=False)
        if spec["evi"] is not None:
            for vx in spec["evi"]["vxlans"]:
                run(node, ["ip", "link", "del", vx["name"]], check=False)
            run(node, ["ip", "addr", "flush", "dev", spec["evi"]["port"]], check=False)
        for instance in spec["bridges"].values():
            run(node, ["ip", "link", "del", instance["name"]], check=False)
        run(node, ["ip", "route", "flush", "table", "main"], check=False)
        run(node, ["sysctl", "-qw", "net.ipv4.ip_forward=0"], check=False)
