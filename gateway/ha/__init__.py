"""SR high availability: BFD sessions between peer SRs (and their failover agent)."""
