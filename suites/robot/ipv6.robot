*** Settings ***
Documentation       IPv6 on edge-basic (dual stack): routed, not translated.  Tenants learn
...                 their default router from router advertisements; the router answers
...                 ping -6 and neighbour discovery, decrements the hop limit and answers
...                 its expiry; the stateful firewall lets tenant-initiated flows out
...                 untranslated, drops unsolicited inbound, and lets a packet too big
...                 about a tenant's flow back in (path MTU discovery).
...                 Runs against any gateway: pass -v DUT:name.
Library             suites.lib.keywords.EdgelabLibrary    dut=${DUT}
Suite Setup         Start Topology    edge-basic
Suite Teardown      Stop Topology
Test Tags           ipv6


*** Variables ***
${DUT}      reference


*** Test Cases ***
Tenants Learn Their Default Router From Router Advertisements
    [Tags]    needs:ipv6.ra
    Then t1 has an IPv6 default route from t1-dr:web
    And t4 has an IPv6 default route from t1-dr:web
    And t3 has an IPv6 default route from t1-dr:app

Routed IPv6 Reachability
    [Tags]    needs:ipv6.routing    needs:ipv6.ra    needs:ipv6.fw
    [Template]    ${src} reaches ${dst} over IPv6 through ${hops} routed hop(s)
    t1      t1-dr6:web      0
    t3      t1-dr6:app      0
    t1      t4              0
    t1      t3              1
    t3      ext2            3

Hop Limit Expiry Is Answered By Each Hop
    [Tags]    needs:ipv6.routing    needs:ipv6.ra
    [Template]    Hop limit ${n} from ${src} to ${dst} expires at ${router}
    1       t1      ext2    t1-dr6:web
    2       t1      ext2    t1-sr6:uplink
    3       t1      ext2    ext1

IPv6 Leaves Untranslated
    [Tags]    needs:ipv6.routing    needs:ipv6.fw    needs:ipv6.ra
    When t1 sends 256 KiB over TCP to ext2 over IPv6
    Then the far side saw t1's own IPv6 address

Unsolicited Inbound IPv6 Is Dropped
    [Tags]    needs:ipv6.fw
    When ext2 pings t1 over IPv6
    Then the ping gets no reply

Path MTU Discovery Works Through The Gateway
    [Tags]    needs:ipv6.fw    needs:ipv6.routing    needs:ipv6.ra
    When t1 sends 1404-byte pings to ext2 over IPv6
    Then t1 has learned a path MTU of 1400 towards ext2
