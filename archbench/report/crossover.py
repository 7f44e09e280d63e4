"""Where one latency curve crosses another across input sizes, with its uncertainty: the
token mixers' crossover against global MSA (``mixers``) and the whole-model crossover
between architectures (``sweep``).

The point estimate interpolates the ratio of median latencies on log(size) against
log(ratio) between the two measured sizes that bracket it (``grid_below``, ``grid_above``).
Its 95% interval comes from the trials: each size's median is resampled with the two-level
bootstrap of :mod:`archbench.core.stats`, the crossover is found again in every resample,
and the 2.5th and 97.5th percentiles are taken. A resample whose curve never crosses inside
the grid counts as below the smallest or above the largest size; a bound that falls there
is left empty and the note says so.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

#: Bootstrap resamples per crossover (each resample re-finds the crossover).
CROSSOVER_RESAMPLES = 1000

Trials = Sequence[Sequence[float]]


def _interpolate(sizes: Sequence[float], ratios: Sequence[float], i: int) -> float:
    """The size between ``sizes[i - 1]`` and ``sizes[i]`` where log(ratio) crosses 0."""
    x0, x1 = math.log(sizes[i - 1]), math.log(sizes[i])
    y0, y1 = math.log(ratios[i - 1]), math.log(ratios[i])
    x = x0 + (0 - y0) * (x1 - x0) / (y1 - y0) if y1 != y0 else x1
    return math.exp(x)


def first_below_one(sizes: Sequence[float], ratios: Sequence[float]) -> float:
    """The interpolated size where ``ratios`` first drops below 1; ``-inf`` if already below
    at the smallest size, ``+inf`` if never below at the measured sizes."""
    first = next((i for i, q in enumerate(ratios) if q < 1), None)
    if first is None:
        return math.inf
    if first == 0:
        return -math.inf
    return _interpolate(sizes, ratios, first)


def crossover(
    sizes: Sequence[int], faster: Sequence[float], reference: Sequence[float]
) -> dict[str, Any]:
    """Where ``faster`` (latencies by size) drops below ``reference``: the first measured size
    where it is faster, the size interpolated on log(size) against log(ratio), and the two
    measured sizes that bracket it."""
    ratios = [f / r for f, r in zip(faster, reference)]
    first = next((s for s, q in zip(sizes, ratios) if q < 1), None)
    result: dict[str, Any] = {"first_faster_size": first, "crossover_size": None}
    if first is None:
        result["note"] = "never faster at the measured sizes"
    elif first == sizes[0]:
        result["note"] = f"already faster at the smallest size {sizes[0]}"
    else:
        i = list(sizes).index(first)
        size = _interpolate(sizes, ratios, i)
        result.update(crossover_size=size, crossover_tokens=size**2,
                      grid_below=sizes[i - 1], grid_above=sizes[i])
    result["latency_ratios"] = ", ".join(f"{s}: {q:.3g}" for s, q in zip(sizes, ratios))
    return result


def median_of(trials: Trials) -> float:
    return statistics.median(s for trial in trials for s in trial)


def crossover_interval(sizes: Sequence[int], trials: Sequence[Trials],
                       reference: Sequence[Trials], invert: bool = False, seed: int = 0,
                       resamples: int = CROSSOVER_RESAMPLES) -> dict[str, Any]:
    """The 95% bootstrap interval of :func:`first_below_one` of median(trials) /
    median(reference) by size (of its inverse with ``invert``): ``crossover_ci95_low``,
    ``crossover_ci95_high`` (``None`` where the bound lies outside the measured sizes) and
    ``resamples_crossing``, the share of resamples that cross inside the grid."""
    import numpy as np

    from archbench.core.stats import bootstrap_medians

    rng = np.random.default_rng(seed)
    ours = np.stack([bootstrap_medians(t, rng, resamples) for t in trials], axis=1)
    theirs = np.stack([bootstrap_medians(t, rng, resamples) for t in reference], axis=1)
    ratios = theirs / ours if invert else ours / theirs
    values = sorted(first_below_one(sizes, row) for row in ratios.tolist())
    low = values[math.floor(0.025 * (len(values) - 1))]
    high = values[math.ceil(0.975 * (len(values) - 1))]
    result: dict[str, Any] = {
        "crossover_ci95_low": low if math.isfinite(low) else None,
        "crossover_ci95_high": high if math.isfinite(high) else None,
        "resamples_crossing": sum(math.isfinite(v) for v in values) / len(values),
    }
    if not math.isfinite(low):
        result["interval_note"] = f"the interval reaches below the smallest size {sizes[0]}"
    if not math.isfinite(high):
        result["interval_note"] = (("the interval reaches below the smallest and above the "
                                    "largest size") if not math.isfinite(low) else
                                   f"the interval reaches above the largest size {sizes[-1]}")
    return result


def measured_crossover(sizes: Sequence[int], trials: Sequence[Trials],
                       reference: Sequence[Trials], either_way: bool = False,
                       seed: int = 0) -> dict[str, Any]:
    """The crossover of trials' medians against the reference's across ``sizes`` (ascending),
    with its interval where there is one inside the grid.

    ``either_way=False``: where the first becomes faster (a token mixer against MSA).
    ``either_way=True``: where the first changes side, faster or slower (``direction``), as
    between two whole models."""
    ours, theirs = [median_of(t) for t in trials], [median_of(t) for t in reference]
    invert = either_way and ours[0] < theirs[0]
    entry = crossover(sizes, theirs, ours) if invert else crossover(sizes, ours, theirs)
    if either_way:
        entry["first_changed_size"] = entry.pop("first_faster_size")
        entry["direction"] = None
        if entry["first_changed_size"] is not None:
            entry["direction"] = "slower from" if invert else "faster from"
        else:
            entry["note"] = (f"{'faster' if invert else 'slower or level'} at every "
                             "measured size")
        entry["latency_ratios"] = ", ".join(f"{s}: {a / b:.3g}"
                                            for s, a, b in zip(sizes, ours, theirs))
        entry.pop("crossover_tokens", None)  # sizes here are image sides or lengths
    if entry["crossover_size"] is not None:
        entry.update(crossover_interval(sizes, trials, reference, invert=invert, seed=seed))
        note = entry.pop("interval_note", None)
        if note:
            entry["note"] = note
    first = [k for k in _ORDER if k in entry]
    return {k: entry[k] for k in first + [k for k in entry if k not in first]}


#: The crossover columns in the order they read best.
_ORDER = ("direction", "first_faster_size", "first_changed_size", "crossover_size",
          "crossover_ci95_low", "crossover_ci95_high", "grid_below", "grid_above",
          "crossover_tokens", "resamples_crossing", "note", "latency_ratios")
