"""The os-ken app that makes an Open vSwitch bridge the gateway (the ovs DUT).

Where this sits: ``python -m suites.duts.ovsken CONFIG`` runs it beside
ovs-vswitchd; the bridge connects to it as its OpenFlow controller.  On
connect it installs the pipeline of ``flows.py``; the switch then forwards on
its own and hands the app only what a router must answer: ARP for its
addresses, ping to them, ICMP errors (time exceeded, no route, a reject
rule), and a packet whose next hop is not resolved yet (held, ARP sent,
released by the answer).  A unix socket takes the driver's runtime changes
(routes, firewall and NAT rules) as JSON lines; a changed table is replaced
flow by flow, and what removed flows had counted is kept (flow-removed), so
the counters never go back.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import socket
from typing import Any

from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from os_ken.lib import hub
from os_ken.lib.packet import arp, ethernet, icmp, ipv4, packet
from os_ken.ofproto import ofproto_v1_3

from suites.duts.ovsken import flows as F

LOG = logging.getLogger("edgelab.ovs")
ICMP_ERRORS = {3, 4, 5, 11, 12}
HOLD_MAX = 64  # packets held per unresolved next hop


class Gateway(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        with open(os.environ["EDGELAB_OVSKEN_CONFIG"]) as f:
            self.cfg: dict[str, Any] = json.load(f)
        self.routers = {r["id"]: r for r in self.cfg["routers"]}
        self.rports: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
        for r in self.cfg["routers"]:
            for rp in [*r["ports"], r["transit"]]:
                self.rports[rp["id"]] = (r, rp)
        self.dp: Any = None
        self.ready = False
        self.ready_xid = -1
        self.installed: dict[tuple[int, int, str], F.Flow] = {}
        self.neighbours: dict[tuple[int, str], str] = {}  # (router port, ip) -> mac
        self.held: dict[tuple[int, str], list[tuple[bytes, dict[str, int]]]] = {}
        self.retired: dict[int, int] = {}  # cookie kind -> packets counted by flows since removed
        self.errors: dict[str, int] = {}
        self.barriers: dict[int, Any] = {}  # xid -> event of a client waiting for it
        hub.spawn(self._serve)

    # -- flows ------------------------------------------------------------------------------
    def _key(self, flow: F.Flow) -> tuple[int, int, str]:
        return (flow.table, flow.priority, json.dumps(flow.match, sort_keys=True))

    def _mod(self, flow: F.Flow, delete: bool = False) -> None:
        dp, parser, ofp = self.dp, self.dp.ofproto_parser, self.dp.ofproto
        match = parser.OFPMatch(**flow.match)
        if delete:
            dp.send_msg(parser.OFPFlowMod(dp, table_id=flow.table, priority=flow.priority, match=match,
                                          command=ofp.OFPFC_DELETE_STRICT, out_port=ofp.OFPP_ANY,
                                          out_group=ofp.OFPG_ANY))  # fmt: skip
            return
        acts, goto = F.actions(parser, flow.actions)
        inst = [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, acts)] if acts else []
        if goto is not None:
            inst.append(parser.OFPInstructionGotoTable(goto))
        dp.send_msg(parser.OFPFlowMod(dp, table_id=flow.table, priority=flow.priority, match=match,
                                      instructions=inst, cookie=flow.cookie, flags=ofp.OFPFF_SEND_FLOW_REM))  # fmt: skip

    def _sync(self, wanted: list[F.Flow], tables: set[int] | None = None) -> None:
        """Make the installed flows (of ``tables``, or all) what ``wanted`` says: unchanged
        flows are left alone, so their counters run on."""
        want = {self._key(f): f for f in wanted if tables is None or f.table in tables}
        for key, flow in list(self.installed.items()):
            if (tables is None or flow.table in tables) and (key not in want or want[key] != flow):
                self._mod(flow, delete=True)
                del self.installed[key]
        for key, flow in want.items():
            if key not in self.installed:
                self._mod(flow)
                self.installed[key] = flow

    def _wanted(self) -> list[F.Flow]:
        out = F.pipeline(self.cfg, self.cfg["ofports"])
        for (rid, ip), mac in self.neighbours.items():
            router, rp = self.rports[rid]
            out.append(F.neighbour(router, rp, ip, mac))
        return out

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def _features(self, ev: Any) -> None:
        try:
            self._install(ev.msg.datapath)
        except Exception:  # os-ken would swallow it: say it, the driver sees no pipeline
            LOG.exception("edgelab: installing the pipeline failed")
            self.dp = None

    def _install(self, dp: Any) -> None:
        self.dp = dp
        self.ready = False
        parser, ofp = dp.ofproto_parser, dp.ofproto
        dp.send_msg(parser.OFPFlowMod(dp, table_id=ofp.OFPTT_ALL, command=ofp.OFPFC_DELETE,
                                      out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY))  # fmt: skip
        # dec_ttl on a TTL <= 1 hands the packet to the app: enable that packet-in reason
        pin = 1 << ofp.OFPR_NO_MATCH | 1 << ofp.OFPR_ACTION | 1 << ofp.OFPR_INVALID_TTL
        dp.send_msg(parser.OFPSetAsync(dp, [pin, 0], [0x7, 0x7], [0xF, 0]))
        self.installed.clear()
        self._sync(self._wanted())
        # ready (the driver's alive()) once the switch has all of it: its barrier reply
        req = parser.OFPBarrierRequest(dp)
        dp.set_xid(req)
        self.ready_xid = req.xid
        dp.send_msg(req)
        LOG.info("edgelab: pipeline installed on %s (%d flows)", self.cfg["bridge"], len(self.installed))

    @set_ev_cls(ofp_event.EventOFPErrorMsg, MAIN_DISPATCHER)
    def _switch_error(self, ev: Any) -> None:
        """The switch refused a message of ours: a bug of this app, said and counted."""
        msg = ev.msg
        self.errors["switch"] = self.errors.get("switch", 0) + 1
        LOG.error("edgelab: the switch refused a message: type %d code %d: %s", msg.type, msg.code, msg.data[:64].hex())

    @set_ev_cls(ofp_event.EventOFPFlowRemoved, MAIN_DISPATCHER)
    def _removed(self, ev: Any) -> None:
        kind = ev.msg.cookie >> 32
        self.retired[kind] = self.retired.get(kind, 0) + ev.msg.packet_count

    # -- packet-in ---------------------------------------------------------------------------
    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def _packet_in(self, ev: Any) -> None:
        msg = ev.msg
        kind = msg.cookie >> 32
        if msg.reason == self.dp.ofproto.OFPR_INVALID_TTL:
            kind = F.K_TTL
            self.retired[kind] = self.retired.get(kind, 0) + 1  # no flow counts these
        regs = {k: v for k, v in msg.match.items() if k.startswith("reg")}
        LOG.debug("packet-in kind %#x regs %s", kind, regs)
        try:
            handler = {
                F.K_ARP: self._arp,
                F.K_LOCAL: self._echo,
                F.K_TTL: lambda d, r: self._error(d, r, 11, 0),
                F.K_NO_ROUTE: lambda d, r: self._error(d, r, 3, 0),
                F.K_REJECT: lambda d, r: self._error(d, r, 3, 13),
                F.K_ARP_MISS: self._miss,
            }.get(kind)
            if handler is not None:
                handler(msg.data, regs)
        except Exception as exc:  # noqa: BLE001 - a bad packet must never stop the controller
            name = type(exc).__name__
            self.errors[name] = self.errors.get(name, 0) + 1
            LOG.warning("edgelab: packet-in of kind %#x refused: %s", kind, exc)

    def _out(self, data: bytes, acts: list[tuple[str, Any]]) -> None:
        dp = self.dp
        ofp = dp.ofproto
        actions, _ = F.actions(dp.ofproto_parser, acts)
        dp.send_msg(dp.ofproto_parser.OFPPacketOut(dp, buffer_id=ofp.OFP_NO_BUFFER, in_port=ofp.OFPP_CONTROLLER,
                                                   actions=actions, data=data))  # fmt: skip

    def _route_out(self, router_id: int, pkt: packet.Packet) -> None:
        """A packet the router itself sends: into its routing table as if it had arrived."""
        pkt.serialize()
        self._out(bytes(pkt.data), [("set", {"reg5": router_id}), ("resubmit", F.T_ROUTE)])

    def _arp(self, data: bytes, regs: dict[str, int]) -> None:
        pkt = packet.Packet(data)
        eth, req = pkt.get_protocol(ethernet.ethernet), pkt.get_protocol(arp.arp)
        if req is None:
            return
        router, rp = self.rports[regs["reg7"]]
        if ipaddress.IPv4Address(req.src_ip) in ipaddress.IPv4Network(f"{rp['ip']}/{rp['plen']}", strict=False):
            self._learn(rp["id"], req.src_ip, req.src_mac)
        if req.opcode != arp.ARP_REQUEST:
            return
        reply = packet.Packet()
        reply.add_protocol(ethernet.ethernet(dst=eth.src, src=rp["mac"], ethertype=F.ETH_ARP))
        reply.add_protocol(arp.arp(opcode=arp.ARP_REPLY, src_mac=rp["mac"], src_ip=req.dst_ip,
                                   dst_mac=req.src_mac, dst_ip=req.src_ip))  # fmt: skip
        reply.serialize()
        self._out(bytes(reply.data), [("set", {"reg1": regs["reg2"]}), ("resubmit", F.T_EGRESS)])

    def _learn(self, rport: int, ip: str, mac: str) -> None:
        key = (rport, ip)
        if self.neighbours.get(key) == mac:
            return
        self.neighbours[key] = mac
        self._sync(self._wanted(), {F.T_NEIGH})
        for data, regs in self.held.pop(key, []):
            self._out(data, [*[("set", {k: v}) for k, v in regs.items()], ("resubmit", F.T_NEIGH)])

    def _miss(self, data: bytes, regs: dict[str, int]) -> None:
        router, rp = self.rports[regs["reg6"]]
        nh = str(ipaddress.IPv4Address(regs["reg3"]))
        held = self.held.setdefault((rp["id"], nh), [])
        if len(held) < HOLD_MAX:
            held.append((data, {k: regs[k] for k in ("reg3", "reg5", "reg6")}))
        req = packet.Packet()
        req.add_protocol(ethernet.ethernet(dst="ff:ff:ff:ff:ff:ff", src=rp["mac"], ethertype=F.ETH_ARP))
        req.add_protocol(arp.arp(opcode=arp.ARP_REQUEST, src_mac=rp["mac"], src_ip=rp["ip"],
                                 dst_mac="00:00:00:00:00:00", dst_ip=nh))  # fmt: skip
        req.serialize()
        self._out(bytes(req.data), [("set", {"reg0": rp["instance"]}), ("set", {"reg1": 0}), ("set", {"reg2": 0}),
                                    ("resubmit", F.T_FLOOD)])  # fmt: skip

    def _echo(self, data: bytes, regs: dict[str, int]) -> None:
        pkt = packet.Packet(data)
        ip, req = pkt.get_protocol(ipv4.ipv4), pkt.get_protocol(icmp.icmp)
        if ip is None or req is None or req.type != icmp.ICMP_ECHO_REQUEST:
            return
        reply = packet.Packet()
        reply.add_protocol(ethernet.ethernet(ethertype=F.ETH_IP))
        reply.add_protocol(ipv4.ipv4(src=ip.dst, dst=ip.src, proto=1, ttl=64))
        reply.add_protocol(icmp.icmp(type_=icmp.ICMP_ECHO_REPLY, code=0, csum=0, data=req.data))
        self._route_out(regs["reg5"], reply)

    def _error(self, data: bytes, regs: dict[str, int], type_: int, code: int) -> None:
        """An ICMP error about ``data`` from the router's address where it came in, quoting
        the offending header and 8 bytes; never about an ICMP error or a broadcast."""
        pkt = packet.Packet(data)
        ip = pkt.get_protocol(ipv4.ipv4)
        if ip is None:
            return
        if ip.proto == 1:
            inner = pkt.get_protocol(icmp.icmp)
            if inner is None or inner.type in ICMP_ERRORS:
                return
        if ipaddress.IPv4Address(ip.dst).is_multicast or ip.dst == "255.255.255.255":
            return
        _, rp = self.rports[regs["reg7"]]
        offending = data[14 : 14 + ip.header_length * 4 + 8]
        body: Any = icmp.TimeExceeded(data=offending) if type_ == 11 else icmp.dest_unreach(data=offending)
        err = packet.Packet()
        err.add_protocol(ethernet.ethernet(ethertype=F.ETH_IP))
        err.add_protocol(ipv4.ipv4(src=rp["ip"], dst=ip.src, proto=1, ttl=64))
        err.add_protocol(icmp.icmp(type_=type_, code=code, csum=0, data=body))
        self._route_out(regs["reg5"], err)

    # -- runtime changes ---------------------------------------------------------------------
    def _serve(self) -> None:
        path = self.cfg["control"]
        if os.path.exists(path):
            os.unlink(path)
        server = hub.listen(path, family=socket.AF_UNIX)
        while True:
            conn, _ = server.accept()
            hub.spawn(self._client, conn)

    def _client(self, conn: Any) -> None:
        """One driver connection: a JSON request per line, a JSON answer per line; what cannot be
        read (not UTF-8, not JSON, not an object, an unknown op) is answered with the reason."""
        with conn:
            for raw in conn.makefile("rb"):
                try:
                    req = json.loads(raw.decode())
                    if not isinstance(req, dict) or "op" not in req:
                        raise ValueError("a request is a JSON object with an op")
                    answer = {"ok": True, **(self._request(req) or {})}
                except Exception as exc:  # noqa: BLE001 - a bad request is answered, never fatal
                    self.errors["request"] = self.errors.get("request", 0) + 1
                    answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
                conn.sendall((json.dumps(answer) + "\n").encode())

    def _request(self, req: dict[str, Any]) -> dict[str, Any] | None:
        op = req["op"]
        if op == "status":
            return {"connected": self.dp is not None and self.ready, "flows": len(self.installed), "retired": self.retired,
                    "neighbours": len(self.neighbours), "errors": self.errors}  # fmt: skip
        if self.dp is None:
            raise RuntimeError("the bridge is not connected")
        sr = self._sr(req.get("router", "t1"))
        if op == "add_route":
            via = req["via"][0] if isinstance(req["via"], list) else req["via"]
            # Into the half of the logical router on whose segments the next hop lies (the DR's
            # tenant segments, else the SR), as the reference gateway's driver does.
            dr = self.routers[sr["id"] - 1]
            nh = ipaddress.IPv4Address(via)
            on_dr = any(p["ip"] and nh in ipaddress.IPv4Network(f"{p['ip']}/{p['plen']}", strict=False)
                        for p in dr["ports"])  # fmt: skip
            half = dr if on_dr else sr
            prefix = str(ipaddress.IPv4Network(req["prefix"]))
            half["routes"] = [r for r in half["routes"] if r["prefix"] != prefix]
            half["routes"].append({"prefix": prefix, "via": via})
        elif op == "del_route":
            prefix = str(ipaddress.IPv4Network(req["prefix"]))
            found = False
            for half in (self.routers[sr["id"] - 1], sr):
                kept = [r for r in half["routes"] if r["prefix"] != prefix or "via" not in r]
                found |= len(kept) != len(half["routes"])
                half["routes"] = kept
            if not found:
                raise KeyError(f"no route {req['prefix']}")
        elif op == "add_fw":
            rules = sr["firewall"]
            pos = req.get("position")
            rules.insert(len(rules) if pos is None else pos, req["rule"])
        elif op == "del_fw":
            kept = [r for r in sr["firewall"] if r.get("name") != req["name"]]
            if len(kept) == len(sr["firewall"]):
                raise KeyError(f"no firewall rule named {req['name']!r}")
            sr["firewall"] = kept
        elif op == "add_nat":
            kind = req["kind"]
            if kind not in ("snat", "dnat", "one_to_one"):
                raise ValueError(f"unknown NAT kind {kind!r}; choose snat, dnat or one_to_one")
            sr[kind].insert(0, req["rule"])  # added rules take precedence
            sr["publics"] = sorted({*sr["publics"], *_publics(kind, req["rule"])})
        elif op == "del_nat":
            found = False
            for kind in ("snat", "dnat", "one_to_one"):
                kept = [r for r in sr[kind] if r.get("name") != req["name"]]
                found |= len(kept) != len(sr[kind])
                sr[kind] = kept
            if not found:
                raise KeyError(f"no NAT rule named {req['name']!r}")
        else:
            raise ValueError(f"unknown op {op!r}")
        self._sync(self._wanted())
        self._barrier()
        return None

    def _barrier(self, timeout: float = 5.0) -> None:
        """Wait until the switch has done everything sent before (its barrier reply): a change
        is in its tables when the driver's call returns.  Called from a client's greenlet only
        (the app's event loop delivers the reply)."""
        parser = self.dp.ofproto_parser
        req = parser.OFPBarrierRequest(self.dp)
        self.dp.set_xid(req)
        done = hub.Event()
        self.barriers[req.xid] = done
        self.dp.send_msg(req)
        try:
            if not done.wait(timeout=timeout):
                raise TimeoutError(f"the switch did not answer a barrier within {timeout} s")
        finally:
            self.barriers.pop(req.xid, None)

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
    def _barrier_reply(self, ev: Any) -> None:
        if ev.msg.xid == self.ready_xid:
            self.ready = True
        done = self.barriers.get(ev.msg.xid)
        if done is not None:
            done.set()

    def _sr(self, name: str) -> dict[str, Any]:
        for r in self.cfg["routers"]:
            if r["kind"] == "sr" and r["logical"] == name:
                return r
        raise KeyError(f"no router {name!r}")


def _publics(kind: str, rule: dict[str, Any]) -> list[str]:
    return list(rule["pool"]) if kind == "snat" else [rule["public"]]
