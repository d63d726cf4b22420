*** Settings ***
Documentation       The stateful firewall of the service router on edge-basic: reply traffic
...                 is allowed, unsolicited inbound traffic is dropped, configured rules reject,
...                 and a rule added at run time takes effect on the very next packet.
Library             suites.lib.keywords.EdgelabLibrary    dut=${DUT}
Suite Setup         Start Topology    edge-basic
Suite Teardown      Stop Topology
Test Tags           firewall


*** Variables ***
${DUT}      reference


*** Test Cases ***
Reply Traffic Of A Tenant-Initiated Flow Is Allowed
    [Tags]    needs:fw.stateful    needs:nat.snat
    When t1 pings ext2
    Then the ping succeeds

Unsolicited Inbound Traffic Is Dropped And Counted
    [Tags]    needs:fw.stateful    needs:counters
    Given drop counters of edge1 are noted
    When ext1 pings t1 directly, routing tenant prefixes to the SR
    Then the ping fails
    And edge1 counted 2 drops as firewall

A TCP Segment Of No Connection Does Not Cross
    [Tags]    needs:fw.stateful
    Then a TCP A from t1 to ext1 port 5555, of no connection, does not arrive
    And a TCP FA from t3 to ext1 port 5556, of no connection, does not arrive

A Configured Reject Rule Refuses Telnet Out
    [Tags]    needs:fw.reject    needs:counters
    Given drop counters of edge1 are noted
    Then t1 is refused TCP port 23 on ext1 by the gateway
    And edge1 counted 1 drops as firewall

A Rule Added At Run Time Blocks The Next Packet
    [Tags]    runtime-config    needs:fw.runtime    needs:counters
    Given t3 pings ext1
    And the ping succeeds
    And drop counters of edge1 are noted
    When edge1 gets a firewall rule dropping icmp to ext1
    And t3 pings ext1
    Then the ping fails
    And edge1 counted 3 drops as firewall
    When the rules added by this test are removed
    And t3 pings ext1
    Then the ping succeeds
    [Teardown]    The rules added by this test are removed

A Rule Added At Run Time Stops A Running Flow
    [Tags]    runtime-config    needs:fw.runtime
    Then a ping stream from t3 to ext1 stops while edge1 has a rule dropping icmp to it
    And t3 pings ext1
    And the ping succeeds

The First Matching Rule Decides
    [Tags]    runtime-config    needs:fw.runtime    needs:fw.reject
    Given edge1 gets a firewall rule allowing tcp port 23 to ext1 after the others
    Then t1 is refused TCP port 23 on ext1 by the gateway
    [Teardown]    The firewall rules added by this test are removed
