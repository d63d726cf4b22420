*** Settings ***
Documentation       In-band management on edge-basic: a management address on the uplink, sharing
...                 the NIC with tenant traffic, serves the gateway's management page (GET /node) to
...                 the provider prefix 198.51.100.0/24 only; a tenant, another provider address or
...                 another port get nothing, and the refusals are counted.
Library             suites.lib.keywords.EdgelabLibrary    dut=${DUT}
Suite Setup         Start Topology    edge-basic
Suite Teardown      Stop Topology
Test Tags           management    needs:mgmt.inband


*** Variables ***
${DUT}      reference


*** Test Cases ***
The Allowed Prefix Reaches The Management Page
    When ext2 fetches the management page of edge1
    Then the page names edge1

A Tenant Cannot Reach The Management Plane
    [Tags]    needs:counters
    Given drop counters of edge1 are noted
    When t1 fetches the management page of edge1
    Then the fetch fails
    And edge1 counted 1 drops as firewall

A Provider Address Outside The Allowed Prefix Cannot Either
    When ext1 fetches the management page of edge1
    Then the fetch fails

A Port The Management Address Does Not Admit Gets No Answer
    When ext2 fetches the management page of edge1
    Then the page names edge1
    And ext2 gets no answer from TCP port 22 of the management address of edge1
