*** Settings ***
Documentation       The scale topology at its default size (4 tenants x 2 hosts on one edge, each
...                 tenant a logical router of its own): every tenant reaches the provider through
...                 its own DR and SR, and its hosts reach each other switched.  Larger sizes:
...                 edgelab bench topology --tenants 64 --hosts 4.
Library             suites.lib.keywords.EdgelabLibrary    dut=${DUT}
Suite Setup         Start Topology    scale
Suite Teardown      Stop Topology
Test Tags           scale


*** Variables ***
${DUT}      reference


*** Test Cases ***
Every Tenant Reaches The Provider Through Its Own Router
    [Tags]    needs:routing    needs:nat.snat
    [Template]    ${src} reaches ${dst} through ${hops} routed hop(s)
    h0x0    ext1    2
    h1x0    ext1    2
    h2x1    ext1    2
    h3x1    ext1    2

The Hosts Of A Tenant Are Switched
    [Tags]    needs:switching
    [Template]    ${src} reaches ${dst} through ${hops} routed hop(s)
    h0x0    h0x1    0
    h3x1    h3x0    0

A Tenant Reaches Its Router
    [Tags]    needs:routing
    [Template]    ${src} reaches ${dst} through ${hops} routed hop(s)
    h0x0    10.0.0.1    0
    h3x0    10.0.3.1    0
