"""The fuzzer runs in make test with a short budget, and it can fail: planted faults are found."""

from __future__ import annotations

import pytest

from suites.lib import fuzz


@pytest.mark.parametrize("target", sorted(fuzz.TARGETS))
def test_short_fuzz_run_finds_nothing(target):
    fuzz.TARGETS[target](3000 if target == "frames" else 1500, 20261125)


def test_frames_target_finds_a_cache_that_drops_padding():
    """A planted fault: cache hits on switched frames lose their Ethernet padding (each L2
    entry's output is a port that sends the first 60 bytes of a frame)."""
    from gateway import cache as cache_mod
    from gateway.port import Port

    class Cutting:
        def __init__(self, io):
            self.io = io

        def send(self, frame):
            self.io.send(frame[:60])

    def lossy(dp):
        for entry in dp.cache._lru.values():
            out = entry.out_port
            if entry.mask == cache_mod.L2 and not isinstance(out.io, Cutting):
                cut = Port(out.name, out.ifname, out.role, out.mtu)
                cut.io = Cutting(out.io)
                entry.out_port = cut

    with pytest.raises(fuzz.FuzzFailure, match="cache on and off sent different bytes"):
        fuzz.fuzz_frames(20000, 1, plant=lossy)


def test_control_target_finds_a_show_that_raises(monkeypatch):
    from gateway.services.firewall import Firewall

    def broken(self):
        raise IndexError("planted")

    monkeypatch.setattr(Firewall, "show", broken)
    with pytest.raises(fuzz.FuzzFailure, match="tripped a bug"):
        fuzz.fuzz_control(5000, 1)


def test_config_target_finds_a_parser_that_raises(monkeypatch):
    from gateway.config import schema

    real = schema.Reader.name

    def fragile(self, value, path):
        if value == "":
            raise TypeError("planted")
        return real(self, value, path)

    monkeypatch.setattr(schema.Reader, "name", fragile)
    with pytest.raises(fuzz.FuzzFailure, match="TypeError"):
        fuzz.fuzz_config(5000, 1)
