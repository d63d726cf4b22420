"""The DHCP relay (RFC 3046 option 82), a data-plane service of the gateway.

    python -m gateway.relay.dhcp --config FILE --service NAME     (started by the daemon)

Where this sits: connected to the datapath's service transport, it gets the
DHCP packets (UDP 67) the DR receives: a client's broadcast on one of the
DR's segments, and the server's answer to the DR's address.

- A request is relayed by unicast to the configured server, from the DR's
  address on the client's segment: ``giaddr`` that address, ``hops`` + 1, and
  option 82 appended — circuit-id ``PORT:VLAN`` (the EVI record the client
  came in on: the same VLAN on two ports is two circuits), remote-id the
  node's name.  It resumes at ``dr``: the DR routes it as its own packet.
- A reply is sent back to the client's record, broadcast, from the DR's
  address and MAC on it, with option 82 removed; it resumes at ``egress``.

Refused, each with its reason as the DROP verdict (the datapath counts them
by reason): a packet that is not BOOTP (``not-bootp``), options that run
past the end or have no end (``bad-options``), a client's request that
already carries option 82 (``client-option-82``: RFC 3046 6 untrusted),
a reply with no option 82 or one whose circuit-id names no record of ours on
the ``giaddr``'s segment (``circuit-id-mismatch``).
"""

from __future__ import annotations

import struct
import sys

from gateway import config
from gateway.headers import IPPROTO_UDP, IPv4, Udp, ip_int, ip_str
from gateway.io.service import HEADER, NO_VLAN, RESUME, VERSION
from gateway.io.service_process import ServiceProcess

BOOTP = struct.Struct("!BBBBIHHIIII16s")  # op htype hlen hops xid secs flags ciaddr yiaddr siaddr giaddr chaddr
COOKIE = b"\x63\x82\x53\x63"
OPTIONS_AT = 236 + 4
OPT_82, OPT_END, OPT_PAD = 82, 255, 0


class Refused(ValueError):
    pass


def options(msg: bytes) -> list[tuple[int, bytes]]:
    """The options of a BOOTP message, in order, up to END (refused if they run past it)."""
    if len(msg) < OPTIONS_AT or msg[236:240] != COOKIE:
        raise Refused("not-bootp")
    out: list[tuple[int, bytes]] = []
    i = OPTIONS_AT
    while i < len(msg):
        code = msg[i]
        if code == OPT_PAD:
            i += 1
            continue
        if code == OPT_END:
            return out
        if i + 1 >= len(msg) or i + 2 + msg[i + 1] > len(msg):
            raise Refused("bad-options")
        out.append((code, bytes(msg[i + 2 : i + 2 + msg[i + 1]])))
        i += 2 + msg[i + 1]
    raise Refused("bad-options")


def with_options(msg: bytes, opts: list[tuple[int, bytes]]) -> bytes:
    body = b"".join(bytes([c, len(v)]) + v for c, v in opts)
    return bytes(msg[:OPTIONS_AT]) + body + bytes([OPT_END])


def agent_info(circuit: bytes, remote: bytes) -> bytes:
    return bytes([1, len(circuit)]) + circuit + bytes([2, len(remote)]) + remote


def circuit_of(value: bytes) -> bytes | None:
    i = 0
    while i + 2 <= len(value):
        sub, n = value[i], value[i + 1]
        if sub == 1:
            return bytes(value[i + 2 : i + 2 + n])
        i += 2 + n
    return None


class Relay(ServiceProcess):
    """DHCP relay with option 82"""

    kind = "dhcp-relay"

    def __init__(self, cfg: config.Config, service: str) -> None:
        super().__init__(cfg, service)
        self.server = ip_int(self.service.options["server"])
        # Each DR port: its instance's records (the circuits) and its address and MAC.
        self.segments: dict[str, tuple[int, bytes, str]] = {}  # instance -> (ip, mac, router label)
        for rc in cfg.routers:
            for pc in rc.dr.ports if rc.dr is not None else []:
                self.segments[pc.instance] = (int(pc.ip.ip), pc.mac, f"{rc.name}-dr")
        self.circuits = {
            f"{rec.port}:{rec.vlan or 0}".encode(): (inst.name, rec.port, rec.vlan)
            for inst in cfg.instances.values()
            for rec in inst.records
        }
        self.counts = {"relayed": 0, "answered": 0, "refused": 0}

    def start_event(self) -> dict[str, object]:
        return {**super().start_event(), "server": ip_str(self.server)}

    def handle(self, data: bytes) -> bytes:
        """One punted message -> the message to answer it with (RESUME or DROP)."""
        _v, _kind, _f, seq, _stage, inst_i, port_i, vlan, router_i = HEADER.unpack_from(data)
        packet = data[HEADER.size :]
        try:
            if len(packet) < 28 or packet[9] != IPPROTO_UDP:
                raise Refused("not-bootp")
            ihl = (packet[0] & 0x0F) * 4
            msg = packet[ihl + 8 :]
            if len(msg) < OPTIONS_AT:
                raise Refused("not-bootp")
            if msg[0] == 1:
                instance = self.names["instances"][inst_i]
                port = self.names["ports"][port_i]
                return self.request(seq, msg, instance, port, None if vlan == NO_VLAN else vlan, router_i)
            if msg[0] == 2:
                return self.reply(seq, msg)
            raise Refused("not-bootp")
        except (Refused, IndexError, KeyError) as exc:
            self.counts["refused"] += 1
            return self.drop(seq, str(exc) if isinstance(exc, Refused) else "not-bootp")

    def request(self, seq: int, msg: bytes, instance: str, port: str, vlan: int | None, router_i: int) -> bytes:
        opts = options(msg)
        if any(code == OPT_82 for code, _ in opts):
            raise Refused("client-option-82")
        seg = self.segments.get(instance)
        if seg is None:
            raise Refused("no-router-on-segment")
        giaddr, _mac, _label = seg
        out = bytearray(
            with_options(msg, [*opts, (OPT_82, agent_info(f"{port}:{vlan or 0}".encode(), self.node.encode()))])
        )
        out[3] = min(255, out[3] + 1)  # hops
        out[24:28] = giaddr.to_bytes(4, "big")
        udp = Udp(67, 67).serialize(bytes(out), giaddr, self.server)
        ip = IPv4(src=giaddr, dst=self.server, proto=IPPROTO_UDP, ttl=64).serialize(len(udp)) + udp
        self.counts["relayed"] += 1
        stage = self.names["stages"].index("dr")
        return HEADER.pack(VERSION, RESUME, 0, seq, stage, 0, 0, NO_VLAN, router_i) + ip

    def reply(self, seq: int, msg: bytes) -> bytes:
        opts = options(msg)
        info = next((v for code, v in opts if code == OPT_82), None)
        circuit = circuit_of(info) if info is not None else None
        target = self.circuits.get(circuit or b"")
        giaddr = int.from_bytes(msg[24:28], "big")
        seg = self.segments.get(target[0]) if target else None
        if target is None or seg is None or seg[0] != giaddr:
            raise Refused("circuit-id-mismatch")
        instance, port, vlan = target
        _ip, mac, _label = seg
        out = with_options(msg, [(c, v) for c, v in opts if c != OPT_82])
        udp = Udp(67, 68).serialize(out, giaddr, 0xFFFFFFFF)
        ip = IPv4(src=giaddr, dst=0xFFFFFFFF, proto=IPPROTO_UDP, ttl=64).serialize(len(udp)) + udp
        frame = b"\xff" * 6 + mac + b"\x08\x00" + ip
        self.counts["answered"] += 1
        stage = self.names["stages"].index("egress")
        port_i = self.names["ports"].index(port)
        inst_i = self.names["instances"].index(instance)
        return HEADER.pack(VERSION, RESUME, 0, seq, stage, inst_i, port_i, NO_VLAN if vlan is None else vlan, 0) + frame


if __name__ == "__main__":
    sys.exit(Relay.main())
