"""The compiled per-packet modules (gateway/native.py): a build older than its sources is refused,
and EDGELAB_INTERPRETED=1 runs the sources beside a build."""

from __future__ import annotations

import importlib.machinery
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway import native

SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "gateway" / "cache").mkdir(parents=True)
    (tmp_path / "gateway" / "cache" / "__init__.py").write_text("X = 1\n")
    (tmp_path / "gateway" / "epoch.py").write_text("Y = 2\n")
    monkeypatch.setattr(native, "ROOT", tmp_path)
    monkeypatch.setattr(native, "STAMP", tmp_path / "gateway" / "native.stamp")
    monkeypatch.setattr(native, "MODULES", ("gateway/cache/__init__.py", "gateway/epoch.py"))
    monkeypatch.delenv("EDGELAB_INTERPRETED", raising=False)
    return tmp_path


def test_a_build_older_than_its_sources_is_refused(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    native.check()  # nothing compiled: the sources run, nothing to refuse
    (tree / "gateway" / "epoch").with_suffix(SUFFIX).write_bytes(b"")
    with pytest.raises(native.StaleBuild, match="make native"):
        native.check()  # compiled, no stamp
    native.STAMP.write_text(native.digest() + "\n")
    native.check()  # the stamp is the sources'
    (tree / "gateway" / "cache" / "__init__.py").write_text("X = 3\n")
    with pytest.raises(native.StaleBuild, match="older than their sources"):
        native.check()
    native.STAMP.write_text(native.digest() + "\n")
    monkeypatch.setattr(native, "compiler", lambda: "0.0-another")
    with pytest.raises(native.StaleBuild):
        native.check()  # the same sources, built by another mypyc


def test_a_stale_build_stops_an_import_with_one_sentence(tree: Path) -> None:
    (tree / "gateway" / "epoch").with_suffix(SUFFIX).write_bytes(b"")
    with pytest.raises(SystemExit, match="run 'make native'"):
        native.activate()  # the daemon and the edgelab command print it and exit, no traceback
    assert native.main(["native.py", "check"]) == 1


def test_clean_takes_every_compiled_module_and_the_stamp(tree: Path) -> None:
    gone = tree / "gateway" / "tables" / "old.cpython-311-x86_64-linux-gnu.so"  # a module since taken off the list
    gone.parent.mkdir()
    gone.write_bytes(b"")
    (tree / "gateway" / "cache" / "__init__").with_suffix(SUFFIX).write_bytes(b"")
    native.STAMP.write_text("x\n")
    native.clean()
    assert not list(tree.rglob("*.so")) and not native.STAMP.exists()


def test_interpreted_runs_the_sources_beside_a_build() -> None:
    probe = "import gateway.cache, gateway.datapath as d; print(gateway.cache.__file__); print(d.__file__)"
    env = {**os.environ, "EDGELAB_INTERPRETED": "1"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert [Path(p).suffix for p in out.stdout.split()] == [".py", ".py"]
    if native.built():  # what the bootstrap built is what the tests ran on
        env.pop("EDGELAB_INTERPRETED")
        out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
        assert [Path(p).suffix for p in out.stdout.split()] == [".so", ".so"]


def test_a_build_imports_from_outside_the_repository(tmp_path: Path) -> None:
    """The runtime the compiled modules share lives in the package, so ``edgelab`` and the
    daemon import them from any working directory, not only from the repository's root."""
    if not native.built():
        pytest.skip("nothing compiled here (make native): the sources run, from anywhere")
    assert native.runtime(), "compiled modules without their shared runtime in gateway/"
    env = {k: v for k, v in os.environ.items() if k not in ("EDGELAB_INTERPRETED", "PYTHONPATH")}
    where = "import importlib.util; print(importlib.util.find_spec('gateway').submodule_search_locations[0])"
    found = subprocess.run([sys.executable, "-c", where], cwd=tmp_path, env=env, capture_output=True, text=True)
    if Path(found.stdout.strip()).resolve() != native.ROOT / "gateway":
        pytest.skip(f"this interpreter's install of edgelab is another checkout's ({found.stdout.strip()})")
    probe = "import gateway.datapath as d, gateway.cache.keys as k; print(d.__file__); print(k.__file__)"
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-800:]
    assert [Path(p).suffix for p in out.stdout.split()] == [".so", ".so"]
