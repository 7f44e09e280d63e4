"""Figures for report.md, as PNG bytes. matplotlib is optional (the ``plot`` extra): without
it every function returns ``{}`` and the tables are written as usual.

The figures are drawn headless (the Agg backend, selected inside the functions).
"""

from __future__ import annotations

import io
import math
from typing import Any

#: Report kinds with figures, and the functions that draw them.
_MIXER_KINDS = ("mixers",)
_COMPARE_KINDS = ("compare",)
_SWEEP_KINDS = ("sweep",)


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        return None
    if matplotlib is None:  # sys.modules["matplotlib"] = None in tests
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buffer.getvalue()


def figures(report: Any) -> dict[str, bytes]:
    """``{filename: png}`` for a report, ``{}`` without matplotlib or without anything to
    plot."""
    if report.kind in _MIXER_KINDS:
        return mixer_figures(report)
    if report.kind in _COMPARE_KINDS:
        return compare_figures(report)
    if report.kind in _SWEEP_KINDS:
        return sweep_figures(report)
    return {}


def _series(rows: list[dict], column: str) -> dict[str, list[tuple[float, float]]]:
    by_mixer: dict[str, list[tuple[float, float]]] = {}
    for row in rows:
        value = row.get(column)
        if value is None or (isinstance(value, float) and math.isnan(value)) or value <= 0:
            continue
        by_mixer.setdefault(row["model"], []).append((row["tokens"], value))
    return {name: sorted(points) for name, points in by_mixer.items()}


def _crossover_tokens(report: Any) -> list[tuple[str, float]]:
    marks = []
    for title, table in report.tables.items():
        if title.startswith("Crossover"):
            marks += [
                (r["mixer"], r["crossover_tokens"]) for r in table if r.get("crossover_tokens")
            ]
    return marks


def mixer_figures(report: Any) -> dict[str, bytes]:
    """MACs (formula dashed, counted solid), latency and memory against tokens, log-log, one
    line per mixer; the latency crossovers against MSA marked."""
    plt = _pyplot()
    rows = [r for r in report.rows if r.get("tokens")]
    if plt is None or not rows:
        return {}
    out: dict[str, bytes] = {}
    colors = {name: f"C{i}" for i, name in enumerate(dict.fromkeys(r["model"] for r in rows))}

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for name, points in _series(rows, "macs_formula").items():
        ax.plot(*zip(*points), "--", color=colors[name], label=f"{name} (formula)")
    for name, points in _series(rows, "macs_counted").items():
        ax.plot(*zip(*points), "-o", color=colors[name], ms=3, label=f"{name} (fvcore)")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="tokens N = h·w",
        ylabel="MACs per sample",
        title="Token-mixer MACs against tokens",
    )
    ax.legend(fontsize=7, ncol=2)
    ax.grid(True, which="both", alpha=0.3)
    out["mixers_macs.png"] = _png(fig)

    for column, label, filename, marks in (
        ("latency_ms_median", "median latency (ms)", "mixers_latency.png", True),
        ("memory_mb", "peak memory (MB)", "mixers_memory.png", False),
    ):
        series = _series([r for r in rows if r.get("status") == "ok"], column)
        if not series:
            continue
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        for name, points in series.items():
            ax.plot(*zip(*points), "-o", color=colors[name], ms=3, label=name)
        if marks:
            for name, tokens in _crossover_tokens(report):
                ax.axvline(tokens, color=colors.get(name, "k"), ls=":", lw=1)
                ax.annotate(
                    f"{name} < msa",
                    (tokens, ax.get_ylim()[0]),
                    rotation=90,
                    fontsize=7,
                    va="bottom",
                    ha="right",
                )
        ax.set(
            xscale="log",
            yscale="log",
            xlabel="tokens N = h·w",
            ylabel=label,
            title=f"Token-mixer {label} against tokens",
        )
        ax.legend(fontsize=7)
        ax.grid(True, which="both", alpha=0.3)
        out[filename] = _png(fig)
    return out


def compare_figures(report: Any) -> dict[str, bytes]:
    """Bars of params, GMACs and latency per model (batch 1 rows, or the first batch
    size), and the Pareto plot of latency against GMACs; none for a single model."""
    rows = [r for r in report.rows if r.get("status") == "ok" and r.get("gmacs")]
    if len({r["model"] for r in rows}) < 2:
        return {}  # nothing to compare; and matplotlib stays unimported
    plt = _pyplot()
    if plt is None:
        return {}
    seen: dict[str, dict] = {}
    for row in rows:  # one row per model: its smallest batch
        key = f"{row['model']} {row['input']}"
        if key not in seen or (row.get("batch_size") or 0) < (seen[key].get("batch_size") or 0):
            seen[key] = row
    labels, chosen = list(seen), list(seen.values())
    metrics = [
        (c, t)
        for c, t in (
            ("params_m", "params (M)"),
            ("gmacs", "GMACs"),
            ("latency_ms_median", "latency (ms)"),
        )
        if all(r.get(c) is not None for r in chosen)
    ]
    out: dict[str, bytes] = {}
    fig, axes = plt.subplots(
        1, len(metrics), figsize=(3.2 * len(metrics), 0.4 * len(labels) + 2), squeeze=False
    )
    for ax, (column, title) in zip(axes[0], metrics):
        ax.barh(labels, [r[column] for r in chosen], color=[f"C{i}" for i in range(len(labels))])
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.invert_yaxis()
    for ax in axes[0][1:]:
        ax.set_yticklabels([])
    out["compare_bars.png"] = _png(fig)
    timed = [(label, r) for label, r in zip(labels, chosen) if r.get("latency_ms_median")]
    if timed:
        fig, ax = plt.subplots(figsize=(6.0, 4.2))
        points = sorted((r["gmacs"], r["latency_ms_median"], label) for label, r in timed)
        for i, (x, y, label) in enumerate(points):
            ax.scatter([x], [y], color=f"C{i}")
            ax.annotate(label, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        front, best = [], math.inf  # Pareto front: no other model is cheaper and faster
        for x, y, _ in points:
            if y < best:
                front.append((x, y))
                best = y
        ax.step(*zip(*front), where="post", color="grey", ls="--", lw=1, label="Pareto front")
        ax.set(
            xlabel="GMACs (fvcore, per sample)",
            ylabel="median latency (ms)",
            title="Latency against GMACs",
        )
        ax.legend(fontsize=7)
        ax.grid(True, alpha=0.3)
        out["compare_pareto.png"] = _png(fig)
    return out


def sweep_figures(report: Any) -> dict[str, bytes]:
    """GMACs, latency and memory of whole models against input tokens, log-log, one line
    per model (and batch size): the curves whose slopes the sweep's table fits."""
    from archbench.report.tables import tokens_of

    plt = _pyplot()
    rows = [{**r, "tokens": tokens_of(r),
             "model": r["model"] + (f" b{r['batch_size']}" if r.get("batch_size") else "")}
            for r in report.rows if r.get("status") == "ok" and tokens_of(r)]
    if plt is None or not rows:
        return {}
    out: dict[str, bytes] = {}
    for column, label, filename in (
        ("gmacs", "GMACs per sample", "sweep_gmacs.png"),
        ("latency_ms_median", "median latency (ms)", "sweep_latency.png"),
        ("memory_mb", "peak memory (MB)", "sweep_memory.png"),
    ):
        series = _series(rows, column)
        if not series:
            continue
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        for i, (name, points) in enumerate(series.items()):
            ax.plot(*zip(*points), "-o", color=f"C{i}", ms=3, label=name)
        ax.set(xscale="log", yscale="log", ylabel=label, title=f"{label} against input size",
               xlabel="tokens (image pixels, or sequence length)")
        ax.legend(fontsize=7)
        ax.grid(True, which="both", alpha=0.3)
        out[filename] = _png(fig)
    return out
