"""Run the ovs DUT's controller: ``python -m suites.duts.ovsken CONFIG.json``.

os-ken 4.2 ships no ``osken-manager``; the app is started as its docs show
for a library user.  The OpenFlow listener takes the config's port on
127.0.0.1 only: the bridge connects from the same machine.
"""

from __future__ import annotations

import json
import logging
import os
import sys


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m suites.duts.ovsken CONFIG.json", file=sys.stderr)
        return 2
    with open(argv[0]) as f:
        cfg = json.load(f)
    os.environ["EDGELAB_OVSKEN_CONFIG"] = argv[0]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from os_ken import cfg as oscfg
    from os_ken.base.app_manager import AppManager
    from os_ken.controller import controller  # noqa: F401 - registers the ofp_* options

    oscfg.CONF(
        args=["--ofp-listen-host", "127.0.0.1", "--ofp-tcp-listen-port", str(cfg["of_port"])],
        project="os_ken",
    )
    # The app's own lines, whatever os-ken's set-up does to the root logger.
    log = logging.getLogger("edgelab")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    AppManager.run_apps(["os_ken.controller.ofp_handler", "suites.duts.ovsken.app"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
