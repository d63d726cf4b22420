"""edgelab reference gateway: a userspace run-to-completion datapath daemon.

Start it with ``python -m gateway --config FILE``.  The modules, in the order
a frame meets them: ``io.ports`` (AF_PACKET rx), ``pipeline`` (runs the
stages in ``stages/``), ``io.ports`` again (tx).  ``tables/`` holds the state
the stages read and write; ``control/`` serves the JSON control socket.
"""

from gateway import native

native.activate()
