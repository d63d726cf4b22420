"""The DUT contract: what the suites may ask of a gateway, any gateway.

Who does what: a topology declares the gateway's position and its intent (the
plan); a :class:`DutDriver` renders that intent into its gateway's own
configuration, starts the gateway on the node and returns a
:class:`GatewayHandle`.  The suites use the handle and nothing else: they
never read a DUT's own configuration, and they assert on what hosts see on
the wire; the handle's counters are supporting evidence.

Every test names the capabilities it needs (``CAPABILITIES`` below); a DUT
whose driver does not declare one gets *n/a* for that test, never a pass.
Only tests that need an ``internals.*`` capability may read the reference
gateway's own state (``show``: drop names, traces, cache counters).
"""

from __future__ import annotations

from typing import Any

# What a gateway may support, by name: the tests' ``needs`` and the report use these.
CAPABILITIES: dict[str, str] = {
    "switching": "frames switched inside an instance, (port, VLAN) -> instance, isolation between instances",
    "routing": "routing between tenant segments and to the provider, router ARP and ping, ICMP errors",
    "counters": "normalized counters: forwarded, dropped by category",
    "route.runtime": "static routes added and removed at run time",
    "nat.snat": "source NAT of tenants to a pool, one public (address, port) per session",
    "nat.dnat": "port forwards from public address:port to a tenant",
    "nat.one_to_one": "1:1 NAT of a tenant to a public address, both directions",
    "nat.hairpin": "a tenant reaching a port forward through its public address",
    "nat.runtime": "NAT rules added and removed at run time",
    "fw.stateful": "stateful firewall: tenant-initiated allowed, unsolicited inbound dropped",
    "fw.reject": "a reject rule answers ICMP administratively prohibited",
    "fw.runtime": "firewall rules added and removed at run time, also for running flows",
    "ha.failover": "a peer SR takes over when the active one fails",
    "ha.preempt": "the recovered SR takes its addresses back (and the variant without)",
    "ha.ecmp": "active/active SRs, flows spread per 5-tuple",
    "ha.stateful": "connections through the active SR survive its failure and its return: its peer knows them "
    "(connection state replicated), so a transfer through SNAT or a port forward goes on whole, an idle TCP "
    "connection's or a UDP flow's first packet after the failover, from the far side, reaches the tenant (the "
    "same public endpoint); a peer that restarts learns them again, a cut replication channel catches up",
    "fault.crash": "the gateway process can be crashed and restarted",
    "bgp": "BGP with the provider router through the gateway: the provider learns its public prefixes, "
    "the gateway routes the provider's",
    "sec.urpf": "a tenant's packets with a source address off its segment are dropped (uRPF)",
    "sec.arp": "an ARP broadcast claiming the gateway's address is not passed on to the other hosts",
    "mgmt.inband": "in-band management: an address on the uplink reaches the gateway's management service "
    "(HTTP, GET /node answers the node's name) from the allowed prefix only",
    "evi.l2": "an instance extended between sites over an IP core (by any tunnel: evi.gre says which): "
    "hosts at three sites share one L2 domain; a local VLAN and another instance with the same VLAN stay local",
    "evi.gre": "the EVI wire format: MAC-in-GRE (key bit only, protocol 0x6558, the network id in the key's "
    "upper 24 bits, DF set), as Open vSwitch's GRE ports and tcpdump read it",
    "evi.flooding": "across sites only broadcast goes, one copy per remote site; no unknown unicast; "
    "nothing from one site is sent on to another (split horizon)",
    "evi.discovery": "EVI links form a full mesh from registrations with a discovery server (no per-pair "
    "configuration); a site that stops is removed after its hold time; with the servers down the links stay "
    "and a new site cannot join",
    "evi.mac_advertisement": "MACs learned at one site are advertised to the others, so a unicast to them crosses "
    "before any flood; a MAC that moves between sites converges",
    "evi.arp_suppression": "an ARP request for a remote host the edge has learned is answered at the edge; "
    "nothing goes into the core",
    "evi.multihoming": "a site with two edges: each extended instance has one appointed forwarder, so no frame "
    "enters the core or the site twice; when it fails the other edge takes the instance over",
    "dhcp.relay": "DHCP relayed from a tenant segment to a server by unicast, giaddr the gateway's address "
    "there, option 82 naming the (port, VLAN) the client came in on, removed from the reply",
    "tenancy.overlap": "two tenant routers with the same subnets and addresses on one edge: each tenant's "
    "packets reach its own hosts only, each leaves from its own NAT pool and has its own BGP session",
    "config.reload": "the configuration replaced at run time: a broken one is refused whole and the running one "
    "stays in force, traffic unaffected; a good one applies",
    "alg.ftp": "FTP through NAT: active mode (PORT, EPRT) from a tenant behind SNAT and passive mode (PASV, EPSV) "
    "to a server behind a port forward; the data connection admitted as related and translated, for the "
    "announced peer only",
    "fault.process": "one process of the gateway (its EVI control process, its HA agent) can be stopped and "
    "started alone",
    "evi.mtu": "a frame that does not fit the core with the tunnel overhead is dropped and counted, never fragmented",
    "ipv6.routing": "IPv6 between tenant segments and to the provider (routed, not translated): the router "
    "answers neighbour solicitations and ping6 for its addresses, decrements the hop limit, sends ICMPv6 time "
    "exceeded (traceroute -6 sees each hop)",
    "ipv6.ra": "router advertisements on tenant segments: hosts learn their default router (its link-local "
    "address) and their on-link prefix from them",
    "ipv6.fw": "the stateful firewall for IPv6: tenant-initiated flows allowed and untranslated, unsolicited "
    "inbound dropped, ICMPv6 packet too big about a tenant's flow reaches it (path MTU discovery works)",
    "ipv6.nptv6": "NPTv6 (RFC 6296) on the SR: a tenant prefix leaves as another of the same length, stateless and "
    "checksum-neutral (the far side sees the mapped address, the transfer arrives whole); replies come back",
    "internals.show": "the reference gateway's show output (drop names, MAC/ARP/FIB tables)",
    "internals.trace": "per-packet traces through the stages",
    "internals.cache": "datapath cache entries and counters",
    "internals.ha": "the HA agent's own state (BFD sessions, owned addresses)",
}

# Normalized drop categories of counters()["dropped"].
DROP_CATEGORIES = ("no-instance", "no-route", "ttl", "firewall", "nat", "malformed", "arp", "tunnel", "other")


class GatewayHandle:
    """A running gateway, as the suites see it.  A driver's handle implements every
    method its capabilities promise; the rest raise NotImplementedError."""

    name: str = ""
    capabilities: frozenset[str] = frozenset()
    # The (protocol, port) SR peers replicate connection state on (ha.stateful: the suites
    # cut it on the transit switch); None when the gateway has no such channel.
    replication: tuple[str, int] | None = None

    def alive(self) -> bool:
        """The gateway process runs and answers."""
        raise NotImplementedError

    def settled(self) -> bool:
        """Its control plane has converged (HA: it sees its peers); a precondition for
        failure tests, never evidence that a behaviour works."""
        return self.alive()

    def counters(self) -> dict[str, Any]:
        """``{"forwarded": N, "dropped": {category: N for category in DROP_CATEGORIES}}``."""
        raise NotImplementedError("this gateway has no normalized counters")

    # -- runtime changes -------------------------------------------------------------------
    def add_route(self, prefix: str, via: str | list[str], router: str = "t1") -> None:
        raise NotImplementedError

    def del_route(self, prefix: str, router: str = "t1") -> None:
        raise NotImplementedError

    def add_firewall_rule(self, rule: dict[str, Any], position: int | None = None, router: str = "t1") -> None:
        """``rule``: name, action (allow | drop | reject), direction (in | out | any), proto, src, dst, dport."""
        raise NotImplementedError

    def del_firewall_rule(self, name: str, router: str = "t1") -> None:
        raise NotImplementedError

    def add_nat_rule(self, kind: str, rule: dict[str, Any], router: str = "t1") -> None:
        """``kind``: snat | dnat | one_to_one; ``rule`` as in the plan's ``nat`` section."""
        raise NotImplementedError

    def del_nat_rule(self, name: str, router: str = "t1") -> None:
        raise NotImplementedError

    # -- failure injection -----------------------------------------------------------------
    def crash(self) -> None:
        """Kill the gateway hard (SIGKILL), as a crash would; its peers are left to notice."""
        raise NotImplementedError

    def stop_process(self, name: str) -> None:
        """Stop one named process of the gateway (``evi``: its EVI control plane; ``ha``: its
        HA agent), the rest running on (capability ``fault.process``)."""
        raise NotImplementedError

    def start_process(self, name: str) -> None:
        """Start again a process :meth:`stop_process` stopped."""
        raise NotImplementedError

    # -- configuration -----------------------------------------------------------------------
    def config_text(self) -> str:
        """The gateway's configuration as it stands, in its own format (``config.reload``)."""
        raise NotImplementedError

    def reload(self, text: str) -> str | None:
        """Make ``text`` (the gateway's own format) its configuration at run time: None when it
        was applied, else why it was refused (the running configuration then stays)."""
        raise NotImplementedError

    # -- evidence ----------------------------------------------------------------------------
    def logs(self) -> dict[str, str]:
        """The gateway's logs by name (kept as artifacts when a test fails)."""
        return {}

    def leaks(self) -> dict[str, Any] | None:
        """Memory the gateway holds for nothing, if it can tell (the reference: objects in
        reference cycles, found by a full collection); None if it cannot."""
        return None

    def show(self, what: str = "summary") -> Any:
        """The reference gateway's own state (capability ``internals.show``)."""
        raise NotImplementedError(f"this gateway cannot show {what!r}")


class DutDriver:
    name = "base"
    node_cls: Any = None
    capabilities: frozenset[str] = frozenset()
    # One line for the report: how this DUT is built on this kernel.
    description = ""

    def __init__(self, lab: Any) -> None:
        self.lab = lab

    def start(self, gateway: str) -> GatewayHandle:
        raise NotImplementedError

    def stop(self, gateway: str) -> None:
        raise NotImplementedError

    @classmethod
    def versions(cls) -> dict[str, str]:
        """The versions of what this DUT is made of, for the report's header."""
        return {}
