"""Stopping FRR's daemons of a TLR namespace (``gateway/io/frr.py``): a daemon hung in its
own shutdown is killed, a stale pid file kills nobody else."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from gateway.io import frr

HUNG = "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(1, flush=True); time.sleep(60)"
POLITE = "import sys, time; print(1, flush=True); time.sleep(60)"


def daemon(d, name: str, code: str) -> subprocess.Popen:
    """A stand-in for ``name``: its command line names the state dir, as FRR's do; its pid file."""
    proc = subprocess.Popen([sys.executable, "-c", code, str(d)], stdout=subprocess.PIPE)
    assert proc.stdout.readline() == b"1\n"  # (its handler is in place)
    (d / f"{name}.pid").write_text(f"{proc.pid}\n")
    return proc


def test_a_daemon_hung_in_its_shutdown_is_killed(tmp_path, monkeypatch):
    monkeypatch.setattr(frr, "STATE", tmp_path)
    d = frr.state_dir("edge1-tlr1")
    d.mkdir()
    hung, polite = daemon(d, "zebra", HUNG), daemon(d, "bgpd", POLITE)
    try:
        t0 = time.monotonic()
        assert frr.stop("edge1-tlr1", grace=0.5) == ["bgpd of edge1-tlr1", "zebra of edge1-tlr1"]
        assert polite.wait(timeout=5) == -15  # SIGTERM was enough
        assert hung.wait(timeout=5) == -9  # it ignored SIGTERM: killed after the grace
        assert time.monotonic() - t0 < 3
        assert not d.exists(), "their pid files and sockets are gone too"
    finally:
        for proc in (hung, polite):
            proc.kill()
            proc.wait()


def test_a_stale_pid_file_signals_nobody(tmp_path, monkeypatch):
    monkeypatch.setattr(frr, "STATE", tmp_path)
    d = frr.state_dir("edge1-tlr1")
    d.mkdir()
    (d / "zebra.pid").write_text(f"{os.getpid()}\n")  # a pid now another process's: this one
    (d / "bgpd.pid").write_text("not a pid\n")
    assert frr.stop("edge1-tlr1", grace=0.1) == []
