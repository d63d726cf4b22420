"""The ``edgelab`` command: gateway control, topologies, conformance helpers."""
