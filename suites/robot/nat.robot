*** Settings ***
Documentation       NAT on the service router, seen from the hosts of edge-basic: what the
...                 provider sees as source address, port collisions between tenants, port
...                 forwarding, 1:1 NAT, hairpin, ICMP errors and path MTU through SNAT,
...                 pool exhaustion. The provider has no route to the tenant prefixes.
Library             suites.lib.keywords.EdgelabLibrary    dut=${DUT}
Suite Setup         Start Topology    edge-basic
Suite Teardown      Stop Topology
Test Tags           nat


*** Variables ***
${DUT}      reference


*** Test Cases ***
The Provider Sees The SNAT Pool, Not The Tenant
    [Tags]    needs:nat.snat
    Given topology edge-basic is running
    Then ext1 sees t1 as an address of the SNAT pool
    And ext1 sees t3 as an address of the SNAT pool

Two Tenants Using The Same Source Port Both Work
    [Tags]    needs:nat.snat
    When t1 and t3 send UDP from source port 5555 to ext1 port 9999
    Then 2 of them get their answer
    And the provider saw 2 distinct public endpoints

Port Forwarding From The Provider
    [Tags]    needs:nat.dnat
    When a TCP transfer of 262144 bytes from ext2 to port forward t3-http arrives intact
    Then the server saw ext2 as the client

One-To-One NAT Inbound
    [Tags]    needs:nat.one_to_one
    When ext2 pings the public address of t2
    Then the ping succeeds

One-To-One NAT Outbound
    [Tags]    needs:nat.one_to_one
    When t2 send UDP from source port 7000 to ext1 port 9998
    Then 1 of them get their answer
    And the provider saw only 203.0.113.90 as the source

Hairpin To A Forwarded Port
    [Tags]    needs:nat.dnat    needs:nat.hairpin
    When a TCP transfer of 65536 bytes from t1 to port forward t3-http arrives intact
    Then the server saw an address of the SNAT pool as the client

Time Exceeded From Beyond The NAT Is Translated Back
    [Tags]    needs:routing    needs:nat.snat
    When t1 pings ext2 with TTL 3
    Then ext1 answers with Time to live exceeded

An ICMP Error About A Translated Flow Reaches The Tenant's Socket
    [Tags]    needs:nat.snat
    When t1 sends UDP on one socket from port 999 to ext1 port 33436 at TTL 64,64
    Then the socket heard port unreachable from ext1 at TTL 64

A Port Forward Takes Only Its Own Protocol
    [Tags]    needs:nat.dnat
    Then UDP from ext2 to the port of port forward t3-http does not reach t3

Pool Exhaustion Is Counted
    [Tags]    runtime-config    needs:nat.runtime    needs:counters
    Given edge1 gets an SNAT pool of 3 ports on 203.0.113.71 for t4
    And drop counters of edge1 are noted
    When t4 opens 5 UDP flows to ext1 port 9997
    Then 3 of them get their answer
    And edge1 counted 2 drops as nat
    [Teardown]    The rules added by this test are removed

A Reset Connection Gives Its Public Port Back
    [Documentation]    A pool of one port: after a connection is reset (its state may stay a
    ...    few seconds, RFC 7857 2.2), the next connection gets the port again.
    [Tags]    runtime-config    needs:nat.runtime
    Given edge1 gets an SNAT pool of 1 ports on 203.0.113.73 for t4
    When t4 connects to ext1 port 9 and is refused
    Then the SYN reached ext1 from 203.0.113.73
    And within 120 s a new connection from t4 to ext1 port 9 is refused again
    [Teardown]    The rules added by this test are removed

Pool Exhaustion Is Reported By The Reference Gateway
    [Tags]    runtime-config    reference-internals    needs:nat.runtime    needs:internals.show
    Given edge1 gets an SNAT pool of 3 ports on 203.0.113.72 for t4
    And drop counters of edge1 are noted
    When t4 opens 5 UDP flows to ext1 port 9996
    Then 3 of them get their answer
    And edge1 counted 2 drops as sr/nat-pool-exhausted
    And edge1 reports 3 of 3 ports used in that pool
    [Teardown]    The rules added by this test are removed
