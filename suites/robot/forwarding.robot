*** Settings ***
Documentation       Forwarding through the gateway on edge-basic: switching inside an
...                 EVI instance, isolation between instances, routing east-west and
...                 north-south, router ARP/ICMP, TCP integrity, malformed input.
...                 Runs against any gateway: pass -v DUT:name.
Library             suites.lib.keywords.EdgelabLibrary    dut=${DUT}
Suite Setup         Start Topology    edge-basic
Suite Teardown      Stop Topology
Test Tags           forwarding


*** Variables ***
${DUT}      reference


*** Test Cases ***
Hosts In One Instance Are Switched Across The Gateway
    [Tags]    needs:switching
    Given topology edge-basic is running
    When t1 pings t4
    Then the ping succeeds
    And the replies arrive with TTL 64

A Broadcast Stays Inside Its Instance
    [Tags]    isolation    needs:switching
    When probe broadcasts a marked frame on VLAN 10
    Then t1 receives the frame
    And t4 receives the frame
    And t3 does not receive the frame
    And ext1 does not receive the frame

A Frame On An Unknown VLAN Is Dropped And Counted
    [Tags]    isolation    needs:switching    needs:counters
    Given drop counters of edge1 are noted
    When probe broadcasts a marked frame on VLAN 99
    Then edge1 counted 3 drops as no-instance
    And t1 does not receive the frame
    And t3 does not receive the frame
    And t4 does not receive the frame

Routed Reachability
    [Tags]    needs:routing    needs:nat.snat    needs:nat.one_to_one
    [Template]    ${src} reaches ${dst} through ${hops} routed hop(s)
    t1      t3      1
    t3      t4      1
    t1      ext1    2
    t3      ext2    3
    ext2    203.0.113.90    3

The Router Answers Ping On Its Addresses
    [Tags]    needs:routing
    [Template]    ${src} reaches ${dst} through ${hops} routed hop(s)
    t1      172.16.10.1     0
    t3      172.16.20.1     0
    ext1    203.0.113.1     0

TTL Expiry Gives Time Exceeded From The DR
    [Tags]    needs:routing
    When t1 pings ext1 with TTL 1
    Then t1-dr:web answers with Time to live exceeded

A TCP Transfer Through The Gateway Arrives Intact
    [Tags]    needs:routing    needs:nat.snat
    Then a TCP transfer of 1048576 bytes from t1 to ext1 arrives intact

Malformed Frames Are Dropped And Counted, The Gateway Survives
    [Tags]    robustness    needs:routing    needs:counters
    Given drop counters of edge1 are noted
    When probe sends 50 frames with a bad IPv4 checksum to edge1
    Then edge1 counted 50 drops as malformed
    And edge1 is alive
    And t1 reaches ext1 through 2 routed hop(s)
