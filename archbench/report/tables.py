"""Tables derived from a run's rows: latency ratios with confidence intervals (inside each
comparison group; a sweep's per size against its first architecture), fitted log-log
scaling slopes against input size, the token mixers' cost table and their crossover
against global MSA, and a sweep's whole-model crossover (both with bootstrap intervals,
:mod:`archbench.report.crossover`). The session asks for them by name
(:data:`DERIVED`) when a run ends."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from archbench.core.mixers import REFERENCE_MIXER
from archbench.core.stats import ratio_ci
from archbench.report.crossover import crossover, measured_crossover
from archbench.report.frontier import frontier_tables
from archbench.report.report import Report

__all__ = ["DERIVED", "crossover", "fit_slope", "latency_ratios", "mixer_tables",
           "scaling_slopes", "sweep_crossovers", "sweep_ratios", "tokens_of"]


def _timed(report: Report) -> list[tuple[dict[str, Any], list, Any]]:
    """(row, its trials, its comparison group) for every timed row."""
    out = []
    for row, details in zip(report.rows, report.details):
        trials = details.get("latency_samples_ms")
        if row.get("status") == "ok" and trials and row.get("latency_ms_median"):
            out.append((row, trials, details.get("group")))
    return out


def _ratio(row: dict[str, Any], trials: list, base: dict[str, Any], reference: list
           ) -> dict[str, Any]:
    low, high = ratio_ci(trials, reference)
    return {"latency_ratio": row["latency_ms_median"] / base["latency_ms_median"],
            "ci95_low": low, "ci95_high": high, "significant": not (low <= 1.0 <= high)}


def latency_ratios(report: Report) -> list[dict[str, Any]]:
    """Each timed row against the first row of its comparison group (the rows whose trials
    were interleaved) with the same batch size, device, dtype and mode: the ratio of median
    latencies with a bootstrap 95% interval; ``significant`` is False where the interval
    contains 1. Rows of different groups are never compared. A sweep compares each
    architecture against the first one at the same size (:func:`sweep_ratios`)."""
    if report.kind == "sweep":
        return sweep_ratios(report)
    baselines: dict[tuple, tuple[dict, list]] = {}
    table = []
    for row, trials, group in _timed(report):
        key = (group, row.get("batch_size"), row.get("device"), row.get("dtype"),
               row.get("mode"))
        base, reference = baselines.setdefault(key, (row, trials))
        if base is not row:
            table.append({"model": row["model"], "input": row["input"],
                          "batch_size": row["batch_size"], "against": base["model"],
                          **_ratio(row, trials, base, reference)})
    return table


def input_kind(row: dict[str, Any]) -> str:
    return "tokens" if row.get("seq_len") else "image"


def first_models(report: Report) -> dict[str, str]:
    """The first architecture asked for, per input kind (image, tokens): a sweep's baseline.
    Taken from every row, failed or not, so that a baseline that failed is never replaced
    silently by the next model."""
    bases: dict[str, str] = {}
    for row in report.rows:
        bases.setdefault(input_kind(row), row["model"])
    return bases


def _setting(row: dict[str, Any]) -> tuple:
    return row.get("batch_size"), row.get("device"), row.get("dtype"), row.get("mode")


def sweep_ratios(report: Report) -> list[dict[str, Any]]:
    """Each architecture against the first architecture (of its input kind) at the same
    input size, batch size, device, dtype and mode, timed in the same comparison group; a
    size where the baseline has no timing gets a note and no ratio."""
    bases = first_models(report)
    timed = {(row["model"], row["input"], *_setting(row)): (row, trials, group)
             for row, trials, group in _timed(report)}
    table = []
    for (model, size, *setting), (row, trials, group) in timed.items():
        base = bases[input_kind(row)]
        if model == base:
            continue
        entry: dict[str, Any] = {"model": model, "input": size,
                                 "batch_size": row.get("batch_size"), "against": base}
        found = timed.get((base, size, *setting))
        if found is None or found[2] != group:
            entry["note"] = f"{base} has no timing at {size} in the same group"
        else:
            entry.update(_ratio(row, trials, found[0], found[1]))
        table.append(entry)
    return table


def sweep_crossovers(report: Report) -> list[dict[str, Any]]:
    """Per architecture against the sweep's first one, with the same batch size, device,
    dtype and mode: the input size where its latency crosses the baseline's, with a 95%
    bootstrap interval and the measured sizes that bracket it (see
    :mod:`archbench.report.crossover`)."""
    bases = first_models(report)
    series: dict[tuple, dict[int, list]] = {}
    for row, trials, _ in _timed(report):
        size = row.get("seq_len") or row.get("img_size")
        if size:
            series.setdefault((row["model"], *_setting(row)), {})[size] = trials
    table = []
    for (model, *setting), points in series.items():
        base = bases[input_kind(next(r for r in report.rows if r["model"] == model))]
        reference = series.get((base, *setting), {})
        sizes = sorted(set(points) & set(reference))
        if model == base or len(sizes) < 2:
            continue
        table.append({"model": model, "against": base, "batch_size": setting[0],
                      **measured_crossover(sizes, [points[s] for s in sizes],
                                           [reference[s] for s in sizes], either_way=True)})
    return table


def tokens_of(row: dict[str, Any]) -> float | None:
    """Input size as a token count: pixels for images (∝ patch tokens), length for sequences."""
    if row.get("seq_len"):
        return float(row["seq_len"])
    if row.get("img_size"):
        return float(row["img_size"]) ** 2
    return None


def fit_slope(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares slope of log(y) against log(x); None with fewer than two points."""
    points = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if x and y and y > 0]
    if len({p[0] for p in points}) < 2:
        return None
    mx = sum(p[0] for p in points) / len(points)
    my = sum(p[1] for p in points) / len(points)
    sxx = sum((p[0] - mx) ** 2 for p in points)
    return sum((p[0] - mx) * (p[1] - my) for p in points) / sxx


def scaling_slopes(report: Report,
                   columns: tuple[str, ...] = ("gmacs", "latency_ms_median", "memory_mb"),
                   ) -> list[dict[str, Any]]:
    """Per model (its full name: an ablation is a model of its own) and batch size, device,
    dtype and mode, the log-log slope of each column against tokens."""
    groups: dict[tuple, list[dict]] = {}
    for row in report.rows:
        if row.get("status") == "ok":
            key = (row["model"], row.get("batch_size"), row.get("device"), row.get("dtype"),
                   row.get("mode"))
            groups.setdefault(key, []).append(row)
    table = []
    for (model, batch, *_), rows in groups.items():
        sizes = sorted({r["input"] for r in rows})
        if len(sizes) < 2:
            continue
        xs = [tokens_of(r) for r in rows]
        entry = {"model": model, "batch_size": batch, "inputs": ", ".join(sizes)}
        for column in columns:
            if all(r.get(column) is not None for r in rows):
                entry[f"slope_{column}"] = fit_slope(xs, [r[column] for r in rows])
        table.append(entry)
    return table


# -- token mixers measured alone -------------------------------------------------------

#: The mixers' crossover table's title.
MIXER_CROSSOVER_TITLE = (
    "Crossover: latency against global MSA on this device, with a 95% bootstrap interval "
    "and the measured sizes that bracket it (analytic: W-MSA is cheaper in MACs once "
    "N > M^2, Swin eqs. 1-2)")


def mixer_tables(report: Report, order: Sequence[str]) -> dict[str, list[dict]]:
    """The fitted log-log slopes per mixer and the crossover against global MSA."""
    by_mixer: dict[str, list[dict]] = {}
    for row in report.rows:
        by_mixer.setdefault(row["model"], []).append(row)
    tables = {"Scaling: log-log slopes against tokens (2 = quadratic, 1 = linear)":
              [_mixer_slopes(name, by_mixer.get(name, [])) for name in order]}
    timed: dict[str, dict[int, tuple[dict, list]]] = {}
    for row, trials, _ in _timed(report):
        timed.setdefault(row["model"], {})[row["img_size"]] = (row, trials)
    reference = timed.get(REFERENCE_MIXER, {})
    cross = [entry for name in order if name != REFERENCE_MIXER
             for entry in [_mixer_crossover(name, timed.get(name, {}), reference)] if entry]
    if cross:
        tables[MIXER_CROSSOVER_TITLE] = cross
    return tables


def _mixer_slopes(name: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    rs = sorted(rows, key=lambda r: r["img_size"])
    ok = [r for r in rs if r["status"] == "ok"]
    entry: dict[str, Any] = {"mixer": name, "sizes": ", ".join(str(r["img_size"]) for r in rs)}
    for label, column, pool in (
        ("macs_formula", "macs_formula", rs),
        ("macs_counted", "macs_counted", rs),
        ("latency", "latency_ms_median", ok),
        ("memory", "memory_mb", ok),
    ):
        points = [(r["tokens"], r.get(column)) for r in pool if r.get(column)]
        entry[f"slope_{label}"] = fit_slope([p[0] for p in points], [p[1] for p in points])
    return entry


def _mixer_crossover(name: str, timed: dict[int, tuple[dict, list]],
                     reference: dict[int, tuple[dict, list]]) -> dict[str, Any] | None:
    sizes = sorted(set(timed) & set(reference))
    if not sizes:
        return None
    entry = {"mixer": name, "against": REFERENCE_MIXER,
             **measured_crossover(sizes, [timed[s][1] for s in sizes],
                                  [reference[s][1] for s in sizes])}
    entry["first_cheaper_size_macs"] = next(
        (s for s in sizes if timed[s][0]["macs_formula"] < reference[s][0]["macs_formula"]),
        None)
    return entry


def mixer_costs(report: Report) -> list[dict[str, Any]]:
    """Each token mixer at each size: analytic and counted GMACs, latency and memory."""
    return [
        {
            "mixer": r["model"], "size": r["img_size"], "tokens": r.get("tokens"),
            "gmacs_formula": r["macs_formula"] / 1e9 if r.get("macs_formula") else None,
            "gmacs_counted": r["macs_counted"] / 1e9 if r.get("macs_counted") else None,
            "diff": r.get("macs_diff"), "latency_ms": r.get("latency_ms_median"),
            "latency_ms_ci95_low": r.get("latency_ms_ci95_low"),
            "latency_ms_ci95_high": r.get("latency_ms_ci95_high"),
            "memory_mb": r.get("memory_mb"), "status": r["status"],
        }
        for r in report.rows
    ]


def _mixers(report: Report) -> dict[str, list[dict[str, Any]]]:
    order = list(dict.fromkeys(r["model"] for r in report.rows))
    return {**mixer_tables(report, order),
            "Token mixers: cost against size": mixer_costs(report)}


#: The ratio table's title in a compare; a sweep's says what it compares.
RATIOS_TITLE = "Latency ratios (95% bootstrap CI; not significant where it spans 1)"
SWEEP_RATIOS_TITLE = ("Latency ratios against the first architecture at the same size "
                      "(95% bootstrap CI; not significant where it spans 1)")
SWEEP_CROSSOVER_TITLE = (
    "Crossover: input size (image side in pixels, or sequence length) where each "
    "architecture's latency crosses the first one's, with a 95% bootstrap interval and the "
    "measured sizes that bracket it")


def _ratios(report: Report) -> dict[str, list[dict[str, Any]]]:
    if report.kind != "sweep":
        return {RATIOS_TITLE: latency_ratios(report)}
    return {SWEEP_RATIOS_TITLE: sweep_ratios(report),
            SWEEP_CROSSOVER_TITLE: sweep_crossovers(report)}


#: The tables a plan can ask for, by name: each returns {title: rows} for a report.
DERIVED: dict[str, Callable[[Report], dict[str, list[dict[str, Any]]]]] = {
    "ratios": _ratios,
    "slopes": lambda report: {"Scaling: log-log slopes against tokens":
                              scaling_slopes(report)},
    "mixers": _mixers,
    "frontier": frontier_tables,  # accuracy against latency and GMACs (report/frontier.py)
}
