*** Settings ***
Documentation       Service-router failover on edge-ha as any gateway does it, judged from the hosts:
...                 when the active SR crashes, a tenant's flow resumes through its peer within half a
...                 second and the provider router's neighbour entry for the SR's uplink address moves
...                 to the peer's MAC; when the SR returns, it takes its address back.  IPv6 moves
...                 the same way (dual stack).
Library             suites.lib.keywords.EdgelabLibrary    dut=${DUT}
Suite Setup         Start Topology    edge-ha
Suite Teardown      Stop Topology
Test Tags           ha    needs:ha.failover


*** Variables ***
${DUT}      reference


*** Test Cases ***
Traffic Crosses The Active SR
    Given the gateways have settled
    When t1 pings ext1
    Then the ping succeeds
    And pr reaches 203.0.113.1 at the uplink MAC of edge1
    When pr asks on its segment for 203.0.113.1
    Then only the uplink MAC of edge1 answers

A Forwarding Load Through The Active SR Does Not Fail It Over
    [Documentation]    A failover detector must tell a loaded SR from a dead one: 10 s of tenant
    ...    traffic through the active SR, and nobody but edge1 speaks for its uplink address.
    Given the gateways have settled
    When t1 sends 5000 UDP packets a second to ext1 for 10 s while pr listens for ARP
    Then ext1 received at least 90 % of the load
    And no MAC but the uplink MAC of edge1 spoke for 203.0.113.1 meanwhile
    And pr reaches 203.0.113.1 at the uplink MAC of edge1

A Crash Of The Active SR Costs Less Than Half A Second
    [Tags]    needs:fault.crash
    Given the gateways have settled
    When a probe flow from t1 to ext1 runs while edge1 crashes
    Then the probe lost at most 500 ms of traffic
    And pr reaches 203.0.113.1 at the uplink MAC of edge2

The Recovered SR Takes Its Address Back
    [Tags]    needs:fault.crash    needs:ha.preempt
    When edge1 comes back
    And the gateways have settled
    Then pr reaches 203.0.113.1 at the uplink MAC of edge1
    And t1 pings ext1
    And the ping succeeds
    When pr asks on its segment for 203.0.113.1
    Then only the uplink MAC of edge1 answers

IPv6 Moves To The Standby With Its Addresses
    [Documentation]    The standby takes over the active SR's IPv6 addresses too and says so
    ...    (an unsolicited neighbour advertisement): the provider router's own neighbour entry
    ...    for the SR's IPv6 uplink address moves, and a ping -6 flow goes on.
    [Tags]    needs:fault.crash    needs:ipv6.routing    needs:ipv6.ra
    Given the gateways have settled
    And t1 has an IPv6 default route from t1-dr:web
    And t1 reaches ext1 over IPv6 within 5 s
    And pr reaches 2001:db8:cb::1 at the uplink MAC of edge1
    When an IPv6 probe flow from t1 to ext1 runs while edge1 crashes
    Then the probe lost at most 500 ms of traffic
    And pr reaches 2001:db8:cb::1 at the uplink MAC of edge2

The Recovered SR Takes Its IPv6 Addresses Back
    [Documentation]    When the SR comes back and takes its addresses back, IPv6 goes on
    ...    through it as IPv4 does: a ping -6 flow across the failback loses at most 500 ms.
    [Tags]    needs:fault.crash    needs:ha.preempt    needs:ipv6.routing    needs:ipv6.ra
    Given pr reaches 2001:db8:cb::1 at the uplink MAC of edge2
    And t1 reaches ext1 over IPv6 within 5 s
    When an IPv6 probe flow from t1 to ext1 runs while edge1 comes back
    Then pr reaches 2001:db8:cb::1 at the uplink MAC of edge1
    And the probe lost at most 500 ms of traffic
    [Teardown]    Run Keywords    edge1 comes back    AND    the gateways have settled

