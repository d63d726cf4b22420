"""The per-packet modules compiled to C extensions with mypyc, from this same source.

Where this sits: beside the datapath, not in it.  ``make native`` (and the
bootstrap) runs ``python -P gateway/native.py build``, which hands
:data:`MODULES` to mypyc: each becomes a ``.so`` beside its ``.py``, and Python
imports the ``.so`` first.  The source stays the one truth: the same code runs
compiled or interpreted, and the tests run on what the bootstrap built.

Why: a cached frame cost the reference's core about 2.6 us of interpreted
Python against Open vSwitch's 1 us of C (``edgelab bench forwarding``, its
third table).  mypyc turns the typed code into C calls, native attribute
slots and unboxed integer arithmetic.  Compiled are the hit, the walk's
driver and the tables a hit touches, the model the stages read, the slow
path's stages and SR services, the checksums, ``l3.py``, the field reads
and the rings (a new connection: 33 us in process with the first alone
compiled, 12 with all); the header classes and the rarer services run
interpreted (README, "Compiled per-packet modules", says why and what the
source must declare for the compiler to make it fast).  A compiled class's
methods cannot be replaced on an instance: a test plants a fault in what a
stage reads, not in the stage.

A ``.so`` older than its source would run the old code without a word, so the
build writes a stamp (the hash of the sources and of mypyc's version,
:data:`STAMP`) and :func:`check`, called when the package is imported, refuses
a stale build with one sentence saying what to run.  ``EDGELAB_INTERPRETED=1``
runs the sources instead (the ``.so`` files are left alone): for a quick
edit-and-try, and to measure one against the other.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.metadata
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAMP = ROOT / "gateway" / "native.stamp"
# The runtime the compiled modules share is a module of the package (``gateway.compiled__mypyc``),
# not mypyc's default, a top-level module named by a hash: that one is found only from the
# repository's root, so ``edgelab`` run from anywhere else could not import the gateway.
GROUP = "gateway.compiled"
SETUP = """
import sys
from setuptools import setup
from mypyc.build import mypycify
setup(name="edgelab-native", ext_modules=mypycify(sys.argv[1:], opt_level="3", group_name={group!r}),
      script_args=["build_ext", "--inplace"])
"""

# The cache hit, the walk's driver and the tables a hit touches; then the slow path's stages
# and SR services.  A class that one of these subclasses (or that subclasses one) must be
# compiled with it.
MODULES = (
    "gateway/cache/__init__.py",
    "gateway/cache/keys.py",
    "gateway/cache/compose.py",
    "gateway/cache/describe.py",
    "gateway/datapath.py",
    "gateway/pipeline.py",
    "gateway/packet.py",
    "gateway/effects.py",
    "gateway/epoch.py",
    "gateway/l4.py",
    "gateway/services/conntrack.py",
    "gateway/tables/aging.py",
    "gateway/tables/mac.py",
    "gateway/tables/arp.py",
    "gateway/tables/fib.py",
    "gateway/port.py",
    "gateway/evi/link.py",
    "gateway/model.py",
    "gateway/io/afpacket.py",
    "gateway/io/txring.py",
    "gateway/io/blockring.py",
    "gateway/fields.py",
    "gateway/checksums.py",
    "gateway/l3.py",
    "gateway/stages/base.py",
    "gateway/stages/classify.py",
    "gateway/stages/dr.py",
    "gateway/stages/egress.py",
    "gateway/stages/evi.py",
    "gateway/stages/forward.py",
    "gateway/stages/l2switch.py",
    "gateway/stages/routing.py",
    "gateway/stages/routing6.py",
    "gateway/stages/sr.py",
    "gateway/stages/transit.py",
    "gateway/services/sr.py",
    "gateway/services/sr6.py",
    "gateway/services/nat.py",
    "gateway/services/firewall.py",
    "gateway/services/classifier.py",
    "gateway/services/rules.py",
    "gateway/services/expect.py",
)


class StaleBuild(ImportError):
    pass


def compiler() -> str:
    """mypyc's version (it is mypy's): another compiler may build the same source otherwise."""
    try:
        return importlib.metadata.version("mypy")
    except importlib.metadata.PackageNotFoundError:
        return "none"


def digest() -> str:
    h = hashlib.sha256(compiler().encode())
    h.update(SETUP.format(group=GROUP).encode())  # (how it was built: a new recipe rebuilds)
    for rel in MODULES:
        h.update(rel.encode())
        h.update((ROOT / rel).read_bytes())
    return h.hexdigest()


def built() -> list[Path]:
    """The compiled modules present beside their sources."""
    found = []
    for rel in MODULES:
        src = ROOT / rel
        found += [p for s in importlib.machinery.EXTENSION_SUFFIXES for p in [src.with_suffix(s)] if p.exists()]
    return found


def runtime() -> list[Path]:
    """The library the compiled modules share (``gateway/compiled__mypyc.*.so``)."""
    return sorted((ROOT / "gateway").glob(GROUP.rpartition(".")[2] + "__mypyc.*"))


def interpreted() -> bool:
    return os.environ.get("EDGELAB_INTERPRETED", "") not in ("", "0")


def describe() -> str:
    """How the reference gateway's per-packet modules run here, for a benchmark's figures."""
    found = [] if interpreted() else built()
    return f"{len(found)} modules compiled (mypyc {compiler()})" if found else "interpreted"


def current() -> bool:
    """The stamp is that of these sources and this mypyc."""
    return STAMP.exists() and STAMP.read_text().strip() == digest()


def check() -> None:
    """Refuse compiled modules that are not those of the current sources."""
    if built() and not current():
        raise StaleBuild(
            "gateway: the compiled modules are older than their sources: run 'make native' "
            "(or set EDGELAB_INTERPRETED=1 to run the sources)"
        )


class _Sources(importlib.abc.MetaPathFinder):
    """Finds :data:`MODULES` as their ``.py`` files, ahead of the ``.so`` beside them."""

    def find_spec(self, fullname: str, path: object, target: object = None) -> importlib.machinery.ModuleSpec | None:
        rel = _NAMES.get(fullname)
        if rel is None:
            return None
        src = ROOT / rel
        package = [str(src.parent)] if src.name == "__init__.py" else None
        return importlib.util.spec_from_file_location(fullname, src, submodule_search_locations=package)


_NAMES = {rel.removesuffix(".py").removesuffix("/__init__").replace("/", "."): rel for rel in MODULES}


def activate() -> None:
    """At the package's import: the sources if asked for, else a compiled build only if current."""
    if interpreted():
        if not any(isinstance(f, _Sources) for f in sys.meta_path):
            sys.meta_path.insert(0, _Sources())
        return
    try:
        check()
    except StaleBuild as exc:
        raise SystemExit(str(exc)) from None  # one sentence, not a traceback: a user can cause it


def clean() -> None:
    """Every compiled module under ``gateway/`` (also of a module since taken off the list)."""
    for path in (ROOT / "gateway").rglob("*.so"):
        path.unlink()
    for path in ROOT.glob("*__mypyc*.so"):  # (mypyc's default place, used by earlier builds)
        path.unlink()
    STAMP.unlink(missing_ok=True)


def build() -> int:
    """Compile :data:`MODULES` in place; a failed build leaves no compiled module behind."""
    if not current() or len(built()) != len(MODULES) or not runtime():
        clean()
        print(f"native: compiling {len(MODULES)} modules with mypyc ...", flush=True)
        res = subprocess.run(
            [sys.executable, "-c", SETUP.format(group=GROUP), *MODULES],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if res.returncode != 0:
            clean()
            sys.stderr.write(res.stdout[-4000:] + res.stderr[-4000:])
            print(
                "native: mypyc could not compile the modules (its output above); nothing compiled is left, "
                "so the gateway runs interpreted until 'make native' succeeds",
                file=sys.stderr,
            )
            return 1
        STAMP.write_text(digest() + "\n")
    print(f"native: {len(built())} modules compiled, current")
    return 0


def main(argv: list[str]) -> int:
    if argv[1:] == ["build"]:
        return build()
    if argv[1:] == ["clean"]:
        clean()
        return 0
    if argv[1:] == ["check"]:
        try:
            check()
        except StaleBuild as exc:
            print(exc, file=sys.stderr)
            return 1
        print(f"native: {describe()}")
        return 0
    print("usage: python -P gateway/native.py build|clean|check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
