"""edgelab suites: unit/, e2e/ (pytest), robot/ (Robot Framework), lib/ (shared helpers), duts/ (gateway drivers)."""
