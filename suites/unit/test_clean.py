"""``edgelab clean`` stops the reference gateways a killed test run left running."""

from __future__ import annotations

import subprocess
import sys
import time

from edgelab.cli import stop_orphan_gateways


def test_a_gateway_left_by_a_dead_run_is_stopped_and_no_other_process() -> None:
    root = f"/tmp/edgelab-clean-test-{time.monotonic_ns()}/"
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    orphan = subprocess.Popen([*sleeper, "-m", "gateway", "--config", f"{root}edge1.yaml"])
    bystander = subprocess.Popen([*sleeper, "-m", "gateway", "--config", "/elsewhere/edge1.yaml"])
    try:
        stopped = stop_orphan_gateways(root)
        assert stopped == [f"process {orphan.pid} (a reference gateway of a dead run)"]
        assert orphan.wait(timeout=5) != 0  # ended by the signal
        assert bystander.poll() is None, "a gateway outside the run directory is left alone"
        assert stop_orphan_gateways(root) == []
    finally:
        for proc in (orphan, bystander):
            proc.kill()
            proc.wait()
