"""Timing loops and the statistics of their samples.

Rules: warm-up iterations are never timed; on CUDA each iteration is bracketed by CUDA
events that are read after one synchronisation at the end of the trial (no host timer on
asynchronous work, no synchronisation inside the timed loop); on the CPU each iteration is
timed with ``perf_counter``. A row's samples come from several trials, and the runner
interleaves models across trials (A B C A B C ...) so that drift hits all alike.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

#: A row never gets fewer timed iterations than this, summed over its trials.
MIN_ITERATIONS = 5
#: Nor more than this in one trial, however fast the model (keeps a tiny model from
#: spinning for minutes).
MAX_ITERATIONS = 100_000
#: Bootstrap resamples for confidence intervals.
BOOTSTRAP_RESAMPLES = 2000


def time_cpu(fn: Callable[[], Any], warmup: int, min_time: float,
             min_iterations: int = MIN_ITERATIONS) -> list[float]:
    """Per-iteration wall times in ms, until ``min_time`` seconds and ``min_iterations``."""
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    spent = 0.0
    while (spent < min_time or len(samples) < min_iterations) and len(samples) < MAX_ITERATIONS:
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        samples.append(elapsed * 1e3)
        spent += elapsed
    return samples


def time_cuda(fn: Callable[[], Any], warmup: int, min_time: float, device: Any,
              min_iterations: int = MIN_ITERATIONS) -> list[float]:
    """Per-iteration GPU times in ms from CUDA events, one synchronisation at the end.

    The iteration count comes from the warm-up's own event timing, so that the timed
    loop lasts about ``min_time`` without a synchronisation inside it.
    """
    import torch

    torch.cuda.synchronize(device)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    warm = max(warmup, 1)
    start.record()
    for _ in range(warm):
        fn()
    end.record()
    torch.cuda.synchronize(device)
    per_iter = start.elapsed_time(end) / warm / 1e3
    count = min(MAX_ITERATIONS,
                max(min_iterations, math.ceil(min_time / max(per_iter, 1e-7))))
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
              for _ in range(count)]
    for begin, finish in events:
        begin.record()
        fn()
        finish.record()
    torch.cuda.synchronize(device)
    return [begin.elapsed_time(finish) for begin, finish in events]


def time_trial(fn: Callable[[], Any], device: str, warmup: int, min_time: float,
               min_iterations: int = MIN_ITERATIONS) -> list[float]:
    """One trial on ``device`` (``cpu`` or ``cuda[:N]``): per-iteration times in ms."""
    if device.startswith("cuda"):
        return time_cuda(fn, warmup, min_time, device, min_iterations)
    return time_cpu(fn, warmup, min_time, min_iterations)


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
