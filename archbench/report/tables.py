"""Tables derived from a run's rows: latency ratios with confidence intervals (inside each
comparison group), fitted log-log scaling slopes against input size, and the token mixers'
cost table and crossover against global MSA. The session asks for them by name
(:data:`DERIVED`) when a run ends."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from archbench.core.mixers import REFERENCE_MIXER
from archbench.core.stats import ratio_ci
from archbench.report.report import Report


def latency_ratios(report: Report) -> list[dict[str, Any]]:
    """Each timed row against the first row of its comparison group (the rows whose trials
    were interleaved) with the same batch size, device, dtype and mode: the ratio of median
    latencies with a bootstrap 95% interval; ``significant`` is False where the interval
    contains 1. Rows of different groups are never compared."""
    baselines: dict[tuple, int] = {}
    table = []
    for i, row in enumerate(report.rows):
        trials = report.details[i].get("latency_samples_ms")
        if row.get("status") != "ok" or not trials:
            continue
        key = (report.details[i].get("group"), row.get("batch_size"), row.get("device"),
               row.get("dtype"), row.get("mode"))
        base = baselines.setdefault(key, i)
        if base == i:
            continue
        reference = report.details[base]["latency_samples_ms"]
        low, high = ratio_ci(trials, reference)
        table.append({
            "model": row["model"], "input": row["input"], "batch_size": row["batch_size"],
            "against": report.rows[base]["model"],
            "latency_ratio": row["latency_ms_median"] / report.rows[base]["latency_ms_median"],
            "ci95_low": low, "ci95_high": high,
            "significant": not (low <= 1.0 <= high),
        })
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


def crossover(
    sizes: Sequence[int], faster: Sequence[float], reference: Sequence[float]
) -> dict[str, Any]:
    """Where ``faster`` (latencies by size) drops below ``reference``: the first measured size
    where it is faster, and the size interpolated on log(size) against log(ratio)."""
    ratios = [f / r for f, r in zip(faster, reference)]
    first = next((s for s, q in zip(sizes, ratios) if q < 1), None)
    result: dict[str, Any] = {"first_faster_size": first, "crossover_size": None}
    if first is None:
        result["note"] = "never faster at the measured sizes"
    elif first == sizes[0]:
        result["crossover_size"] = None
        result["note"] = f"already faster at the smallest size {sizes[0]}"
    else:
        i = list(sizes).index(first)
        x0, x1 = math.log(sizes[i - 1]), math.log(sizes[i])
        y0, y1 = math.log(ratios[i - 1]), math.log(ratios[i])
        x = x0 + (0 - y0) * (x1 - x0) / (y1 - y0) if y1 != y0 else x1
        result["crossover_size"] = math.exp(x)
        result["crossover_tokens"] = math.exp(2 * x)
    result["latency_ratios"] = ", ".join(f"{s}: {q:.3g}" for s, q in zip(sizes, ratios))
    return result


def mixer_tables(rows: list[dict[str, Any]], order: Sequence[str]) -> dict[str, list[dict]]:
    """The fitted log-log slopes per mixer and the crossover against global MSA."""
    by_mixer: dict[str, list[dict]] = {}
    for row in rows:
        by_mixer.setdefault(row["model"], []).append(row)
    tables = {"Scaling: log-log slopes against tokens (2 = quadratic, 1 = linear)":
              [_mixer_slopes(name, by_mixer.get(name, [])) for name in order]}
    reference = {r["img_size"]: r for r in by_mixer.get(REFERENCE_MIXER, []) if r["status"] == "ok"}
    cross = [entry for name in order if name != REFERENCE_MIXER
             for entry in [_mixer_crossover(name, by_mixer.get(name, []), reference)] if entry]
    if cross:
        tables[
            "Crossover: latency against global MSA on this device (analytic: W-MSA is "
            "cheaper in MACs once N > M^2, Swin eqs. 1-2)"
        ] = cross
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


def _mixer_crossover(name: str, rows: list[dict[str, Any]], reference: dict[int, dict]
                     ) -> dict[str, Any] | None:
    rs = sorted((r for r in rows if r["status"] == "ok" and r["img_size"] in reference),
                key=lambda r: r["img_size"])
    if not rs or not all(r.get("latency_ms_median") for r in rs):
        return None
    sizes = [r["img_size"] for r in rs]
    entry = {"mixer": name, "against": REFERENCE_MIXER,
             **crossover(sizes, [r["latency_ms_median"] for r in rs],
                         [reference[s]["latency_ms_median"] for s in sizes])}
    entry["first_cheaper_size_macs"] = next(
        (r["img_size"] for r in rs
         if r["macs_formula"] < reference[r["img_size"]]["macs_formula"]), None)
    return entry


def mixer_costs(report: Report) -> list[dict[str, Any]]:
    """Each token mixer at each size: analytic and counted GMACs, latency and memory."""
    return [
        {
            "mixer": r["model"], "size": r["img_size"], "tokens": r.get("tokens"),
            "gmacs_formula": r["macs_formula"] / 1e9 if r.get("macs_formula") else None,
            "gmacs_counted": r["macs_counted"] / 1e9 if r.get("macs_counted") else None,
            "diff": r.get("macs_diff"), "latency_ms": r.get("latency_ms_median"),
            "memory_mb": r.get("memory_mb"), "status": r["status"],
        }
        for r in report.rows
    ]


def _mixers(report: Report) -> dict[str, list[dict[str, Any]]]:
    order = list(dict.fromkeys(r["model"] for r in report.rows))
    return {**mixer_tables(report.rows, order),
            "Token mixers: cost against size": mixer_costs(report)}


#: The tables a plan can ask for, by name: each returns {title: rows} for a report.
DERIVED: dict[str, Callable[[Report], dict[str, list[dict[str, Any]]]]] = {
    "ratios": lambda report: {
        "Latency ratios (95% bootstrap CI; not significant where it spans 1)":
            latency_ratios(report)},
    "slopes": lambda report: {"Scaling: log-log slopes against tokens":
                              scaling_slopes(report)},
    "mixers": _mixers,
}
