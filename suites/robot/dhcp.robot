*** Settings ***
Documentation       DHCP relayed by the gateway on edge-basic, as any gateway does it, judged by the
...                 leases real clients (dhclient) get from a real server (dnsmasq on t3): the server
...                 hands out one range per option-82 circuit-id and nothing without one, so a client
...                 gets an address of its own circuit's range only if the relay named the (port,
...                 VLAN) record it came in on.  t1 (trunk, VLAN 10) and t4 (the untagged access
...                 port) are the same instance on two records: two circuits.
Library             suites.lib.keywords.EdgelabLibrary    dut=${DUT}
Suite Setup         Start Topology    edge-basic
Suite Teardown      Run Keywords    The DHCP server stops    AND    Stop Topology
Test Tags           dhcp    needs:dhcp.relay


*** Variables ***
${DUT}      reference


*** Test Cases ***
A Client On A Trunk VLAN Gets An Address Of Its Circuit
    Given a DHCP server with one range per circuit runs on t3
    Then t1 gets an address from the range of its circuit

A Client On Another Record Of The Same Instance Gets Another Circuit's
    Given a DHCP server with one range per circuit runs on t3
    Then t4 gets an address from the range of its circuit
