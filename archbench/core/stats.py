"""Statistics of timing samples: percentiles, two-level bootstrap intervals of the median
and of ratios of medians, and a row's latency columns. Pure Python and numpy, no torch."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

#: Bootstrap resamples for confidence intervals.
BOOTSTRAP_RESAMPLES = 2000


def percentile(samples: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile, ``q`` in [0, 100] (numpy's default method)."""
    ordered = sorted(samples)
    pos = (len(ordered) - 1) * q / 100
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def _bootstrap_medians(trials: Sequence[Sequence[float]], rng: Any) -> Any:
    """Medians of two-level bootstrap resamples: trials with replacement, then the
    iterations within each drawn trial, so drift between trials widens the interval."""
    import numpy as np

    arrays = [np.asarray(t, dtype=float) for t in trials if len(t)]
    picks = rng.integers(0, len(arrays), size=(BOOTSTRAP_RESAMPLES, len(arrays)))
    medians = np.empty(BOOTSTRAP_RESAMPLES)
    for i, pick in enumerate(picks):
        drawn = [arrays[j][rng.integers(0, len(arrays[j]), len(arrays[j]))] for j in pick]
        medians[i] = np.median(np.concatenate(drawn))
    return medians


def bootstrap_median_ci(trials: Sequence[Sequence[float]], level: float = 0.95,
                        seed: int = 0) -> tuple[float, float]:
    """Bootstrap confidence interval of the median of all samples."""
    import numpy as np

    medians = _bootstrap_medians(trials, np.random.default_rng(seed))
    tail = (1 - level) / 2 * 100
    return float(np.percentile(medians, tail)), float(np.percentile(medians, 100 - tail))


def ratio_ci(trials: Sequence[Sequence[float]], reference: Sequence[Sequence[float]],
             level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Bootstrap confidence interval of median(trials) / median(reference)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    ratios = _bootstrap_medians(trials, rng) / _bootstrap_medians(reference, rng)
    tail = (1 - level) / 2 * 100
    return float(np.percentile(ratios, tail)), float(np.percentile(ratios, 100 - tail))


def summarize(trials: Sequence[Sequence[float]], batch_size: int) -> dict[str, Any]:
    """The latency columns of one row from its trials' per-iteration samples (ms)."""
    import statistics

    samples = [s for trial in trials for s in trial]
    median = statistics.median(samples)
    p25, p75 = percentile(samples, 25), percentile(samples, 75)
    low, high = bootstrap_median_ci(trials)
    return {
        "latency_ms_median": median,
        "latency_ms_ci95_low": low,
        "latency_ms_ci95_high": high,
        "latency_ms_p10": percentile(samples, 10),
        "latency_ms_p90": percentile(samples, 90),
        "latency_ms_iqr": p75 - p25,
        "latency_ms_mean": statistics.fmean(samples),
        "latency_ms_std": statistics.stdev(samples) if len(samples) > 1 else 0.0,
        "iterations": len(samples),
        "trials": len(trials),
        "throughput_per_s": batch_size / median * 1e3 if median > 0 else None,
    }
