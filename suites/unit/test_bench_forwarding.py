"""``bench forwarding``'s arithmetic without a topology: medians over trials, the
generator-bound flag, ratios paired by trial, the table and the box plot."""

from __future__ import annotations

import json
from typing import Any

from edgelab import bench_forwarding as bf


def _trial(max_pps: float, sent: float, no_loss: float) -> dict:
    one = {"max": {"delivered_pps": max_pps, "sent_pps": sent}, "no_loss": {"pps": no_loss, "trials": []}}
    probe = {"p50_ms": 0.1, "p99_ms": 0.2, "replies": 200}
    return {"many": one, "few": one, "latency": {load: dict(probe) for load in bf.LOADS}}


def _results() -> dict:
    return {
        "kernel": bf.summarize([_trial(300e3, 300e3, 180e3), _trial(290e3, 295e3, 170e3), _trial(310e3, 310e3, 190e3)]),
        "uncached": bf.summarize([_trial(20e3, 400e3, 30e3), _trial(21e3, 400e3, 20e3), _trial(19e3, 400e3, 25e3)]),
        "cached": bf.summarize([_trial(90e3, 400e3, 150e3), _trial(95e3, 400e3, 60e3), _trial(99e3, 400e3, 140e3)]),
        "ovs": bf.summarize([_trial(80e3, 150e3, 75e3), _trial(85e3, 150e3, 70e3), _trial(70e3, 150e3, 80e3)]),
    }


def test_medians_and_the_generator_bound_flag():
    r = _results()
    assert r["cached"]["many"]["no_loss"]["pps"] == 140e3  # the median, not the mean (116.7k)
    assert r["kernel"]["many"]["max"]["delivered_pps"] == 300e3
    assert r["kernel"]["many"]["generator_bound"]  # 290 of 295 is above 97 %
    assert not r["ovs"]["many"]["generator_bound"]
    assert len(r["ovs"]["trials"]) == 3


def test_ratios_name_the_worst_trial_not_only_the_median():
    lines = bf.ratios(_results())
    no_loss = next(line for line in lines if line.startswith("many flows no-loss"))
    # medians 140 / 25 = 5.6x, but the second round gave 60 / 20 = 3.0x
    assert "cached/uncached =  5.60x (worst trial 3.00x)" in no_loss
    assert "cached/ovs =  1.87x" in no_loss and "ovs/kernel =  0.42x" in no_loss


def test_table_and_box_plot(tmp_path):
    r = _results()
    text = bf.table(r)
    assert "generator-bound" in text.splitlines()[1] and "60-150" in text
    assert bf.plot(r, tmp_path / "f.png", "test")
    assert (tmp_path / "f.png").stat().st_size > 10_000
    json.dumps(r)  # what the bench writes


def test_latency_medians_per_load_and_their_table():
    trials = [_trial(1, 1, 1) for _ in range(3)]
    for n, t in enumerate(trials):
        t["latency"]["50%"] = {"p50_ms": 0.5 + n, "p99_ms": 2.0 + n, "replies": 200}
        t["latency"]["90%"] = {"p50_ms": 9.0, "p99_ms": 9.0, "replies": 3}  # too few replies: not counted
    lat = bf.summarize(trials)["latency"]
    assert lat["50%"] == {"p50_ms": 1.5, "p99_ms": 3.0, "replies": 600}
    assert lat["idle"]["p50_ms"] == 0.1 and lat["90%"]["replies"] == 0
    text = bf.latency_table({"cached": bf.summarize(trials)})
    assert "50% p50 / p99" in text.splitlines()[0] and "1.500 / 3.000" in text and "nan / nan" in text


def test_the_connection_bench_pairs_each_syn_with_a_rst_of_its_tuple(tmp_path):
    from types import SimpleNamespace

    from edgelab.bench_connections import ConnBench

    b = ConnBench.__new__(ConnBench)
    b.cfg_dir, b.dut_mac = tmp_path, "02:00:00:bb:00:01"
    b.lab = SimpleNamespace(plan={"hosts": {"gen": {"mac": "02:00:00:aa:00:02"}}})
    syn, rst = b._trafgen_cfg("connect").read_text().splitlines()
    assert ", syn)" in syn and ", rst)" in rst
    # the same counters in both definitions: the nth RST closes the nth SYN's connection
    assert syn.replace("syn", "X").replace("seq=1000", "S") == rst.replace("rst", "X").replace("seq=1001", "S")
    assert "sp=dinc(1024, 65535)" in syn and "da[3]=dinc(1, 250)" in syn


def test_each_connection_trial_starts_from_an_empty_table_on_every_dut(monkeypatch):
    """Before a trial of connections the DUT's connection table is flushed, whichever DUT runs
    (the connections of earlier, faster steps would otherwise expire inside the trials that
    decide the rate); a trial of other traffic keeps the table (bench scale --wire fills it)."""
    import sys
    from types import SimpleNamespace

    from edgelab.bench_connections import ConnBench
    from edgelab.offered import Offered

    said: list[Any] = []
    b = ConnBench.__new__(ConnBench)
    b.dut = "dut"
    b.run = lambda node, argv, **kw: said.append((node, argv))
    b.gateway = SimpleNamespace(request=said.append)
    for mode in ("reference", "kernel", "ovs"):
        b.mode = mode
        b.empty_connections()
    assert said[:2] == [{"cmd": "conntrack", "action": "flush"}, {"cmd": "cache", "action": "flush"}]
    assert said[2] == ("dut", [sys.executable, "-c", "from pyroute2 import Conntrack; Conntrack().flush()"])
    assert said[3] == ("dut", ["ovs-appctl", "dpctl/flush-conntrack"]) and len(said) == 4
    monkeypatch.setattr(Offered, "trial", lambda self, flows, rate: {"flows": flows})
    b.mode = "reference"
    said.clear()
    assert b.trial("many", 1000.0) == {"flows": "many"} and said == []
    assert b.trial("connect", 1000.0) == {"flows": "connect"} and said[0]["cmd"] == "conntrack"


def test_the_connection_cost_in_process_comes_with_its_expiry():
    from edgelab.bench_connections import in_process

    create, expiry = in_process(pairs=300)
    assert create > 0 and expiry > 0
