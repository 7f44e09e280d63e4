"""The accuracy frontier: which models are worth their cost. For every row with a top-1
(measured with ``--data`` where there is one, the published figure otherwise, and marked
as such) and a cost (median latency; GMACs), a row is **dominated** when another row of the
same group is at least as accurate and at least as cheap (better in one of the two); the
rest are the Pareto frontier. Groups: one per device (its name), dtype, mode and batch
size, so latencies are only weighed against latencies of the same machine; a merged
report (``archbench report``) gets one frontier per device.

Medians are compared as they are: a dominance within the latency intervals is one a
rerun may undo (``latency_ms_ci95`` says how far to trust it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from archbench.report.cells import is_number
from archbench.report.report import Report

#: The frontier table's title.
FRONTIER_TITLE = (
    "Accuracy frontier: top-1 against latency and against GMACs, per device (measured top-1 "
    "where there is one, else published; dominated: another row is at least as accurate and "
    "at least as cheap, by medians)")
#: What a cost axis is called, by column.
AXES = {"latency_ms_median": "latency (ms, median)", "gmacs": "GMACs per sample (fvcore)"}


@dataclass(frozen=True)
class Point:
    """One row on the accuracy/cost plane."""

    label: str
    cost: float
    accuracy: float
    measured: bool


def accuracy_of(row: dict[str, Any]) -> tuple[float, bool] | None:
    """(top-1 %, measured?) of a row: measured where there is one, else published."""
    if is_number(row.get("top1")):
        return float(row["top1"]), True
    if is_number(row.get("top1_published")):
        return float(row["top1_published"]), False
    return None


def dominates(a: Point, b: Point) -> bool:
    return (a.cost <= b.cost and a.accuracy >= b.accuracy
            and (a.cost < b.cost or a.accuracy > b.accuracy))


def pareto(points: list[Point]) -> list[int | None]:
    """Per point: None on the frontier, else the index of the frontier point that
    dominates it at the lowest cost (the most accurate of those, on a tie)."""
    front = [i for i, p in enumerate(points) if not any(dominates(q, p) for q in points)]
    out: list[int | None] = []
    for i, p in enumerate(points):
        if i in front:
            out.append(None)
            continue
        by = [j for j in front if dominates(points[j], p)]
        out.append(min(by, key=lambda j: (points[j].cost, -points[j].accuracy)))
    return out


def _device(row: dict[str, Any], details: dict[str, Any]) -> str:
    from archbench.report.baseline import device_name_of

    return str(device_name_of({**row, "details": details}, {}) or row.get("device") or "?")


def groups(report: Report) -> dict[tuple, list[tuple[str, dict[str, Any]]]]:
    """(device, dtype, mode, batch) → [(label, row)] of the ok rows with a top-1."""
    found: dict[tuple, list[tuple[dict, dict]]] = {}
    for row, details in zip(report.rows, report.details):
        if row.get("status") == "ok" and accuracy_of(row) is not None:
            key = (_device(row, details), row.get("dtype"), row.get("mode"),
                   row.get("batch_size"))
            found.setdefault(key, []).append((row, details))
    labelled = {}
    for key, rows in found.items():
        inputs = {r.get("input") for r, _ in rows}
        runs = list(dict.fromkeys(r.get("run") for r, _ in rows if r.get("run")))
        labelled[key] = [(r["model"] + (f" {r.get('input')}" if len(inputs) > 1 else "")
                          + (f" [run {runs.index(r['run']) + 1}]" if len(runs) > 1 else ""), r)
                         for r, _ in rows]
    return labelled


def points(rows: list[tuple[str, dict[str, Any]]], axis: str) -> list[Point]:
    out = []
    for label, row in rows:
        accuracy = accuracy_of(row)
        if accuracy is not None and is_number(row.get(axis)) and row[axis] > 0:
            out.append(Point(label, float(row[axis]), accuracy[0], accuracy[1]))
    return out


def _verdicts(rows: list[tuple[str, dict[str, Any]]], axis: str) -> dict[str, str]:
    pts = points(rows, axis)
    return {p.label: "on the frontier" if d is None else f"dominated by {pts[d].label}"
            for p, d in zip(pts, pareto(pts))}


def frontier_rows(report: Report) -> list[dict[str, Any]]:
    """One table row per model and group with at least two models that have a top-1."""
    table = []
    for (device, dtype, _, batch), rows in groups(report).items():
        if len(rows) < 2:
            continue
        by_axis = {axis: _verdicts(rows, axis) for axis in AXES}
        for label, row in rows:
            accuracy, measured = accuracy_of(row)
            pretrain = row.get("top1_pretrain")
            table.append({
                "device": device, "dtype": dtype, "batch_size": batch, "model": label,
                "top1": accuracy,
                "top1_from": "measured" if measured else "published" + (
                    f" ({pretrain})" if pretrain and pretrain != "ImageNet-1k" else ""),
                "latency_ms_median": row.get("latency_ms_median"), "gmacs": row.get("gmacs"),
                "vs_latency": by_axis["latency_ms_median"].get(label),
                "vs_gmacs": by_axis["gmacs"].get(label),
            })
    return table


def frontier_tables(report: Report) -> dict[str, list[dict[str, Any]]]:
    """The frontier table by its title, or nothing when no group has two models with a
    top-1 (the session's and ``archbench report``'s derived tables)."""
    table = frontier_rows(report)
    return {FRONTIER_TITLE: table} if table else {}


def _panel(ax: Any, pts: list[Point], palette: dict[str, str], names: dict[str, str],
           axis: str) -> None:
    low, high = min(p.cost for p in pts), max(p.cost for p in pts)
    for p in pts:
        colour = palette.get(names[p.label], "black")
        ax.scatter([p.cost], [p.accuracy], s=36, marker="o" if p.measured else "s",
                   facecolors=colour if p.measured else "none", edgecolors=colour, lw=1.2)
        right = high > low and (p.cost - low) / (high - low) > 0.6  # label towards the middle
        ax.annotate(p.label, (p.cost, p.accuracy), xytext=(-4 if right else 4, 3),
                    textcoords="offset points", ha="right" if right else "left",
                    fontsize=6.5, color=colour)
    front = sorted((p for p, d in zip(pts, pareto(pts)) if d is None), key=lambda p: p.cost)
    if len(front) > 1:
        ax.step([p.cost for p in front], [p.accuracy for p in front], where="post",
                color="grey", ls="--", lw=1)
    costs = [p.cost for p in pts]
    if max(costs) > 8 * min(costs):  # a wide range: log scale, plain tick labels
        from matplotlib.ticker import FuncFormatter, NullFormatter

        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.margins(x=0.18, y=0.12)
    # published figures are ImageNet-1k's; a measured one is on whatever --data held
    ylabel = ("top-1 (%): measured on --data, or published (ImageNet-1k)"
              if any(p.measured for p in pts) else "ImageNet-1k top-1 (%), published")
    ax.set(xlabel=AXES[axis], ylabel=ylabel)
    ax.grid(True, which="both", alpha=0.3)
    ax.tick_params(labelsize=7)


def frontier_figures(report: Report) -> list[Any]:
    """Per group with two or more models that have a top-1: top-1 against latency and
    against GMACs, measured top-1 as filled circles and published as open squares, the
    frontier dashed."""
    from matplotlib.lines import Line2D

    from archbench.report.plots import colours, finish_figure, subplots

    palette = colours([r["model"] for r in report.rows])
    out = []
    drawn = [(key, rows) for key, rows in groups(report).items() if len(rows) >= 2]
    for n, ((device, dtype, _, batch), rows) in enumerate(drawn):
        names = {label: row["model"] for label, row in rows}
        axes = [a for a in AXES if len(points(rows, a)) >= 2]
        if not axes:
            continue
        fig, panels = subplots(1, len(axes), figsize=(5.2 * len(axes), 4.2), squeeze=False)
        for ax, axis in zip(panels[0], axes):
            _panel(ax, points(rows, axis), palette, names, axis)
        panels[0][0].legend(handles=[
            Line2D([], [], ls="", marker="o", color="grey", label="measured top-1"),
            Line2D([], [], ls="", marker="s", mfc="none", color="grey", label="published top-1"),
            Line2D([], [], ls="--", color="grey", label="frontier")], fontsize=7)
        stem = "frontier" if len(drawn) == 1 else f"frontier_{n + 1}"
        setting = ", ".join(str(v) for v in (dtype, f"batch {batch}" if batch else None) if v)
        what = f"Accuracy against cost on {device} ({setting}); dashed: the Pareto frontier."

        out.append(finish_figure(fig, stem, what, report))
    return out
