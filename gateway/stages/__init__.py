"""Pipeline stages, one module each, in the order of DESIGN 1.2.

Each stage is a :class:`base.Stage` with a ``process(pkt)`` that returns the
name of the next stage, ``DONE`` (the packet left or was queued) or ``DROP``
(a named reason was counted).  Stages never call each other: the pipeline
follows the names they return.
"""
