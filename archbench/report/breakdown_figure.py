"""The ``--breakdown`` figure: per row, where the time goes (token mixer, MLP, norms, the
architecture's time regions such as Swin's window line, the rest) as one stacked bar, and
where the MACs go (mixer, MLP, the rest) as a hatched bar beside it, in the same colours,
so a time share and its MAC share sit side by side. Drawn with :mod:`archbench.report.plots`'
headless figures and captions; importing this module imports neither matplotlib nor pandas.
"""

from __future__ import annotations

from typing import Any

from archbench.report.cells import is_number

#: One colour per line, the same in the time bar and the MAC bar (matplotlib's tab10:
#: blue mixer, orange MLP, green norm, purple time regions, grey the rest).
LINE_COLOURS = {"mixer": "#1f77b4", "mlp": "#ff7f0e", "norm": "#2ca02c", "other": "#c7c7c7"}
REGION_COLOURS = ["#9467bd", "#8c564b", "#e377c2", "#bcbd22"]
LABELS = {"mixer": "token mixer", "mlp": "MLP", "norm": "norm", "other": "other"}


def _number(value: Any) -> float | None:
    return float(value) if is_number(value) else None


def breakdown_rows(report: Any) -> list[tuple[str, dict, list[str]]]:
    """(label, row, its time-region lines) of every finished row with a breakdown; labels
    name the input and batch where the report has several."""
    chosen = [(row, details) for row, details in zip(report.rows, report.details)
              if row.get("status") == "ok" and _number(row.get("breakdown_total_ms"))]
    inputs = {row.get("input") for row, _ in chosen}
    batches = {row.get("batch_size") for row, _ in chosen}
    out = []
    for row, details in chosen:
        label = row["model"] + (f" {row['input']}" if len(inputs) > 1 else "")
        label += f", batch {row['batch_size']}" if len(batches) > 1 else ""
        regions = list((details.get("breakdown") or {}).get("lines", {}).get("regions", {}))
        out.append((label, row, regions))
    return out


def time_shares(row: dict, regions: list[str]) -> dict[str, float]:
    """Each line's share of the attributed time (the lines add up to it)."""
    parts = {line: _number(row.get(f"{line}_ms")) or 0.0
             for line in ["mixer", "mlp", "norm", *regions, "other"]}
    total = sum(parts.values())
    return {line: value / total for line, value in parts.items()} if total > 0 else {}


def mac_shares(row: dict) -> dict[str, float]:
    """Mixer, MLP and the rest of the model's MACs (norms are in the rest: fvcore counts
    them by operator, not by line); {} where the row has no count."""
    total = _number(row.get("gmacs"))
    if not total:
        return {}
    mixer = _number(row.get("mixer_gmacs")) or 0.0
    mlp = _number(row.get("mlp_gmacs")) or 0.0
    return {"mixer": mixer / total, "mlp": mlp / total, "other": 1 - (mixer + mlp) / total}


def _colour(line: str, regions: list[str]) -> str:
    if line in LINE_COLOURS:
        return LINE_COLOURS[line]
    return REGION_COLOURS[sorted(regions).index(line) % len(REGION_COLOURS)]


def _stack(ax: Any, y: float, shares: dict[str, float], regions: list[str],
           hatch: str | None) -> None:
    left = 0.0
    for line, share in shares.items():
        ax.barh(y, share, left=left, height=0.36, color=_colour(line, regions), hatch=hatch,
                edgecolor="white" if hatch is None else "#333333", lw=0.4)
        if share >= 0.08:
            ax.text(left + share / 2, y, f"{share:.0%}", ha="center", va="center", fontsize=6)
        left += share


def breakdown_figures(report: Any) -> list:
    """The stacked-bar figure, or ``[]`` without a row with a breakdown."""
    from matplotlib.patches import Patch

    from archbench.report.plots import finish_figure, subplots

    chosen = breakdown_rows(report)
    if not chosen:
        return []
    all_regions = sorted({line for _, _, regions in chosen for line in regions})
    fig, ax = subplots(figsize=(7.6, 0.75 * len(chosen) + 1.5))
    for i, (_, row, regions) in enumerate(chosen):
        _stack(ax, i - 0.2, time_shares(row, regions), all_regions, None)
        ax.text(1.01, i - 0.2, f"time, {row['breakdown_total_ms']:.3g} ms", va="center",
                fontsize=6.5)
        macs = mac_shares(row)
        if macs:
            _stack(ax, i + 0.2, macs, all_regions, "////")
            ax.text(1.01, i + 0.2, f"MACs, {row['gmacs']:.3g} G", va="center", fontsize=6.5)
    ax.set_yticks(range(len(chosen)), [label for label, _, _ in chosen], fontsize=7)
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_xlabel("share of the forward pass: time (plain) and MACs (hatched)", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    order = ["mixer", "mlp", "norm", *all_regions, "other"]
    ax.legend(handles=[Patch(color=_colour(line, all_regions), label=LABELS.get(line, line))
                       for line in order], fontsize=6.5, ncol=len(order), loc="lower center",
              bbox_to_anchor=(0.5, 1.0), frameon=False)
    cuda = any(_number(row.get("breakdown_kernel_ms")) for _, row, _ in chosen)
    what = ("kernel time of the work each line launched" if cuda else
            "CPU wall time inside each line's modules")
    description = (f"Where the time goes (--breakdown): {what}, from a profiled pass after "
                   "the timed trials (shares of the profiled pass; ms: per profiled "
                   "iteration), beside the fvcore MAC shares (norm MACs are in other).")
    return [finish_figure(fig, "breakdown_shares", description, report)]
