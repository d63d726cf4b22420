"""State the stages read and write: FIB, ARP, MAC tables."""
