"""Helpers shared by the pytest suites and the Robot keyword library."""
