"""The comparison report: one self-contained HTML page (``comparison.html``) and ``results.json``.

Where this sits: ``edgelab report`` (and ``make compare``) call :func:`write`
with the conformance runs of several DUTs (Robot ``output.xml`` each, with
the ``versions.json`` ``ci/conformance.sh`` leaves beside it) and whatever
benchmark results are in the results directory.  The page opens offline: no
script, no stylesheet or image from elsewhere; plots are inline PNGs.

Sections: the DUTs (what each is, component versions, totals); the
conformance matrix (tests x DUTs, differing outcomes first; a failure shows
its first failing assertion and links to its Robot log); capabilities
declared by each driver against those its tests demonstrated; performance
(``bench-forwarding.json``, ``bench-failover.json`` when present).
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import time
from pathlib import Path
from typing import Any

from ci.report import robot_results

CSS = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #bbb; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #eee; }
td.PASS { background: #d8f0d8; } td.FAIL { background: #f6d0d0; } td.na { background: #eee; color: #666; }
td.SKIP { background: #f4ecd0; } td.differs { font-weight: bold; }
.msg { font-size: 0.85em; color: #555; display: block; max-width: 40em; }
.small { font-size: 0.85em; color: #555; }
"""


def _esc(value: Any) -> str:
    return html.escape(str(value))


def load_run(output: Path, out_dir: Path) -> dict[str, Any]:
    """A DUT's conformance run: Robot's results, test ids for log links (relative to the
    page in ``out_dir``), versions."""
    from robot.api import ExecutionResult

    run = robot_results(output)
    ids = {(t.parent.name, t.name): t.id for t in ExecutionResult(str(output)).suite.all_tests}
    run["dir"] = os.path.relpath(output.parent.resolve(), out_dir.resolve())
    for t in run["tests"]:
        t["log"] = f"{run['dir']}/log.html#{ids.get((t['suite'], t['test']), '')}"
    versions = output.parent / "versions.json"
    run["versions"] = json.loads(versions.read_text()) if versions.exists() else {}
    return run


def capability_table(runs: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """capability -> dut -> 'demonstrated' | 'failed' | 'declared' (not exercised) | 'n/a' | 'no'."""
    from suites.duts import CAPABILITIES, capabilities

    out: dict[str, dict[str, str]] = {}
    for cap in CAPABILITIES:
        row: dict[str, str] = {}
        for run in runs:
            try:
                declared = cap in capabilities(run["dut"])
            except Exception:  # noqa: BLE001 - a run of a DUT not installed here: judge by its tests alone
                declared = False
            tests = [t for t in run["tests"] if f"needs:{cap}" in t["tags"]]
            if any(t["status"] == "FAIL" for t in tests):
                row[run["dut"]] = "failed"
            elif any(t["status"] == "PASS" for t in tests):
                row[run["dut"]] = "demonstrated"
            else:
                row[run["dut"]] = "declared" if declared else "no"
        out[cap] = row
    return out


def _matrix(runs: list[dict[str, Any]]) -> str:
    keys = list(dict.fromkeys((t["suite"], t["test"]) for r in runs for t in r["tests"]))
    cell = {(r["dut"], t["suite"], t["test"]): t for r in runs for t in r["tests"]}

    def statuses(key: tuple[str, str]) -> set[str]:
        return {cell[(r["dut"], *key)]["status"] if (r["dut"], *key) in cell else "-" for r in runs}

    keys.sort(key=lambda k: len(statuses(k)) == 1)  # differing outcomes first
    head = "".join(f"<th>{_esc(r['dut'])}</th>" for r in runs)
    rows = []
    for key in keys:
        differs = " differs" if len(statuses(key)) > 1 else ""
        cells = []
        for r in runs:
            t = cell.get((r["dut"], *key))
            if t is None:
                cells.append("<td>-</td>")
                continue
            css = "na" if t["status"] == "n/a" else t["status"]
            text = _esc(t["status"])
            if t["status"] == "FAIL":
                text = f'<a href="{_esc(t["log"])}">FAIL</a><span class="msg">{_esc(t["message"])}</span>'
            elif t["status"] == "n/a":
                text += f'<span class="msg">{_esc(t["message"])}</span>'
            cells.append(f'<td class="{css}{differs}">{text}</td>')
        rows.append(f"<tr><td>{_esc(key[0])}</td><td>{_esc(key[1])}</td>{''.join(cells)}</tr>")
    return f'<table id="matrix"><tr><th>suite</th><th>test</th>{head}</tr>{"".join(rows)}</table>'


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return '<img alt="plot" src="data:image/png;base64,' + base64.b64encode(buf.getvalue()).decode() + '">'


def _forwarding(bench: dict[str, Any]) -> str:
    """The forwarding benchmark per DUT: box plots over the trials when the run kept them
    (bars of the single figures of an older run otherwise), and the table of medians."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = bench["results"]
    configs = [c for c in ("kernel", "uncached", "cached", "ovs") if c in results]
    flows = [f for f in ("many", "few") if all(f in results[c] for c in configs)]
    trials = all(results[c].get("trials") for c in configs)
    fig, axes = plt.subplots(1, len(flows), figsize=(5 * len(flows), 3.5), squeeze=False)
    rows = []
    for ax, f in zip(axes[0], flows, strict=True):
        top = [results[c][f]["max"]["delivered_pps"] / 1000 for c in configs]
        nl = [results[c][f]["no_loss"]["pps"] / 1000 for c in configs]
        if trials:
            data = [[t[f]["no_loss"]["pps"] / 1000 for t in results[c]["trials"]] for c in configs]
            ax.boxplot(data)
            ax.set_xticks(range(1, len(configs) + 1), configs)
            ax.set_title(f"{f} flows: no-loss rate over {len(data[0])} trials")
        else:
            xs = range(len(configs))
            ax.bar([x - 0.2 for x in xs], top, width=0.4, label="highest delivered")
            ax.bar([x + 0.2 for x in xs], nl, width=0.4, label="no loss")
            ax.set_xticks(list(xs), configs)
            ax.set_title(f"{f} flows")
            ax.legend(fontsize=7)
        ax.set_ylabel("kpps")
        for c, t, n in zip(configs, top, nl, strict=True):
            bound = " (generator-bound)" if results[c][f].get("generator_bound") else ""
            core = results[c][f]["no_loss"].get("core") or {}  # (a run before edgelab/corestat.py has none)
            cost = f"{core['us_per_frame']:.2f} ({core['busy']:.0%} busy)" if core else "-"
            rows.append(
                f"<tr><td>{_esc(c)}</td><td>{_esc(f)}</td><td>{t:.1f}{bound}</td><td>{n:.1f}</td><td>{cost}</td></tr>"
            )
    fig.tight_layout()
    img = _png(fig)
    plt.close(fig)
    meta = bench.get("meta", {})
    how = (
        f"medians of {meta.get('trials', '?')} trials; {_esc(meta.get('steering', ''))}"
        if trials
        else "one run: a single measurement per configuration, not a distribution over trials"
    )
    return (
        f"<h3>Forwarding (<code>edgelab bench forwarding</code>, path {_esc(meta.get('path', '?'))})</h3>"
        f'<p class="small">{_esc(meta.get("path_description", ""))}; {how}.</p>'
        f"{img}<table><tr><th>config</th><th>flows</th><th>max kpps</th><th>no-loss kpps</th>"
        f"<th>DUT core, us per frame at no loss</th></tr>{''.join(rows)}</table>"
        f"{_latency(results, configs)}"
    )


def _latency(results: dict[str, Any], configs: list[str]) -> str:
    """Round-trip p50 / p99 per configuration, idle and at each share of its no-loss rate
    (a run before the loaded probes has one idle figure)."""
    lat = {c: results[c].get("latency", {}) for c in configs}
    if not all("idle" in v for v in lat.values()):
        lat = {c: {"idle": v} for c, v in lat.items()}
    loads = [k for k in lat[configs[0]]] if configs else []
    head = "".join(f"<th>{_esc(k)} p50 / p99 ms</th>" for k in loads)
    rows = "".join(
        f"<tr><td>{_esc(c)}</td>"
        + "".join(
            f"<td>{v[k].get('p50_ms', float('nan')):.3f} / {v[k].get('p99_ms', float('nan')):.3f}</td>" for k in loads
        )
        + "</tr>"
        for c, v in lat.items()
    )
    return (
        '<p class="small">Round-trip time of pings through the DUT, idle and beside traffic at a share of '
        f'the configuration\'s no-loss rate:</p><table id="latency"><tr><th>config</th>{head}</tr>{rows}</table>'
    )


def _scale(bench: dict[str, Any]) -> str:
    """The reference gateway's cost curves (``edgelab bench scale``): per dimension, lookup cost
    and bytes per entry against size, log scale, and the largest/smallest ratio."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dims = [d for d, rows in bench.items() if isinstance(rows, list) and rows]
    fig, axes = plt.subplots(1, len(dims), figsize=(2.6 * len(dims), 2.8), squeeze=False)
    rows_html = []
    for ax, dim in zip(axes[0], dims, strict=True):
        rows = bench[dim]
        sizes = [r["size"] for r in rows]
        ax.plot(sizes, [r["working_set_ns"] for r in rows], marker="o", label="ns / lookup")
        ax.set_xscale("log")
        ax.set_title(dim, fontsize=9)
        ax.set_ylim(bottom=0)
        per = [(r["size"], r["bytes_per_entry"]) for r in rows if r.get("bytes_per_entry")]
        if per:
            ax2 = ax.twinx()
            ax2.plot([p[0] for p in per], [p[1] for p in per], color="tab:orange", marker="s", label="bytes / entry")
            ax2.set_ylim(bottom=0)
        ratio = rows[-1]["working_set_ns"] / rows[0]["working_set_ns"] if rows[0]["working_set_ns"] else float("inf")
        floor = "-"
        if rows[0].get("floor_working_set_ns") and rows[-1].get("floor_working_set_ns"):
            ax.plot(
                sizes, [r.get("floor_working_set_ns") for r in rows], linestyle=":", color="grey", label="dict probe"
            )
            floor = f"{rows[-1]['floor_working_set_ns'] / rows[0]['floor_working_set_ns']:.2f}x"
        rows_html.append(
            f"<tr><td>{_esc(dim)}</td><td>{sizes[0]:,}-{sizes[-1]:,}</td><td>{ratio:.2f}x</td>"
            f"<td>{'met' if ratio <= 1.5 else 'not met'}</td><td>{floor}</td><td>{rows[-1].get('rss_mb', 0):.0f}</td></tr>"
        )
    fig.tight_layout()
    img = _png(fig)
    plt.close(fig)
    return (
        "<h3>Cost at scale (<code>edgelab bench scale</code>, reference gateway, in process)</h3>"
        '<p class="small">lookup cost of a working set (blue) and bytes per entry (orange) as each table grows; '
        "target: the largest size within 1.5x of the smallest. Dotted grey, the baseline of the same run: the "
        "same keys probed in a plain dict of as many keys, each to the entry the table finds: one hash probe's "
        "cost at each size.</p>"
        f"{img}<table><tr><th>dimension</th><th>sizes</th><th>largest / smallest</th><th>1.5x target</th>"
        f"<th>dict probe, largest / smallest</th><th>MB at the largest</th></tr>{''.join(rows_html)}</table>"
    )


def _scale_wire(bench: dict[str, Any]) -> str:
    """The same tables grown in the running gateway, on the wire (``edgelab bench scale --wire``):
    per dimension the rate against size, and the daemon's memory."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = {d: rows for d, rows in bench.get("results", {}).items() if rows}
    if not results:
        return ""
    fig, axes = plt.subplots(1, len(results), figsize=(2.8 * len(results), 2.8), squeeze=False)
    rows_html = []
    for ax, (dim, rows) in zip(axes[0], results.items(), strict=True):
        key, unit = ("kpps", "kpps cached") if dim == "sessions" else ("kcps", "k new conn/s")
        sizes = [r.get("held", r["size"]) for r in rows]
        ax.plot(sizes, [r[key] for r in rows], marker="o", label=unit)
        ax.set_xscale("log")
        ax.set_ylim(bottom=0)
        ax.set_title(f"{dim} ({unit})", fontsize=9)
        ax2 = ax.twinx()
        ax2.plot(sizes, [r["rss_mb"] for r in rows], color="tab:orange", marker="s", label="daemon MB")
        ax2.set_ylim(bottom=0)
        ratio = rows[-1][key] / rows[0][key] if rows[0][key] else float("nan")
        rows_html.append(
            f"<tr><td>{_esc(dim)}</td><td>{sizes[0]:,}-{sizes[-1]:,}</td><td>{rows[0][key]:.1f} / {rows[-1][key]:.1f} "
            f"{unit}</td><td>{ratio:.2f}x</td><td>{rows[-1]['rss_mb']:.0f}</td></tr>"
        )
    fig.tight_layout()
    img = _png(fig)
    plt.close(fig)
    return (
        "<h3>At scale on the wire (<code>edgelab bench scale --wire</code>, reference gateway)</h3>"
        '<p class="small">the no-loss rate (blue) and the daemon\'s resident memory (orange) as each table grows '
        "in the running gateway: sessions held while the cached path forwards, firewall rules and routes while "
        "new connections are made.</p>"
        f"{img}<table><tr><th>dimension</th><th>sizes</th><th>rate, smallest / largest</th>"
        f"<th>largest / smallest</th><th>daemon MB at the largest</th></tr>{''.join(rows_html)}</table>"
    )


def _failover(bench: dict[str, Any]) -> str:
    s = bench["summary"]
    dut = s.get("dut", "reference")

    def fate(r: dict[str, Any], key: str) -> str:
        return _esc({True: "survived", False: "lost"}.get(r.get(key, r.get("connection_survived")), "?"))

    rows = "".join(
        f"<tr><td>{r['round']}</td><td>{r['detection_ms']:.0f}</td><td>{r['loss_window_ms']:.0f}</td>"
        f"<td>{fate(r, 'tcp_survived')}</td><td>{fate(r, 'udp_survived')}</td></tr>"
        for r in bench["rounds"]
    )
    survived = s.get("connections_survived")
    total = s.get("connections", s.get("rounds", len(bench["rounds"])))
    kept = f"; connections surviving: {survived} of {total}" if survived is not None else ""
    return (
        f"<h3>Failover (<code>edgelab bench failover --dut {_esc(dut)}</code>, timers {_esc(s['bfd'])})</h3>"
        f"<p>loss window min / median / max: {s['loss_window_ms']['min']:.0f} / {s['loss_window_ms']['median']:.0f}"
        f" / {s['loss_window_ms']['max']:.0f} ms (target under {s['target_loss_window_ms']} ms){kept}</p>"
        f"<table><tr><th>round</th><th>detection ms</th><th>loss window ms</th><th>idle TCP</th><th>UDP flow</th></tr>{rows}</table>"
    )


def write(outputs: list[Path], out_dir: Path, bench_dir: Path | None = None) -> Path:
    """Write ``comparison.html`` and ``results.json`` into ``out_dir``; return the page's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = [load_run(p, out_dir) for p in outputs]
    commit = next((r["versions"].get("commit") for r in runs if r["versions"].get("commit")), "?")
    duts = []
    for r in runs:
        n = {s: sum(t["status"] == s for t in r["tests"]) for s in ("PASS", "FAIL", "n/a", "SKIP")}
        versions = ", ".join(f"{k} {v}" for k, v in r["versions"].items() if k not in ("commit", "description"))
        duts.append(
            f"<tr><td>{_esc(r['dut'])}</td><td>{_esc(r['versions'].get('description', ''))}</td>"
            f'<td class="small">{_esc(versions)}</td><td>{n["PASS"]}</td><td>{n["FAIL"]}</td><td>{n["n/a"]}</td>'
            f'<td><a href="{_esc(r["dir"])}/report.html">Robot report</a></td></tr>'
        )
    caps = capability_table(runs)
    cap_rows = "".join(
        f"<tr><td>{_esc(cap)}</td>" + "".join(f"<td>{_esc(row[r['dut']])}</td>" for r in runs) + "</tr>"
        for cap, row in caps.items()
    )
    perf = []
    bench_dir = bench_dir or out_dir
    benches = [(bench_dir / "bench-forwarding.json", _forwarding)]
    benches += [(p, _failover) for p in sorted(bench_dir.glob("bench-failover*.json"))]  # one per DUT
    benches.append((bench_dir / "bench-scale.json", _scale))
    benches.append((bench_dir / "bench-scale-wire.json", _scale_wire))
    for path, render in benches:
        if path.exists():
            perf.append(render(json.loads(path.read_text())))
    if not perf:
        perf.append(
            "<p>No benchmark results in this directory: run <code>edgelab bench forwarding</code> and "
            "<code>edgelab bench failover</code> (they write here), then the report again.</p>"
        )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>edgelab comparison report</title><style>{CSS}</style></head>
<body>
<h1>edgelab comparison report</h1>
<p class="small">edgelab {_esc(commit)}, written {_esc(time.strftime("%Y-%m-%d %H:%M:%S"))}</p>
<h2>Gateways under test</h2>
<table id="duts"><tr><th>DUT</th><th>what it is</th><th>versions</th><th>pass</th><th>fail</th><th>n/a</th><th>log</th></tr>
{"".join(duts)}</table>
<h2>Conformance</h2>
<p class="small">n/a: the DUT's driver does not declare a capability the test needs (the reason says which); it is
never counted as a pass. Tests whose outcome differs between DUTs come first.</p>
{_matrix(runs)}
<h2>Capabilities</h2>
<p class="small">demonstrated: a test needing it passed and none failed; failed: a test needing it failed;
declared: the driver says so but no test exercised it; no: not declared.</p>
<table id="capabilities"><tr><th>capability</th>{"".join(f"<th>{_esc(r['dut'])}</th>" for r in runs)}</tr>{cap_rows}</table>
<h2>Performance</h2>
{"".join(perf)}
</body></html>
"""
    page_path = out_dir / "comparison.html"
    page_path.write_text(page)
    results = [
        {
            "dut": r["dut"],
            "suite": t["suite"],
            "test": t["test"],
            "status": t["status"],
            "seconds": t["seconds"],
            "message": t["message"],
            "metrics": {},
            "artifacts": [t["log"]],
        }
        for r in runs
        for t in r["tests"]
    ]
    meta = {"commit": commit, "duts": {r["dut"]: r["versions"] for r in runs}, "capabilities": caps}
    (out_dir / "results.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    return page_path
