"""The ``--baseline`` figure: per row compared with its baseline, the latency ratio (this run
/ baseline) with its 95% bootstrap interval from both runs' samples, a line at 1 (no
change) and, where ``--fail-on latency:X%`` was given, a line at the gate. Drawn with
:mod:`archbench.report.plots`' headless figures and captions; importing this module imports
neither matplotlib nor pandas."""

from __future__ import annotations

from typing import Any

from archbench.report.baseline import BASELINE_TITLE
from archbench.report.cells import is_number


def ratio_rows(report: Any) -> list[tuple[str, dict[str, Any]]]:
    """(label, table row) of every row of the baseline table with a latency ratio; labels
    name the input and batch where the table has several."""
    rows = [r for r in report.tables.get(BASELINE_TITLE) or []
            if all(is_number(r.get(c)) for c in ("latency_ratio", "ci95_low", "ci95_high"))]
    inputs = {r.get("input") for r in rows}
    batches = {r.get("batch_size") for r in rows}
    return [(str(r["model"]) + (f" {r['input']}" if len(inputs) > 1 else "")
             + (f", batch {r['batch_size']}" if len(batches) > 1 else ""), r) for r in rows]


def baseline_figures(report: Any) -> list:
    """The ratio figure, or ``[]`` without a row whose latency was compared."""
    from archbench.report.plots import colours, finish_figure, subplots

    chosen = ratio_rows(report)
    if not chosen:
        return []
    palette = colours([r["model"] for r in report.rows])
    fig, ax = subplots(figsize=(6.4, 0.45 * len(chosen) + 1.7))
    for y, (_, row) in enumerate(chosen):
        ratio = row["latency_ratio"]
        ax.errorbar([ratio], [y], xerr=[[ratio - row["ci95_low"]], [row["ci95_high"] - ratio]],
                    fmt="o", color=palette.get(row["model"], "black"), capsize=3,
                    markerfacecolor=None if row.get("significant") else "white")
    ax.axvline(1.0, color="grey", lw=1)
    gates = [g for g in (report.settings.get("baseline") or {}).get("fail_on", [])
             if g.startswith("latency:")]
    for gate in gates:
        threshold = 1 + float(gate.split(":", 1)[1].rstrip("%")) / 100
        ax.axvline(threshold, color="#d62728", ls="--", lw=1, label=f"--fail-on {gate}")
    if gates:
        ax.legend(fontsize=6.5, loc="best")
    ax.set_yticks(range(len(chosen)), [label for label, _ in chosen], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("latency: this run / baseline (median ratio, 95% CI)", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    ax.grid(True, axis="x", alpha=0.3)
    run = (report.settings.get("baseline") or {}).get("run", "the baseline")
    description = (f"Latency against baseline run {run}: ratio of medians with its 95% "
                   "bootstrap interval (both runs' trials resampled); filled: significant "
                   "(the interval excludes 1), hollow: not.")
    return [finish_figure(fig, "baseline_ratios", description, report)]
