"""The firewall's tuple-space classifier finds what a scan of the rules in order finds."""

from __future__ import annotations

import ipaddress
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.services.classifier import Classifier
from gateway.services.rules import FirewallRule

ADDRS = [0x0A000001, 0x0A000102, 0x0A0001FF, 0xAC100A0B, 0xCB007101, 0xC0000201]  # a few, so rules hit


def _net(addr: int, plen: int) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network((addr & ((0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF if plen else 0), plen))


rules_st = st.lists(
    st.builds(
        lambda i, action, direction, proto, src, dst, ports: FirewallRule(
            f"r{i}", action, direction, proto, src, dst, ports
        ),
        st.integers(0, 10**6),
        st.sampled_from(["allow", "drop", "reject"]),
        st.sampled_from(["in", "out", "any"]),
        st.sampled_from([None, 6, 17, 1]),
        st.one_of(st.none(), st.builds(_net, st.sampled_from(ADDRS), st.sampled_from([8, 16, 24, 31, 32]))),
        st.one_of(st.none(), st.builds(_net, st.sampled_from(ADDRS), st.sampled_from([0, 12, 24, 32]))),
        st.one_of(
            st.none(),
            st.sampled_from([22, 23, 53, 80]).map(lambda p: (p, p)),
            st.tuples(st.integers(0, 100), st.integers(100, 3000)),
        ),
    ),
    max_size=25,
)
packet_st = st.tuples(
    st.booleans(), st.sampled_from([6, 17, 1, 47]), st.sampled_from(ADDRS), st.sampled_from(ADDRS),
    st.sampled_from([0, 22, 23, 53, 80, 99, 100, 2999, 3001]),
)  # fmt: skip


def scan(rules: list[FirewallRule], inbound: bool, proto: int, src: int, dst: int, dport: int) -> FirewallRule | None:
    return next((r for r in rules if r.matches(inbound, proto, src, dst, dport)), None)


@settings(max_examples=400, deadline=None)
@given(rules_st, st.lists(packet_st, min_size=1, max_size=20))
def test_the_classifier_finds_the_first_matching_rule(rules, packets):
    classifier = Classifier(rules)
    for pkt in packets:
        assert classifier.first(*pkt) is scan(rules, *pkt), (pkt, [r.to_dict() for r in rules])


def test_a_large_rule_set_costs_a_probe_per_shape_not_a_scan():
    """10,000 rules of four shapes: a lookup probes four dicts, whatever the number of rules (the
    figures are in edgelab bench scale; here only that it is not linear: 100x the rules, well
    under 10x the time)."""

    def rules(n: int) -> list[FirewallRule]:
        out = []
        for i in range(n):
            net = _net(0x0A000000 + (i << 8), 24)
            out.append(FirewallRule(f"a{i}", "drop", "out", 6, net, None, (1000 + i % 500,) * 2))
        out.append(FirewallRule("ssh", "allow", "in", 6, None, None, (22, 22)))
        out.append(FirewallRule("web", "allow", "any", 6, None, _net(0xCB007100, 24), (80, 443)))
        out.append(FirewallRule("no-icmp", "drop", "any", 1, None, None, None))
        return out

    def cost(n: int) -> float:
        c = Classifier(rules(n))
        assert len(c) == 4
        t0 = time.perf_counter()
        for i in range(20000):
            c.first(False, 6, 0x0B000001 + i, 0xCB007105, 443)  # matches only "web", the 10,002nd rule
        return time.perf_counter() - t0

    small, large = cost(100), cost(10_000)
    assert large < 10 * small, f"100 -> 10,000 rules: {small * 50:.2f} -> {large * 50:.2f} us a lookup"


def test_bench_scale_runs_small():
    """edgelab bench scale's own measurement, at small sizes: each table filled and looked up."""
    from edgelab import bench_scale

    for fn, n in (
        (bench_scale.sessions, 2000),
        (bench_scale.rules, 50),
        (bench_scale.routes, 2000),
        (bench_scale.macs, 2000),
    ):
        row = bench_scale._isolated(fn, n)
        assert row["size"] == n and row["working_set_ns"] > 0 and row["random_ns"] > 0
        if fn is not bench_scale.rules:  # (the baseline: the same keys in a plain dict)
            assert row["floor_working_set_ns"] > 0 and row["floor_random_ns"] > 0


ADDRS6 = [0x20010DB8_0010_0000_0000_0000_0000_0011, 0x20010DB8_0010_0000_0000_0000_0000_0012,
          0x20010DB8_00CB_0000_0000_0000_0000_00FE, 0x20010DB8_0077_0000_0000_0000_0000_0005]  # fmt: skip


def _net6(addr: int, plen: int) -> ipaddress.IPv6Network:
    full = (1 << 128) - 1
    return ipaddress.IPv6Network((addr & ((full << (128 - plen)) & full if plen else 0), plen))


dual_rules_st = st.lists(
    st.builds(
        lambda i, action, direction, proto, family, splen, dplen, pick, ports: FirewallRule(
            f"r{i}",
            action,
            direction,
            proto,
            None
            if splen is None
            else (
                _net(ADDRS[pick % len(ADDRS)], splen) if family == 4 else _net6(ADDRS6[pick % len(ADDRS6)], splen * 4)
            ),
            None
            if dplen is None
            else (
                _net(ADDRS[(pick + 1) % len(ADDRS)], dplen)
                if family == 4
                else _net6(ADDRS6[(pick + 1) % len(ADDRS6)], dplen * 4)
            ),
            ports,
        ),  # fmt: skip
        st.integers(0, 10**6),
        st.sampled_from(["allow", "drop"]),
        st.sampled_from(["in", "out", "any"]),
        st.sampled_from([None, 6, 17, 58]),
        st.sampled_from([4, 6]),
        st.one_of(st.none(), st.sampled_from([0, 8, 16, 32])),
        st.one_of(st.none(), st.sampled_from([0, 16, 24, 32])),
        st.integers(0, 10),
        st.one_of(st.none(), st.sampled_from([53, 80]).map(lambda p: (p, p))),
    ),
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(dual_rules_st, st.lists(st.tuples(st.booleans(), st.sampled_from([6, 17, 58]), st.integers(0, 3),
                                         st.integers(0, 3), st.sampled_from([53, 80, 99]), st.booleans()),
                               min_size=1, max_size=20))  # fmt: skip
def test_each_family_has_its_classifier_and_never_matches_the_others_rules(rules, packets):
    """A rule naming IPv4 addresses never matches an IPv6 packet (a 32-bit mask over a 128-bit
    address could), nor the reverse; a rule naming none matches both."""
    v4, v6 = Classifier(rules), Classifier(rules, bits=128)
    for inbound, proto, s, d, dport, six in packets:
        src, dst = (ADDRS6[s], ADDRS6[d]) if six else (ADDRS[s], ADDRS[d])
        found = (v6 if six else v4).first(inbound, proto, src, dst, dport)
        assert found is scan(rules, inbound, proto, src, dst, dport)
        if found is not None:
            assert found.family in (None, 6 if six else 4)


def test_bench_scale_wire_builds_the_gateway_it_measures():
    """``bench scale --wire``'s gateways, as the daemon builds them: N firewall rules (none
    admitting or refusing the bench's traffic), N routes (the traffic's still its own), and a
    pool with room for a million sessions."""
    import ipaddress

    from edgelab import bench_scale_wire as wire
    from gateway import config
    from gateway.datapath import Datapath
    from gateway.l4 import FlowTuple
    from suites.duts.reference import render

    for dimension, n in (("firewall rules", 300), ("routes", 300), ("sessions", 0)):
        dp = Datapath(config.build(render(wire._plan(dimension, n), "dut"), "bench"))
        sr = dp.model.router("r1", "sr")
        svc = sr.services
        if dimension == "firewall rules":
            assert len(svc.fw.rules) == n
            for dst in ("203.0.113.1", "203.0.113.250"):
                action, rule = svc.fw.evaluate(False, 6, int(ipaddress.IPv4Address("192.0.2.2")),
                                               int(ipaddress.IPv4Address(dst)), 80, forwarded=False)  # fmt: skip
                assert rule is None, f"{dst}:80 met rule {rule.name}"
        if dimension == "routes":
            assert len(sr.fib.routes()) >= n
            route = sr.fib.lookup(int(ipaddress.IPv4Address("203.0.113.9")))
            assert route is not None and str(ipaddress.IPv4Address(route.via)) == "198.51.100.2"
        if dimension == "sessions":
            assert svc.ct.limit >= 1_000_000 and svc.ct.budget.limit >= 1_000_000
            rule = svc.nat.snat[0]
            assert len(rule.pool) * (rule.port_hi - rule.port_lo + 1) >= 1_000_000
            assert svc.nat.choose_snat(FlowTuple(17, int(ipaddress.IPv4Address("192.0.2.3")), 1024, 1, 9)) is not None
