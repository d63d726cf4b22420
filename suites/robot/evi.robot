*** Settings ***
Documentation       EVI between three data-centre sites (evi-dci) as any gateway does it, judged on
...                 the wire: the hosts of VLAN 100 at three sites share one L2 domain over an IP
...                 core (MAC-in-GRE, the key holding the network id, DF set); only broadcast
...                 crosses, once per remote site, and nothing is sent on from one site to
...                 another; remote MACs are known before data flows and follow a move; the
...                 second ARP for a remote host stays off the core; a frame too big for the core
...                 is dropped, never fragmented; the mesh forms by discovery and heals; a site with
...                 two edges lets each frame in once and survives the loss of either.
Library             suites.lib.keywords.EdgelabLibrary    dut=${DUT}
Suite Setup         Start Topology    evi-dci
Suite Teardown      Stop Topology
Test Tags           evi    needs:evi.l2


*** Variables ***
${DUT}      reference


*** Test Cases ***
The Sites Find Each Other
    [Tags]    needs:evi.discovery
    Given the gateways have settled
    Then every site reaches every other in the extended VLAN

Hosts At Three Sites Share One L2 Domain
    Given the gateways have settled
    When h1a pings h3a
    Then the ping succeeds
    And the replies arrive with TTL 64
    And a TCP transfer of 1000000 bytes from h1a to h2a arrives intact

A Local VLAN Stays At Its Site
    When h1b pings h2b
    Then the ping fails

The Same VLAN On Another Port Is Another Instance
    When x1 pings h1a
    Then the ping fails

The Core Carries MAC-In-GRE
    [Tags]    needs:evi.gre
    Given h1a pings h2a
    When h1a sends a frame to h2a while the core is captured
    Then the core carries it as MAC-in-GRE with network id 5100 and DF
    And the core carries one copy to each of 2

A Broadcast Crosses Once Per Remote Site And Is Not Sent On
    [Tags]    needs:evi.flooding
    When h1a broadcasts a frame while the core is captured
    Then the core carries one copy to each of 2 and 3

Unknown Unicast Stays At Its Site
    [Tags]    needs:evi.flooding
    When h1a sends a frame to an unknown MAC while the core is captured
    Then the core carries nothing of it

Remote MACs Are Known Before Any Data Flows
    [Tags]    needs:evi.mac_advertisement
    When a new MAC appears at h1a
    Then h2a reaches the new MAC at h1a

A MAC That Moves Between Sites Converges
    [Tags]    needs:evi.mac_advertisement
    Given a new MAC appears at h1a
    And h3a reaches the new MAC at h1a
    When the MAC moves to h2a
    Then h3a reaches the new MAC at h2a
    And h3a no longer reaches the new MAC at h1a

The Second ARP For A Remote Host Stays Off The Core
    [Tags]    needs:evi.arp_suppression
    Given h1a pings h3a
    When h1a asks for the MAC of h3a again
    Then the answer comes from the edge, not across the core

A Frame Too Big For The Core Is Dropped And Counted
    [Tags]    needs:evi.mtu    needs:counters
    Given h1a pings h3a
    And drop counters of edge1 are noted
    When h1a pings h2a with 1400 bytes and DF set
    Then the big pings are answered
    When h1a pings h3a with 1400 bytes and DF set
    Then no big ping is answered
    And edge1 counted 2 drops as tunnel

A Site With Two Edges Lets Each Frame In Once
    [Tags]    needs:evi.multihoming
    Given every site reaches every other in the extended VLAN
    Then the broadcast of h2a enters the core from one edge only
    And a broadcast from h1a reaches h2a once
    And a broadcast from h2a reaches h1a once

The Other Edge Of A Site Takes Over When Its Forwarder Fails
    [Tags]    needs:evi.multihoming    needs:fault.crash
    Given the broadcast of h2a enters the core from one edge only
    When that edge crashes
    Then h1a reaches h2a again within 15 seconds
    And a broadcast from h1a reaches h2a once
    [Teardown]    The crashed edge comes back

A Site That Stops Is Removed And Returns When Restarted
    [Tags]    needs:evi.discovery
    When edge3 stops
    Then a broadcast from site 1 reaches only 2
    When edge3 starts again
    Then every site reaches every other in the extended VLAN
    And a broadcast from site 1 reaches only 2 and 3
