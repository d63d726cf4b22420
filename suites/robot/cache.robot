*** Settings ***
Documentation       The reference gateway's datapath cache with real traffic: the first packet
...                 of a flow goes through the stages and the rest hit the cache; a route change
...                 takes effect on the very next packet; TCP set-up and close go through the
...                 stages; the capacity bound holds under many flows.
Library             suites.lib.keywords.EdgelabLibrary    dut=${DUT}
Suite Setup         Start Topology    edge-basic
Suite Teardown      Stop Topology
Test Tags           cache    reference-internals    needs:internals.cache    needs:internals.show


*** Variables ***
${DUT}      reference


*** Test Cases ***
The Rest Of A Flow Hits The Cache
    Given t3 pings ext2
    And the cache of edge1 is flushed and its counters noted
    When t3 pings ext2
    Then the ping succeeds
    And edge1 sent at least 1 packets through the stages
    And edge1 served at least 2 packets from its cache

A Route Change Takes Effect On The Next Packet
    Given the cache of edge1 is flushed and its counters noted
    When t1 sends 3 marked datagrams to 10.50.1.1 while ext1 captures
    Then 3 of them arrived
    And edge1 served at least 2 packets from its cache
    When edge1 gets a route to 10.50.0.0/16 via t3
    And t1 sends 1 marked datagrams to 10.50.1.1 while t3 captures
    Then 1 of them arrived
    [Teardown]    edge1 loses its route to 10.50.0.0/16

TCP Set-Up And Close Go Through The Stages
    Given the cache of edge1 is flushed and its counters noted
    When a TCP transfer of 262144 bytes from t1 to ext1 arrives intact
    Then edge1 sent at least 4 packets through the stages
    And edge1 served at least 50 packets from its cache

The Capacity Bound Holds Under Many Flows
    Given edge1 caches at most 5 flows
    And the cache of edge1 is flushed and its counters noted
    When t4 opens 20 UDP flows to ext1 port 9995
    Then 20 of them get their answer
    And edge1 holds at most 5 cache entries and evicted the rest
    [Teardown]    edge1 caches at most 65536 flows
