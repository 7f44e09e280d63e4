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


#: Within-trial resampling works on at most this many of a trial's samples (its quantiles,
#: evenly spaced): a trial of 10,000 fast iterations costs what one of 1,000 does, and the
#: interval can only widen (the median of fewer samples varies more).
RESAMPLED_PER_TRIAL = 1000


def _thinned(trial: Sequence[float]) -> Any:
    import numpy as np

    values = np.sort(np.asarray(trial, dtype=float))
    if len(values) <= RESAMPLED_PER_TRIAL:
        return values
    return values[np.linspace(0, len(values) - 1, RESAMPLED_PER_TRIAL).round().astype(int)]


def bootstrap_medians(trials: Sequence[Sequence[float]], rng: Any,
                       resamples: int = BOOTSTRAP_RESAMPLES) -> Any:
    """Medians of two-level bootstrap resamples: trials with replacement, then the
    iterations within each drawn trial, so drift between trials widens the interval.
    Vectorised: every resample's values are drawn at once and sorted within resamples."""
    import numpy as np

    arrays = [_thinned(t) for t in trials if len(t)]
    values = np.concatenate(arrays)
    lengths = np.array([len(a) for a in arrays])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    lowest, span = values.min(), (np.ptp(values) or 1.0) * (1 + 1e-9)
    scaled = (values - lowest) / span
    medians = np.empty(resamples)
    chunk = max(1, 4_000_000 // max(int(lengths.sum()), 1))
    for first in range(0, resamples, chunk):
        count = min(chunk, resamples - first)
        picks = rng.integers(0, len(arrays), size=(count, len(arrays))).ravel()
        sizes = lengths[picks]
        drawn = (np.floor(rng.random(int(sizes.sum())) * np.repeat(sizes, sizes)).astype(int)
                 + np.repeat(starts[picks], sizes))
        totals = sizes.reshape(count, len(arrays)).sum(axis=1)
        # one sort for all resamples: key = resample number + the value scaled into [0, 1)
        keys = np.repeat(np.arange(count), totals) + scaled[drawn]
        keys.sort()
        ordered = lowest + (keys - np.floor(keys)) * span
        offsets = np.concatenate([[0], np.cumsum(totals)[:-1]])
        low, high = offsets + (totals - 1) // 2, offsets + totals // 2
        medians[first:first + count] = (ordered[low] + ordered[high]) / 2
    return medians


def bootstrap_median_ci(trials: Sequence[Sequence[float]], level: float = 0.95,
                        seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES
                        ) -> tuple[float, float]:
    """Bootstrap confidence interval of the median of all samples."""
    import numpy as np

    medians = bootstrap_medians(trials, np.random.default_rng(seed), resamples)
    tail = (1 - level) / 2 * 100
    return float(np.percentile(medians, tail)), float(np.percentile(medians, 100 - tail))


def ratio_ci(trials: Sequence[Sequence[float]], reference: Sequence[Sequence[float]],
             level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Bootstrap confidence interval of median(trials) / median(reference)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    ratios = bootstrap_medians(trials, rng) / bootstrap_medians(reference, rng)
    tail = (1 - level) / 2 * 100
    return float(np.percentile(ratios, tail)), float(np.percentile(ratios, 100 - tail))


def ci_halfwidth_pct(trials: Sequence[Sequence[float]], level: float = 0.95,
                     resamples: int = BOOTSTRAP_RESAMPLES) -> float:
    """Half the width of the median's bootstrap interval, in % of the median."""
    import statistics

    low, high = bootstrap_median_ci(trials, level, resamples=resamples)
    median = statistics.median(s for trial in trials for s in trial)
    return (high - low) / 2 / median * 100 if median > 0 else math.inf


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
        "latency_ms_ci95_halfwidth_pct": (high - low) / 2 / median * 100 if median > 0
        else None,
        "latency_ms_p10": percentile(samples, 10),
        "latency_ms_p90": percentile(samples, 90),
        "latency_ms_iqr": p75 - p25,
        "latency_ms_mean": statistics.fmean(samples),
        "latency_ms_std": statistics.stdev(samples) if len(samples) > 1 else 0.0,
        "iterations": len(samples),
        "trials": len(trials),
        "throughput_per_s": batch_size / median * 1e3 if median > 0 else None,
    }
