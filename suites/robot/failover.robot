*** Settings ***
Documentation       Service-router failover on edge-ha that loses no connection: the SRs replicate
...                 their connection state (conntrack entries, NAT sessions), so what was open through
...                 the active SR when it crashed goes on through its peer, with the same public address
...                 and port, in both directions; when the SR returns it learns them back and takes over
...                 again without breaking them; a cut replication channel catches up.  Judged from the
...                 hosts.  The last three tests read the reference gateway's HA agent.
Library             suites.lib.keywords.EdgelabLibrary    dut=${DUT}
Suite Setup         Start Topology    edge-ha
Suite Teardown      Stop Topology
Test Tags           failover    needs:ha.failover


*** Variables ***
${DUT}      reference


*** Test Cases ***
Connections Are Open Through The Active SR
    [Tags]    needs:ha.stateful    needs:fault.crash
    Given the gateways have settled
    When t1 streams to ext1 for 6 s
    And ext1 streams to the port forward t2-http for 6 s
    And t1 holds a TCP connection open to ext1
    And t1 holds a UDP flow open to ext1
    Then ext1 sees the held connections from the SNAT pool
    And pr reaches 203.0.113.1 at the uplink MAC of edge1
    When edge1 crashes
    Then t1 reaches ext1 again within 5 s
    And pr reaches 203.0.113.10 at the uplink MAC of edge2

A Transfer Through SNAT Goes On Whole
    [Tags]    needs:ha.stateful    needs:fault.crash
    Then the stream from t1 to ext1 arrived whole

A Transfer Through A Port Forward Goes On Whole
    [Tags]    needs:ha.stateful    needs:fault.crash
    Then the stream from ext1 to t2-http arrived whole

An Idle TCP Connection Lets The Far Side Speak First
    [Tags]    needs:ha.stateful    needs:fault.crash
    Then ext1 speaks first on the held connection and t1 hears it

A UDP Flow Keeps Its Mapping
    [Tags]    needs:ha.stateful    needs:fault.crash
    Then ext1 speaks first on the UDP flow and hears t1 from the same endpoint

A Connection Opened After The Failover Works
    [Tags]    needs:ha.stateful    needs:fault.crash
    When t1 streams to ext1 for 1 s
    Then the stream from t1 to ext1 arrived whole

The Returning SR Learns The Connections And Keeps Them
    [Documentation]    A connection opened through the standby is known to the SR that comes back
    ...    (its peer sends it the whole table) before it takes its addresses back.
    [Tags]    needs:ha.stateful    needs:fault.crash    needs:ha.preempt
    Given t1 holds a TCP connection open to ext1
    And t1 holds a UDP flow open to ext1
    When edge1 comes back
    And the gateways have settled
    Then pr reaches 203.0.113.10 at the uplink MAC of edge1
    And ext1 speaks first on the held connection and t1 hears it
    And ext1 speaks first on the UDP flow and hears t1 from the same endpoint
    [Teardown]    Run Keywords    The held connections are closed    AND    The streams are stopped

A Cut Replication Channel Catches Up
    [Documentation]    While the channel is cut the SRs forward as before; what they could not tell
    ...    each other meanwhile is told once it is back.
    [Tags]    needs:ha.stateful    needs:fault.crash
    Given the gateways have settled
    When the replication between the SRs is cut on st
    And t1 holds a TCP connection open to ext1
    Then t1 pings ext1
    And the ping succeeds
    When the replication between the SRs is restored on st
    And the SRs have had 3 s to catch up
    And edge1 crashes
    Then t1 reaches ext1 again within 5 s
    And ext1 speaks first on the held connection and t1 hears it
    [Teardown]    Run Keywords    The replication between the SRs is restored on st
    ...    AND    The held connections are closed    AND    edge1 comes back

Steady State: Both SRs Up, Traffic Through The Active One
    [Tags]    reference-internals    needs:internals.ha
    Given the gateways have settled
    And BFD is up between edge1 and edge2
    When t1 pings ext1
    Then the ping succeeds
    And the DR reaches 169.254.0.2 at the MAC of edge1

The Standby Takes Over When The Active SR Crashes
    [Tags]    reference-internals    needs:internals.ha
    Given BFD is up between edge1 and edge2
    When a probe flow from t1 to ext1 runs while edge1 crashes
    Then the probe lost at most 500 ms of traffic
    And edge2 holds the addresses of edge1
    And the DR reaches 169.254.0.2 at the MAC of edge2

Failback When The Active SR Returns
    [Tags]    reference-internals    needs:internals.ha
    When edge1 comes back
    Then BFD is up between edge1 and edge2
    And edge2 holds no address of another SR
    And the DR reaches 169.254.0.2 at the MAC of edge1
    And t1 reaches ext1 through 3 routed hop(s)

An IPv6 Transfer Goes On Whole
    [Documentation]    IPv6 connections are replicated too (tracked, not translated): a transfer
    ...    over IPv6 through the active SR goes on through its peer after a crash.
    [Tags]    needs:ha.stateful    needs:fault.crash    needs:ipv6.routing    needs:ipv6.ra
    Given edge1 comes back
    And the gateways have settled
    And t1 has an IPv6 default route from t1-dr:web
    And t1 reaches ext1 over IPv6 within 5 s
    And pr reaches 2001:db8:cb::1 at the uplink MAC of edge1
    When t1 streams to ext1 over IPv6 for 6 s
    And the SRs have had 2 s to catch up
    And edge1 crashes
    Then the IPv6 stream from t1 to ext1 arrived whole
    [Teardown]    Run Keywords    The streams are stopped    AND    edge1 comes back    AND    the gateways have settled
