"""Figures of a report, for report.md and for a paper: every figure as PNG (report.md embeds
it) and, with ``--figure-format pdf|svg``, in that format beside it.

Each model or token mixer keeps one colour in every figure of a report (:func:`colours`;
the built-in mixers always the same one); latency is drawn with its 95% interval (error
bars, or a band along a curve); crossovers are marked and labelled with their interval;
axes say their units; and the run's settings (device, dtype, batch, threads, timing) are
printed under the figure, so a figure file carries its own caption. matplotlib is drawn
headless (the Agg backend, selected inside the functions); importing this module imports
neither matplotlib nor pandas.
"""

from __future__ import annotations

import io
import math
import textwrap
from dataclasses import dataclass, field
from typing import Any

from archbench.report.cells import is_number

#: matplotlib's tab10 then the light half of tab20: distinct in print and on screen.
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896",
           "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5"]
#: The built-in token mixers' colours, the same in every report.
FIXED_COLOURS = {"msa": PALETTE[0], "w-msa": PALETTE[1], "sw-msa": PALETTE[2],
                 "gnconv": PALETTE[3], "gnconv-gf": PALETTE[4]}
#: Line styles for a sweep's batch sizes (colour is the model).
STYLES = ["-", "--", ":", "-."]


@dataclass
class Figure:
    """One figure: its file stem, what it shows, and its files (``stem.png`` first)."""

    stem: str
    description: str
    files: dict[str, bytes] = field(default_factory=dict)


def unavailable() -> str | None:
    """Why figures cannot be drawn here (matplotlib missing from a broken install), or None."""
    try:
        import matplotlib
    except ImportError as exc:
        return f"matplotlib cannot be imported ({exc})"
    if matplotlib is None:  # sys.modules["matplotlib"] = None in tests
        return "matplotlib cannot be imported"
    return None


def subplots(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """A figure drawn by Agg and its axes (``Figure.subplots``'s arguments), made without
    pyplot: no global figure list to close, no GUI backend to pick, and the half second that
    importing pyplot costs is not paid (Agg still writes PDF and SVG through ``savefig``)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=kwargs.pop("figsize", None))
    FigureCanvasAgg(fig)
    return fig, fig.subplots(*args, **kwargs)


def colours(names: list[str]) -> dict[str, str]:
    """A colour per name: the built-in mixers' fixed ones, then the palette in order of first
    appearance (a report builds it once, from all its rows, for all its figures)."""
    mapping = {n: FIXED_COLOURS[n] for n in names if n in FIXED_COLOURS}
    free = [c for c in PALETTE if c not in mapping.values()]
    for i, name in enumerate(n for n in dict.fromkeys(names) if n not in mapping):
        mapping[name] = free[i % len(free)]
    return mapping


def finish_figure(fig: Any, stem: str, description: str, report: Any) -> Figure:
    """The settings under the figure, then its files: PNG, and the report's format."""
    caption = textwrap.fill(f"{description} {report.caption()}",
                            max(60, int(fig.get_figwidth() * 20)))
    fig.tight_layout()
    below = fig.get_tightbbox(fig.canvas.get_renderer()).y0 / fig.get_figheight()
    fig.text(0.01, below - 0.02, caption, fontsize=6.5, ha="left", va="top", color="#333333")
    files = {}
    for fmt in dict.fromkeys(["png", report.figure_format]):
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, dpi=150, bbox_inches="tight")
        files[f"{stem}.{fmt}"] = buffer.getvalue()
    return Figure(stem, description, files)


def figures(report: Any) -> list[Figure]:
    """The report's figures; ``[]`` without anything to plot or without matplotlib (see
    :func:`unavailable`)."""
    if unavailable():
        return []
    draw = {"mixers": mixer_figures, "sweep": sweep_figures}.get(report.kind, compare_figures)
    from archbench.report.baseline_figure import baseline_figures
    from archbench.report.breakdown_figure import breakdown_figures
    from archbench.report.frontier import frontier_figures

    return (draw(report) + breakdown_figures(report) + baseline_figures(report)
            + frontier_figures(report))


def _ci(row: dict) -> tuple[float, float] | None:
    low, high = row.get("latency_ms_ci95_low"), row.get("latency_ms_ci95_high")
    return (low, high) if is_number(low) and is_number(high) else None


# -- compare (and merged reports) ------------------------------------------------------


def _compare_rows(report: Any) -> list[tuple[str, dict]]:
    """One (label, row) per model and input: its smallest batch; a merged report's labels
    name the run."""
    runs = list(dict.fromkeys(r.get("run") for r in report.rows if r.get("run")))
    inputs = {r.get("input") for r in report.rows}
    chosen: dict[str, dict] = {}
    for row in report.rows:
        counted = is_number(row.get("gmacs")) or is_number(row.get("params_m"))
        if row.get("status") != "ok" or not counted:
            continue
        label = row["model"] + (f" {row['input']}" if len(inputs) > 1 else "")
        if len(runs) > 1:
            label += f" [run {runs.index(row['run']) + 1}]"
        if label not in chosen or (row.get("batch_size") or 0) < (chosen[label].get(
                "batch_size") or 0):
            chosen[label] = row
    return list(chosen.items())


def _bars(ax: Any, labels: list[str], values: list, colors: list[str], title: str,
          xerr: list | None = None) -> None:
    ax.barh(labels, [v if is_number(v) else math.nan for v in values], color=colors, xerr=xerr,
            error_kw={"ecolor": "black", "capsize": 3, "lw": 1})
    ax.set_xlabel(title, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.locator_params(axis="x", nbins=4)
    ax.grid(True, axis="x", alpha=0.3)


def _mixer_panel(ax: Any, labels: list[str], rows: list[dict], colors: list[str]) -> None:
    """The token mixer as built (formula) next to the same layers as global MSA."""
    from matplotlib.patches import Patch

    y = list(range(len(labels)))
    built = [r.get("mixer_gmacs_formula") if is_number(r.get("mixer_gmacs_formula")) else math.nan
             for r in rows]
    as_msa = [r.get("mixer_gmacs_as_msa") if is_number(r.get("mixer_gmacs_as_msa")) else math.nan
              for r in rows]
    ax.barh([i - 0.2 for i in y], built, height=0.4, color=colors)
    ax.barh([i + 0.2 for i in y], as_msa, height=0.4, color=colors, alpha=0.35, hatch="//",
            edgecolor="black", lw=0.5)
    ax.set_yticks(y, labels)
    ax.set_xlabel("token-mixer GMACs per sample", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.locator_params(axis="x", nbins=4)
    ax.legend(handles=[Patch(color="grey", label="as built (formula)"),
                       Patch(facecolor="lightgrey", hatch="//", edgecolor="black", lw=0.5,
                             label="as global MSA (Swin eq. 1)")], fontsize=6, loc="best")
    ax.grid(True, axis="x", alpha=0.3)


def compare_figures(report: Any) -> list[Figure]:
    """Cost next to latency, one bar per model: params, GMACs, the token mixer against
    global MSA (where the columns exist), latency median with its 95% interval (where
    timed); and latency against GMACs with the Pareto front (two or more timed models)."""
    chosen = _compare_rows(report)
    if not chosen:
        return []
    labels, rows = [c[0] for c in chosen], [c[1] for c in chosen]
    palette = colours([r["model"] for r in report.rows])
    colors = [palette[r["model"]] for r in rows]
    timed = [r for r in rows if is_number(r.get("latency_ms_median"))]
    panels = [p for p, present in (
        ("params_m", any(is_number(r.get("params_m")) for r in rows)),
        ("gmacs", any(is_number(r.get("gmacs")) for r in rows)),
        ("mixer", any(is_number(r.get("mixer_gmacs_as_msa")) for r in rows)),
        ("latency", bool(timed)),
    ) if present]
    fig, axes = subplots(1, len(panels), figsize=(3.0 * len(panels) + 1.5,
                                                  0.45 * len(labels) + 1.6), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        if panel == "mixer":
            _mixer_panel(ax, labels, rows, colors)
        elif panel == "latency":
            medians = [r.get("latency_ms_median") if is_number(r.get("latency_ms_median"))
                       else math.nan for r in rows]
            cis = [_ci(r) or (m, m) for r, m in zip(rows, medians)]
            err = [[m - c[0] for m, c in zip(medians, cis)],
                   [c[1] - m for m, c in zip(medians, cis)]]
            _bars(ax, labels, medians, colors, "latency (ms): median, 95% CI", err)
        else:
            _bars(ax, labels, [r.get(panel) for r in rows], colors,
                  {"params_m": "parameters (M)", "gmacs": "GMACs per sample"}[panel])
        ax.invert_yaxis()
    for ax in axes[0][1:]:
        ax.set_yticklabels([])
    what = ("Cost next to latency (smallest batch per model)" if timed else
            "Cost per model (latency not measured)")
    out = [finish_figure(fig, "compare_bars", what + ".", report)]
    pairs = [(lb, r, c) for lb, r, c in zip(labels, rows, colors)
             if is_number(r.get("latency_ms_median")) and is_number(r.get("gmacs"))]
    if len(pairs) >= 2:
        out.append(_pareto(report, *map(list, zip(*pairs))))
    return out


def _pareto(report: Any, labels: list[str], rows: list[dict], colors: list[str]) -> Figure:
    fig, ax = subplots(figsize=(6.0, 4.2))
    for label, row, color in zip(labels, rows, colors):
        ci = _ci(row) or (row["latency_ms_median"],) * 2
        ax.errorbar([row["gmacs"]], [row["latency_ms_median"]], fmt="o", color=color,
                    yerr=[[row["latency_ms_median"] - ci[0]], [ci[1] - row["latency_ms_median"]]],
                    capsize=3, label=label)
    points = sorted((r["gmacs"], r["latency_ms_median"]) for r in rows)
    front, best = [], math.inf  # Pareto front: no other model is cheaper and faster
    for x, y in points:
        if y < best:
            front.append((x, y))
            best = y
    ax.step(*zip(*front), where="post", color="grey", ls="--", lw=1, label="Pareto front")
    ax.set(xlabel="GMACs per sample (fvcore)", ylabel="latency (ms): median, 95% CI")
    ax.legend(fontsize=7)
    ax.grid(True, alpha=0.3)
    return finish_figure(fig, "compare_pareto", "Latency against GMACs (smallest batch per "
                   "model); error bars: 95% bootstrap intervals.", report)


# -- curves against input size (mixers, sweep) -----------------------------------------


def _curves(rows: list[dict], column: str, name: Any, x: Any) -> dict[str, list[tuple]]:
    """{series name: sorted (x, value, low, high)} of the rows with a positive value."""
    series: dict[str, list[tuple]] = {}
    for row in rows:
        value = row.get(column)
        if is_number(value) and value > 0 and x(row):
            ci = _ci(row) if column == "latency_ms_median" else None
            series.setdefault(name(row), []).append((x(row), value, *(ci or (None, None))))
    return {n: sorted(points) for n, points in series.items()}


def _plot_curves(ax: Any, series: dict[str, list[tuple]], colour: Any, style: Any) -> None:
    for name, points in series.items():
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        ax.plot(xs, ys, style(name), marker="o", ms=3, color=colour(name), label=name)
        if all(p[2] is not None for p in points):
            ax.fill_between(xs, [p[2] for p in points], [p[3] for p in points],
                            color=colour(name), alpha=0.18, lw=0)


def _mark_crossovers(ax: Any, marks: list[tuple[str, str, float, Any, Any]]) -> None:
    """A dotted line at each crossover, its interval shaded, and a label."""
    for i, (label, color, x, low, high) in enumerate(marks):
        if low is not None and high is not None:
            ax.axvspan(low, high, color=color, alpha=0.12, lw=0)
        ax.axvline(x, color=color, ls=":", lw=1)
        ax.annotate(label, (x, 0.98 - 0.3 * (i // 2 % 3)), xycoords=("data", "axes fraction"),
                    rotation=90, fontsize=6.5, va="top", ha="left" if i % 2 else "right",
                    color=color)


def _axes(ax: Any, xlabel: str, ylabel: str) -> None:
    from matplotlib.ticker import NullFormatter

    ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel=ylabel)
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)


def _crossover_table(report: Any) -> list[dict]:
    return [r for title, table in report.tables.items() if title.startswith("Crossover")
            for r in table if r.get("crossover_size")]


def mixer_figures(report: Any) -> list[Figure]:
    """MACs (formula dashed, fvcore's count as dots), latency with its 95% band and the
    crossovers against MSA, and memory, against tokens, log-log, one line per mixer."""
    rows = [r for r in report.rows if r.get("tokens")]
    if not rows:
        return []
    from matplotlib.lines import Line2D

    palette = colours([r["model"] for r in report.rows])
    xlabel = "tokens N = h x w"
    fig, ax = subplots(figsize=(6.4, 4.4))
    formula = _curves(rows, "macs_formula", lambda r: r["model"], lambda r: r["tokens"])
    counted = _curves(rows, "macs_counted", lambda r: r["model"], lambda r: r["tokens"])
    for name, points in formula.items():
        ax.plot([p[0] for p in points], [p[1] for p in points], "--", color=palette[name])
    for name, points in counted.items():
        ax.plot([p[0] for p in points], [p[1] for p in points], "o", ms=3, color=palette[name])
    handles = [Line2D([], [], color=palette[n], label=n) for n in {**formula, **counted}]
    handles += [Line2D([], [], color="grey", ls="--", label="formula"),
                Line2D([], [], color="grey", ls="", marker="o", ms=3, label="fvcore count")]
    ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel="MACs per sample")
    ax.legend(handles=handles, fontsize=7, ncol=2)
    ax.grid(True, which="both", alpha=0.3)
    out = [finish_figure(fig, "mixers_macs", "Token-mixer MACs against tokens: analytic formula "
                   "(dashed) and fvcore's count (dots).", report)]
    ok = [r for r in rows if r.get("status") == "ok"]
    marks = [(f"{r['mixer']} = {r['against']} at h = w = {r['crossover_size']:.3g}",
              palette.get(r["mixer"], "black"), r["crossover_size"] ** 2,
              _sq(r.get("crossover_ci95_low")), _sq(r.get("crossover_ci95_high")))
             for r in _crossover_table(report) if "mixer" in r]
    for column, ylabel, stem, what in (
        ("latency_ms_median", "latency (ms): median, 95% CI band", "mixers_latency",
         "Token-mixer latency against tokens; dotted: crossover against MSA, shaded: its "
         "95% bootstrap interval."),
        ("memory_mb", "peak memory (MB)", "mixers_memory", "Token-mixer memory against "
         "tokens."),
    ):
        series = _curves(ok, column, lambda r: r["model"], lambda r: r["tokens"])
        if series:
            fig, ax = subplots(figsize=(6.4, 4.4))
            _plot_curves(ax, series, palette.get, lambda n: "-")
            if column == "latency_ms_median":
                _mark_crossovers(ax, marks)
            _axes(ax, xlabel, ylabel)
            out.append(finish_figure(fig, stem, what, report))
    return out


def _sq(value: Any) -> float | None:
    return value**2 if is_number(value) else None


def sweep_figures(report: Any) -> list[Figure]:
    """GMACs, latency (with its 95% band and the crossovers against the first
    architecture) and memory of whole models against input size, log-log: one colour per
    model, one line style per batch size."""
    from archbench.report.tables import tokens_of

    rows = [r for r in report.rows if r.get("status") == "ok" and tokens_of(r)]
    if not rows:
        return []
    palette = colours([r["model"] for r in report.rows])
    batches = list(dict.fromkeys(r.get("batch_size") for r in rows))

    def name(row: dict) -> str:
        return row["model"] + (f", batch {row['batch_size']}" if len(batches) > 1 else "")

    models = {name(r): r["model"] for r in rows}
    style = {name(r): STYLES[batches.index(r.get("batch_size")) % len(STYLES)] for r in rows}
    tokens = {r["model"]: (lambda s: s) if r.get("seq_len") else (lambda s: s * s) for r in rows}
    marks = [(f"{r['model']} = {r['against']} at {r['crossover_size']:.3g}",
              palette.get(r["model"], "black"), tokens[r["model"]](r["crossover_size"]),
              *(tokens[r["model"]](v) if is_number(v) else None
                for v in (r.get("crossover_ci95_low"), r.get("crossover_ci95_high"))))
             for r in _crossover_table(report) if r.get("model") in tokens]
    out = []
    for column, ylabel, stem in (
        ("gmacs", "GMACs per sample (fvcore)", "sweep_gmacs"),
        ("latency_ms_median", "latency (ms): median, 95% CI band", "sweep_latency"),
        ("memory_mb", "peak memory (MB)", "sweep_memory"),
    ):
        series = _curves(rows, column, name, tokens_of)
        if not series:
            continue
        fig, ax = subplots(figsize=(6.4, 4.4))
        _plot_curves(ax, series, lambda n: palette[models[n]], style.get)
        if column == "latency_ms_median":
            _mark_crossovers(ax, marks)
        _axes(ax, "input size: image pixels h x w, or sequence length", ylabel)
        out.append(finish_figure(fig, stem, f"{ylabel.split(':')[0].capitalize()} against input "
                           "size.", report))
    return out
