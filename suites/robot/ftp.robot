*** Settings ***
Documentation       FTP through the gateway's NAT on edge-basic, as any gateway with an FTP ALG does it,
...                 judged by what real clients download (curl, sha256 against the server's files) and
...                 what each side was told: active mode from t1 behind SNAT to a server on ext1 (the
...                 server must be told a public address of the pool), passive mode from ext2 to a
...                 server on t3 behind the t3-ftp port forward (the client must be told the public
...                 address), and the announced data port open to the announced peer only.
Library             suites.lib.keywords.EdgelabLibrary    dut=${DUT}
Suite Setup         Start Topology    edge-basic
Suite Teardown      Run Keywords    The FTP servers stop    AND    Stop Topology
Test Tags           ftp    needs:alg.ftp    needs:nat.snat    needs:nat.dnat


*** Variables ***
${DUT}      reference


*** Test Cases ***
Active Mode With EPRT From A Tenant Behind SNAT
    Given an FTP server runs on ext1
    When t1 downloads every file from ext1 at 203.0.113.10 in EPRT mode
    Then ext1 was told only addresses of the SNAT pool

Active Mode With PORT From A Tenant Behind SNAT
    Given an FTP server runs on ext1
    When t1 downloads every file from ext1 at 203.0.113.10 in PORT mode
    Then ext1 was told only addresses of the SNAT pool

Passive Mode With EPSV To A Server Behind A Port Forward
    Given an FTP server runs on t3
    Then ext2 downloads every file from t3 at 203.0.113.80 in EPSV mode

Passive Mode With PASV To A Server Behind A Port Forward
    Given an FTP server runs on t3
    Then ext2 downloads every file from t3 at 203.0.113.80 in PASV mode

Only The Announced Peer Gets The Data Connection
    Given an FTP server runs on t3
    When ext2 asks 203.0.113.80 for a passive data connection to medium.bin
    Then ext1 cannot connect to the announced data port
    And the client downloads medium.bin intact from t3 through it
