"""Transports between the datapath and the world: NIC ports (AF_PACKET)."""
