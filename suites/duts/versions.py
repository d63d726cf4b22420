"""``python -m suites.duts.versions DUT``: what a conformance run was made of, as JSON.

Written by ``ci/conformance.sh`` beside each run (``versions.json``) for the
comparison report: the edgelab commit, this machine's kernel, the DUT's own
description and component versions.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys

from suites.duts import get


def collect(dut: str) -> dict[str, str]:
    driver = get(dut)
    res = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return {
        "commit": res.stdout.strip() if res.returncode == 0 else "?",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "description": driver.description,
        **driver.versions(),
    }


if __name__ == "__main__":
    print(json.dumps(collect(sys.argv[1]), indent=2))
