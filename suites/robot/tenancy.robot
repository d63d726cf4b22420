*** Settings ***
Documentation       Two tenants with the same subnets behind one edge (multi-tenant), as any gateway
...                 with overlapping tenant routers does it: a1 and b1 are both 10.0.1.11, a2 and b2
...                 both 10.0.2.12.  Each tenant router has its own BGP session with the provider
...                 router (which routes each tenant's NAT pool to that tenant's SR), each tenant
...                 reaches the provider prefix (learned by BGP only) from its own pool, a tenant's
...                 packets reach its own hosts only, and a SYN flood from one tenant leaves the
...                 other's connections working.
Library             suites.lib.keywords.EdgelabLibrary    dut=${DUT}
Suite Setup         Start Topology    multi-tenant
Suite Teardown      Stop Topology
Test Tags           tenancy    needs:tenancy.overlap    needs:bgp


*** Variables ***
${DUT}      reference


*** Test Cases ***
Each Tenant Router Has Its Own BGP Session
    The provider has a BGP session with 203.0.113.2 and routes blue's pool to it
    The provider has a BGP session with 203.0.113.3 and routes red's pool to it

Each Tenant Leaves From Its Own Pool
    a1 b1 reach the provider from their own tenants' pools

The Same Address Stays In Its Tenant
    a1 reaches 10.0.2.12 at a2 and never at b2
    b1 reaches 10.0.2.12 at b2 and never at a2

A SYN Flood From One Tenant Leaves The Other Working
    [Tags]    needs:counters
    While a1 floods SYNs, b1 moves data to the provider
    a2 reaches the provider again once the flood's connections expire
