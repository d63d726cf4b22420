*** Settings ***
Documentation       What a tenant cannot do to the edge or its neighbours on edge-basic, with real
...                 frames from tenant hosts: hop VLANs with a double tag, claim the gateway's
...                 address or another segment's host, leave its segment with a spoofed source,
...                 break its neighbours by flooding source MACs.  Each attack is seen blocked on
...                 the wire and counted; the other hosts keep working.
Library             suites.lib.keywords.EdgelabLibrary    dut=${DUT}
Suite Setup         Start Topology    edge-basic
Suite Teardown      Stop Topology
Test Tags           security


*** Variables ***
${DUT}      reference


*** Test Cases ***
Double-Tagged Frames Do Not Hop VLANs
    [Tags]    isolation    needs:switching
    Then it holds that double tagged frames do not hop vlans

A Tenant Claiming The Gateway's Address Moves Nobody
    [Tags]    needs:sec.arp    needs:counters
    Then it holds that a tenant claiming the gateway address moves nobody

A Tenant Claiming Another Segment's Host Moves Nobody
    [Tags]    needs:sec.arp    needs:routing    needs:counters
    Then it holds that a tenant claiming another segments host moves nobody

A Spoofed Source Does Not Leave The Tenant Segment
    [Tags]    needs:sec.urpf    needs:counters
    Then it holds that a spoofed source does not leave the tenant segment

A MAC Flood Leaves The Other Hosts Working
    [Tags]    needs:switching    needs:routing
    Then it holds that a mac flood leaves the other hosts working
