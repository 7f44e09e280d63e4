"""Tables computed from a finished report: latency ratios with confidence intervals, and
fitted log-log scaling slopes of cost against input size."""

from __future__ import annotations

import math
from typing import Any

from archbench.report import Report
from archbench.timing import ratio_ci


def latency_ratios(report: Report) -> list[dict[str, Any]]:
    """Each timed row against the first row of the same batch size, device, dtype and mode:
    the ratio of median latencies with a bootstrap 95% interval; ``significant`` is False
    where the interval contains 1."""
    baselines: dict[tuple, int] = {}
    table = []
    for i, row in enumerate(report.rows):
        trials = report.details[i].get("latency_samples_ms")
        if row.get("status") != "ok" or not trials:
            continue
        key = (row.get("batch_size"), row.get("device"), row.get("dtype"), row.get("mode"))
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
    """Per model (and batch size), the log-log slope of each column against tokens."""
    groups: dict[tuple, list[dict]] = {}
    for row in report.rows:
        if row.get("status") == "ok":
            key = (row["arch"], row["variant"], row.get("batch_size"))
            groups.setdefault(key, []).append(row)
    table = []
    for (arch, variant, batch), rows in groups.items():
        sizes = sorted({r["input"] for r in rows})
        if len(sizes) < 2:
            continue
        xs = [tokens_of(r) for r in rows]
        entry = {"model": f"{arch}:{variant}", "batch_size": batch, "inputs": ", ".join(sizes)}
        for column in columns:
            if all(r.get(column) is not None for r in rows):
                entry[f"slope_{column}"] = fit_slope(xs, [r[column] for r in rows])
        table.append(entry)
    return table
