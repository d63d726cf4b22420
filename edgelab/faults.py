"""The seeded-fault catalogue ``edgelab mutants`` plants in the reference gateway.

Each fault is a slip a gateway developer could make, of a line or two, in the
code the README's promises rest on: it is written as an exact text replacement
(``find`` must occur exactly once in ``path``; a unit test checks that every
fault still applies, so the catalogue follows the code).  ``breaks`` says what
a user would see; ``first`` names the suites that concern it (``forwarding``:
``suites/robot/forwarding.robot`` and ``suites/e2e/test_forwarding.py``), which
the runner starts with.  Nothing here is imported by the gateway.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Fault:
    name: str
    path: str
    find: str
    replace: str
    breaks: str
    first: tuple[str, ...] = ()


FAULTS: tuple[Fault, ...] = (
    # -- the switch ------------------------------------------------------------------------
    Fault(
        "flood-back-to-sender",
        "gateway/stages/l2switch.py",
        "out = [m for m in inst.members if m[0] is not in_port or m[1] != vlan]",
        "out = list(inst.members)",
        "a flood goes back out of the segment it came from",
        ("forwarding",),
    ),
    Fault(
        "egress-ingress-vlan",
        "gateway/stages/egress.py",
        "port.send(buf[:12] + _TAG.pack(ETH_P_8021Q, vlan) + buf[12:])",
        "port.send(buf[:12] + _TAG.pack(ETH_P_8021Q, pkt.vlan or vlan) + buf[12:])",
        "a frame leaves tagged with the VLAN it came in on, not its output's",
        ("forwarding",),
    ),
    Fault(
        "mac-move-keeps-cache",
        "gateway/tables/aging.py",
        "            old.valid = False\n            self._changed()",
        "            self._changed()",
        "a MAC or ARP entry replaced (a host that moved) leaves cached flows on the old one",
        ("forwarding", "cache"),
    ),
    Fault(
        "arp-spoof-flooded",
        "gateway/stages/l2switch.py",
        "if spa == own.ip and src != own.mac and own.ip not in own.router.yielded:",
        "if spa == own.ip and src == own.mac and own.ip not in own.router.yielded:",
        "a host's ARP claiming the gateway's address is flooded to the other hosts",
        ("security",),
    ),
    # -- routing ---------------------------------------------------------------------------
    Fault(
        "ttl-not-decremented",
        "gateway/stages/routing.py",
        "        decrement_ttl(buf)\n        if fx is not None:\n            fx.ttl_dec += 1",
        "        if fx is not None:\n            fx.ttl_dec += 1",
        "the slow path forwards without decrementing the TTL",
        ("forwarding",),
    ),
    Fault(
        "ttl-expiry-off-by-one",
        "gateway/stages/routing.py",
        "        if buf[22] <= 1:",
        "        if buf[22] < 1:",
        "a packet arriving with TTL 1 is forwarded with TTL 0 instead of expiring",
        ("forwarding",),
    ),
    Fault(
        "icmp-error-first-port",
        "gateway/stages/routing.py",
        "src = pkt.rport.ip if pkt.rport is not None else router.ports[0].ip",
        "src = router.ports[0].ip",
        "ICMP errors come from the router's first address, not the ingress port's",
        ("forwarding",),
    ),
    Fault(
        "no-net-unreachable",
        "gateway/stages/routing.py",
        '            self.send_error(pkt, Icmp.DEST_UNREACH, 0)\n            return self.drop(pkt, "no-route"',
        '            return self.drop(pkt, "no-route"',
        "a packet with no route is dropped silently, no ICMP net unreachable",
        ("forwarding",),
    ),
    Fault(
        "icmp-quote-no-l4",
        "gateway/l3.py",
        "quote = bytes(frame[l3 : l3 + min(total, ICMP_ERROR_MAX - 28)])",
        "quote = bytes(frame[l3 : l3 + ihl])",
        "ICMP errors quote the IP header only, not the first 8 bytes of the transport header",
        ("forwarding", "nat"),
    ),
    Fault(
        "lpm-shortest-first",
        "gateway/tables/fib.py",
        "self._lens = sorted(self._by_len, reverse=True)",
        "self._lens = sorted(self._by_len)",
        "the FIB picks the shortest matching prefix, not the longest",
        ("forwarding", "kernel"),
    ),
    Fault(
        "arp-any-segment",
        "gateway/model.py",
        "if ip == rport.ip or self.owned.get(ip) is rport:",
        "if ip in self.local_ips:",
        "the router answers ARP for its addresses on every segment, not only the address's own",
        ("forwarding", "security"),
    ),
    Fault(
        "urpf-on-wrong-half",
        "gateway/stages/routing.py",
        'if router.kind == "dr" and rport is not None and rport is not router.transit_port:',
        'if router.kind == "sr" and rport is not None and rport is not router.transit_port:',
        "tenants' spoofed source addresses pass (uRPF checked on the SR, not the DR)",
        ("security",),
    ),
    Fault(
        "arp-queue-not-released",
        "gateway/stages/routing.py",
        '            queued.note(self.name, f"arp resolved {ip_str(arp.spa)}: released")\n            self.ctx.emit(queued, "egress")',
        '            queued.note(self.name, f"arp resolved {ip_str(arp.spa)}: released")',
        "packets queued behind an ARP resolution are lost when the answer comes",
        ("forwarding",),
    ),
    Fault(
        "garp-does-not-move-neighbour",
        "gateway/tables/arp.py",
        "if (port, ip) in self._entries or (port, ip) in self.pending:",
        "if (port, ip) in self.pending:",
        "a gratuitous ARP does not move a neighbour entry the router already has",
        ("failover", "ha"),
    ),
    Fault(
        "bad-checksum-accepted",
        "gateway/checksums.py",
        '        if s != 0xFFFF:\n            return "ip-bad-checksum"',
        '        if False:\n            return "ip-bad-checksum"',
        "IPv4 packets with a bad header checksum are routed",
        ("forwarding",),
    ),
    # -- NAT -------------------------------------------------------------------------------
    Fault(
        "snat-port-reused",
        "gateway/services/nat.py",
        "if lo <= want <= hi and want not in used and want not in skip:",
        "if lo <= want <= hi and want not in skip:",
        "SNAT keeps a source port another flow already holds on the same public address",
        ("nat",),
    ),
    Fault(
        "snat-pool-off-by-one",
        "gateway/services/nat.py",
        "        while self.fresh <= hi:",
        "        while self.fresh < hi:",
        "the last port of an SNAT range is never used",
        ("nat",),
    ),
    Fault(
        "snat-port-never-freed",
        "gateway/services/nat.py",
        "            self._free(reply.proto, reply.dst, reply.dport)\n",
        "",
        "a closed connection's public port is never given back to the pool",
        ("nat",),
    ),
    Fault(
        "dnat-any-protocol",
        "gateway/services/nat.py",
        "rule = self._forwards.get((dst, proto, dport))",
        "rule = self._forwards.get((dst, proto, dport)) or self._forwards.get((dst, 6, dport)) or self._forwards.get((dst, 17, dport))",
        "a port forward also forwards the other protocol's traffic to that port",
        ("nat",),
    ),
    Fault(
        "hairpin-not-snatted",
        "gateway/services/sr.py",
        "hairpin = via_transit and pkt.nat_rule is not None",
        "hairpin = via_transit and pkt.nat_rule is None",
        "hairpin traffic reaches the server with the tenant's own address",
        ("nat",),
    ),
    Fault(
        "icmp-error-port-not-restored",
        "gateway/services/sr.py",
        "rewrite(buf, ioff, True, quoted.src, quoted.sport)",
        "rewrite(buf, ioff, True, quoted.src, inner.sport)",
        "an ICMP error about a NATed flow quotes the public port, not the tenant's",
        ("nat",),
    ),
    Fault(
        "one-to-one-outbound-pool",
        "gateway/services/nat.py",
        "        if one is not None:\n            return one, one.public, sport\n",
        "",
        "a host with a 1:1 address leaves through the SNAT pool instead",
        ("nat",),
    ),
    # -- conntrack and the firewall --------------------------------------------------------
    Fault(
        "fw-runtime-rule-first",
        "gateway/services/firewall.py",
        "self.rules.insert(len(self.rules) if position is None else position, rule)",
        "self.rules.insert(0 if position is None else position, rule)",
        "a rule added at run time goes before the configured rules (first match is broken)",
        ("firewall",),
    ),
    Fault(
        "fw-change-not-revalidated",
        "gateway/services/firewall.py",
        "        self.generation += 1\n        self.epoch.bump()  # running flows",
        "        self.epoch.bump()  # running flows",
        "a rule change reaches new connections only, never a running flow",
        ("firewall",),
    ),
    Fault(
        "fw-unsolicited-allowed",
        "gateway/services/firewall.py",
        '            key, action = "in-unsolicited", DROP',
        '            key, action = "in-unsolicited", ALLOW',
        "unsolicited inbound connections are let in",
        ("firewall",),
    ),
    Fault(
        "ct-tcp-no-syn-check",
        "gateway/services/sr.py",
        "if t.proto == IPPROTO_TCP and (not flags & SYN or flags & (ACK | RST)):",
        "if t.proto == IPPROTO_TCP and (not flags & SYN and flags & RST):",
        "a TCP segment that is not a SYN opens a connection (an ACK scan gets through)",
        ("firewall", "security"),
    ),
    Fault(
        "reject-without-icmp",
        "gateway/stages/sr.py",
        "self.send_error(pkt, Icmp.DEST_UNREACH, 13)",
        "pass",
        "a reject rule drops silently instead of sending ICMP administratively prohibited",
        ("firewall",),
    ),
    # -- the cache -------------------------------------------------------------------------
    Fault(
        "cache-ignores-route-change",
        "gateway/stages/routing.py",
        '            fx.read(L3)\n            fx.depend(router.fib, "generation")',
        "            fx.read(L3)",
        "a route change does not reach flows already running (their cache entries stay)",
        ("cache", "forwarding"),
    ),
    Fault(
        "cache-ttl-expiry",
        "gateway/cache/__init__.py",
        "if entry.ttl_dec and buf[22] <= entry.ttl_dec:",
        "if entry.ttl_dec and buf[22] < entry.ttl_dec:",
        "a packet of a cached flow whose TTL runs out is forwarded with TTL 0",
        ("cache",),
    ),
    # -- HA --------------------------------------------------------------------------------
    Fault(
        "takeover-without-garp",
        "gateway/ha/ownership.py",
        "            self._changed()\n        self.garp(rport, ip)",
        "            self._changed()",
        "the standby takes over the addresses without a gratuitous ARP",
        ("failover", "ha"),
    ),
    Fault(
        "failback-keeps-addresses",
        "gateway/ha/agent.py",
        "            if peer.held and self.preempt[peer.router]:\n                self._release(peer, now)",
        "            if peer.held and self.preempt[peer.router]:\n                pass",
        "after failback the standby keeps answering for the active SR's addresses",
        ("failover", "ha"),
    ),
    Fault(
        "bfd-multiplier-ignored",
        "gateway/ha/bfd.py",
        "return self.remote_mult * max(self.cfg_rx_us, self.remote_tx_us) / 1e6",
        "return max(self.cfg_rx_us, self.remote_tx_us) / 1e6",
        "BFD declares its peer down after one late packet (the detect multiplier is ignored)",
        ("failover", "ha"),
    ),
    Fault(
        "sync-gap-never-repaired",
        "gateway/ha/sync.py",
        "            self._resend(peer, first, last, send)",
        "            pass",
        "a replication message lost (a cut channel) is never sent again: the standby misses those connections",
        ("failover",),
    ),
    Fault(
        "sync-resync-ignored",
        "gateway/ha/sync.py",
        "        elif kind == wire.RESYNC:\n            self.start_dump()",
        "        elif kind == wire.RESYNC:\n            pass",
        "an SR that restarts never learns the connections its peer holds: failback breaks them",
        ("failover",),
    ),
    Fault(
        "publics-not-announced",
        "gateway/ha/ownership.py",
        "                    if up is not None:\n                        self.garp(up, ip)",
        "                    if up is not None:\n                        pass",
        "an SR back from a failure does not announce its public NAT addresses: the provider keeps sending "
        "their traffic to the peer",
        ("failover", "ha"),
    ),
    # -- services, EVI, management ---------------------------------------------------------
    Fault(
        "dhcp-relay-giaddr",
        "gateway/relay/dhcp.py",
        '        out[24:28] = giaddr.to_bytes(4, "big")\n        udp = Udp(67, 67)',
        '        out[24:28] = self.server.to_bytes(4, "big")\n        udp = Udp(67, 67)',
        "the DHCP relay writes the server's address as giaddr: no lease",
        ("dhcp",),
    ),
    Fault(
        "ftp-port-bytes-swapped",
        "gateway/alg/ftp.py",
        "(a[0], a[1], a[2], a[3], port >> 8, port & 0xFF)",
        "(a[0], a[1], a[2], a[3], port & 0xFF, port >> 8)",
        "the FTP ALG writes a translated PORT/PASV port with its bytes swapped",
        ("ftp",),
    ),
    Fault(
        "evi-no-split-horizon",
        "gateway/stages/l2switch.py",
        'if across and inst.links and in_port.role != "evi":',
        "if across and inst.links:",
        "a broadcast from a remote site is flooded back into the tunnels",
        ("evi",),
    ),
    Fault(
        "mgmt-any-port",
        "gateway/model.py",
        "return (proto, port) in self.ports or (proto, None) in self.ports",
        "return any(p == proto for p, _port in self.ports)",
        "in-band management admits every port of an admitted protocol",
        ("management",),
    ),
)
