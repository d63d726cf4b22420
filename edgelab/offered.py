"""An offered load from a generator host to a sink host, and the search for the highest rate
a DUT between them sustains: the method every wire bench shares.

Where this sits: ``bench_forwarding.Bench`` (and ``bench_connections``, ``bench_scale_wire``
on top of it) and ``bench_evi.EviBench`` subclass :class:`Offered`.  A subclass says what the
generator sends (:meth:`Offered._trafgen_cfg`, one file per kind of traffic) and, where it
can, what the DUT saw (:meth:`Offered._dut_counters`); this module runs a trial and searches.

- The sink counts the frames on its interface and drops them at ingress (an nftables
  netdev hook, before its IP stack).
- trafgen runs at full speed behind an even pace (``pacing.py``), pinned to ``gen_cpu``.
- A trial's delivered rate is what reached the sink while trafgen ran; its loss what never
  did once the DUT emptied its queues; ``queued`` what arrived only after trafgen stopped.
- The DUT's core (``core_cpu``) is read around trafgen's run (``corestat.py``).
- A rate is sustained with at most ``loss`` of its frames lost and :data:`QUEUED` still
  queued at the end: a deep receive ring must not pass a rate off as sustained by
  buffering it.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from edgelab import corestat, pacing

GEN_CPU, DUT_CPU = 0, 1
# Share of a trial's frames that may still be in the dut when the generator stops.  A DUT that
# keeps up holds only what is in flight (0-0.1 % seen at paced rates within reach, every DUT);
# at 5 %, as it was, a DUT 5 % short of a rate passed it, and a ping beside 90 % of the uncached
# path's "no-loss" rate waited 41-627 ms in its queue.
QUEUED = 0.01


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


class Offered:
    SINK_MATCH = "meta l4proto udp th dport 9"  # the bench frames (either family), dropped at the sink's ingress

    def __init__(
        self,
        lab: Any,
        seconds: float,
        loss: float,
        search_steps: int,
        gen_if: str,
        sink_if: str,
        gen_cpu: int | None = GEN_CPU,
        core_cpu: int | None = DUT_CPU,
    ) -> None:
        from topologies.nodes import run

        self.lab = lab
        self.run = run
        self.seconds = seconds
        self.loss = loss
        self.search_steps = search_steps
        self.gen = lab.host("gen")
        self.sink = lab.host("sink")
        self.gen_if, self.sink_if = gen_if, sink_if
        self.gen_cpu = gen_cpu  # trafgen pinned there (None: anywhere)
        self.core_cpu = core_cpu  # the DUT's core, read around each trial (None: not steered, not read)
        self.cfg_dir = Path(lab.rundir)
        self._sizes: dict[str, int] = {}  # bytes of a frame of each traffic, for the pace
        self._sink_drops_bench_flows()

    def _sink_drops_bench_flows(self) -> None:
        """The sink counts the bench frames on its interface and drops them at ingress
        (an nftables netdev hook, before its IP stack): taking each one through UDP
        to an ICMP port-unreachable would cost a CPU that the kernel baseline takes
        from the generator and the gateway from itself.  Ping still gets answered."""
        rules = (
            "table netdev edgelab_sink {\n"
            f" chain ingress {{ type filter hook ingress device {self.sink_if} priority 0; policy accept;\n"
            f"  {self.SINK_MATCH} counter drop\n"
            " }\n}\n"
        )
        path = self.cfg_dir / "sink.nft"
        path.write_text(rules)
        self.run(self.sink, ["nft", "-f", str(path)])

    # -- what a subclass says ----------------------------------------------------------
    def _trafgen_cfg(self, flows: str) -> Path:
        """The trafgen configuration of the traffic called ``flows``."""
        raise NotImplementedError

    def _dut_counters(self) -> dict[str, int]:
        """What the DUT itself counted so far ({}: it says nothing); a trial keeps the difference."""
        return {}

    # -- counters and traffic ----------------------------------------------------------
    def _count(self, node: Any, ifname: str, key: str) -> int:
        out = self.run(node, ["ip", "-s", "-j", "link", "show", ifname]).stdout
        stats = json.loads(out)[0]["stats64"]
        return int(stats[key]["packets"])

    def _trafgen(self, flows: str, seconds: float) -> list[str]:
        """trafgen unthrottled for ``seconds`` (a rate is set by :meth:`paced`)."""
        pin = ["taskset", "-c", str(self.gen_cpu)] if self.gen_cpu is not None else []
        cfg = self._trafgen_cfg(flows)
        return [*pin, "timeout", "-s", "INT", f"{seconds}", "trafgen", "-o", self.gen_if, "-i", str(cfg),
                "--cpus", "1", "-q"]  # fmt: skip

    def paced(self, flows: str, rate_pps: float | None) -> contextlib.AbstractContextManager[None]:
        """The generator's interface held to ``rate_pps`` frames a second, evenly (``pacing.py``:
        trafgen's own rate is a second's frames in one burst); None: trafgen's full speed."""
        size = self._sizes.get(flows)
        if size is None and rate_pps is not None:
            size = self._sizes[flows] = pacing.frame_bytes(
                self.run, self.gen, self.gen_if, str(self._trafgen_cfg(flows))
            )
        return pacing.paced(self.run, self.gen, self.gen_if, rate_pps, size or 0)

    def trial(self, flows: str, rate_pps: float | None) -> dict[str, Any]:
        """Offer traffic for ``seconds``; return sent/received packets and rates."""
        argv = self._trafgen(flows, self.seconds)
        self.drain()
        dut0 = self._dut_counters()
        sent0 = self._count(self.gen, self.gen_if, "tx")
        recv0 = self._count(self.sink, self.sink_if, "rx")
        with self.paced(flows, rate_pps):
            core0 = corestat.read(self.core_cpu)
            res = self.run(self.gen, argv, check=False, timeout=self.seconds + 30)
            core1 = corestat.read(self.core_cpu)
        if res.returncode not in (0, 124, 130) and "trafgen" not in res.stdout + res.stderr:
            raise RuntimeError(f"trafgen failed (exit {res.returncode}): {res.stderr.strip()}")
        # Delivered rate: what reached the sink while trafgen ran.  Loss: what never
        # reached it, counted once the dut has emptied its queues.
        in_window = self._count(self.sink, self.sink_if, "rx") - recv0
        sent = self._count(self.gen, self.gen_if, "tx") - sent0
        recv = self.drain() - recv0
        dut = self._dut_counters()
        return {
            # Where the frames went inside the gateway (reference gateway only).
            "dut": {k: dut[k] - dut0[k] for k in dut} if dut else {},
            "offered_pps": rate_pps or 0.0,
            "sent": sent,
            "received": recv,
            "sent_pps": sent / self.seconds,
            "delivered_pps": in_window / self.seconds,
            "loss": 0.0 if sent == 0 else max(0.0, (sent - recv) / sent),
            # Still queued in the dut when the generator stopped (delivered afterwards).
            "queued": 0.0 if sent == 0 else max(0, recv - in_window) / sent,
            # The DUT's core while trafgen ran, per frame delivered then (corestat.py).
            "core": corestat.per_frame(core0, core1, in_window),
        }

    def drain(self, quiet: float = 0.3, limit: float = 15.0) -> int:
        """Wait until nothing more arrives at the sink (the dut's queues are empty);
        return the sink's receive counter.  A userspace datapath behind a deep receive
        ring may still be forwarding seconds after the generator stopped."""
        deadline = time.monotonic() + limit
        last = self._count(self.sink, self.sink_if, "rx")
        while time.monotonic() < deadline:
            time.sleep(quiet)
            now = self._count(self.sink, self.sink_if, "rx")
            if now == last:
                return now
            last = now
        log(f"the dut was still forwarding {limit:.0f} s after the generator stopped")
        return last

    def no_loss_rate(self, flows: str, ceiling: float) -> dict[str, Any]:
        """Binary search for the highest rate the dut sustains: at most ``loss`` of the
        frames lost, and at most ``QUEUED`` of them still queued in the dut when the
        generator stopped (a deep receive ring can swallow a whole trial of a rate the
        dut cannot keep up with and deliver it late: buffered, not sustained)."""
        lo, hi = 0.0, ceiling
        best: dict[str, Any] | None = None
        trials = []
        for _ in range(self.search_steps):
            mid = (lo + hi) / 2
            t = self.trial(flows, mid)
            trials.append(t)
            if t["loss"] <= self.loss and t["queued"] <= QUEUED:
                lo, best = mid, t
            else:
                hi = mid
        return {"pps": best["sent_pps"] if best else 0.0, "core": best["core"] if best else {}, "trials": trials}
