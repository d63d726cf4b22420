*** Settings ***
Documentation       Service-router failover on edge-ha: the SR agents watch each other with BFD
...                 (100 ms x 3) through their datapaths; when the active SR crashes, the standby
...                 takes over its transit and uplink addresses with gratuitous ARPs, and a tenant's
...                 probe flow loses less than half a second; when it comes back it takes them back.
Library             suites.lib.keywords.EdgelabLibrary    dut=${DUT}
Suite Setup         Start Topology    edge-ha
Suite Teardown      Stop Topology
Test Tags           failover    reference-internals    needs:ha.failover    needs:internals.ha


*** Variables ***
${DUT}      reference


*** Test Cases ***
Steady State: Both SRs Up, Traffic Through The Active One
    Given BFD is up between edge1 and edge2
    When t1 pings ext1
    Then the ping succeeds
    And the DR reaches 169.254.0.2 at the MAC of edge1

The Standby Takes Over When The Active SR Crashes
    Given BFD is up between edge1 and edge2
    When a probe flow from t1 to ext1 runs while edge1 crashes
    Then the probe lost at most 500 ms of traffic
    And edge2 holds the addresses of edge1
    And the DR reaches 169.254.0.2 at the MAC of edge2

Failback When The Active SR Returns
    When edge1 comes back
    Then BFD is up between edge1 and edge2
    And edge2 holds no address of another SR
    And the DR reaches 169.254.0.2 at the MAC of edge1
    And t1 reaches ext1 through 3 routed hop(s)
