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

A Flood Never Comes Back To Its Segment
    [Tags]    isolation    needs:switching
    When probe broadcasts a marked frame on VLAN 10
    Then t1 receives the frame 3 times
    And t4 receives the frame 3 times

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

ICMP Errors Come From The Address Of The Port The Packet Arrived On
    [Tags]    needs:routing
    [Template]    TTL 1 from ${src} to ${dst} expires at ${router}
    t1      ext1    t1-dr:web
    t3      ext1    t1-dr:app

No Route Gives Net Unreachable From The Router
    [Tags]    runtime-config    needs:routing    needs:route.runtime    needs:nat.snat
    When ext1 pings 10.99.1.1 through edge1, which has no route for it
    Then t1-sr:uplink answers with Net Unreachable
    And t1 pings ext2
    And the ping succeeds

The Router Answers ARP Only On The Segment Of The Address
    [Tags]    isolation    needs:routing
    When probe asks on VLAN 20 for t1-dr:web from 172.16.20.98
    Then the ARP is not answered
    When probe asks on VLAN 10 for t1-dr:web from 172.16.10.98
    Then the ARP is answered

A Host That Moves Is Followed At Once
    [Tags]    needs:switching    needs:routing
    Then traffic to t1 follows it to the port of t4: switched from t2, routed from t3
    And t2 pings t1
    And the ping succeeds
    And t3 pings t1
    And the ping succeeds

A Running Flow Expires Its TTL Where New Flows Do
    [Tags]    needs:routing    needs:nat.snat
    When t1 sends UDP on one socket from port 998 to ext1 port 33435 at TTL 64,64,64,1,2
    Then at TTL 1,2 the socket heard what new flows hear

A Route Change Reaches A Running Flow
    [Tags]    runtime-config    needs:routing    needs:route.runtime    needs:nat.snat
    When t1 sends 3 marked datagrams to 10.50.1.1 while ext1 captures
    Then 3 of them arrived
    When edge1 gets a route to 10.50.0.0/16 via t3 at run time
    And t1 sends 1 marked datagrams to 10.50.1.1 while t3 captures
    Then 1 of them arrived
    [Teardown]    edge1 loses its route to 10.50.0.0/16 at run time

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


*** Keywords ***
TTL 1 From ${src} To ${dst} Expires At ${router}
    When ${src} pings ${dst} with TTL 1
    Then ${router} answers with Time to live exceeded
