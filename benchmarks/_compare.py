"""Shared timing for the scripts in ``benchmarks/``: alternating rounds, medians, ratios.

Built on archbench's own CPU timing loop (:func:`archbench.measure.timing.time_cpu`), so a script
measures what ``archbench compare`` measures. Import it from a script run as
``python benchmarks/bench_x.py`` (its directory is then on ``sys.path``)::

    from _compare import print_table, time_alternating
"""

from __future__ import annotations

import contextlib
import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from archbench.core.stats import percentile
from archbench.measure.timing import time_cpu


@dataclass(frozen=True)
class Timing:
    """Per-iteration latency of one callable over all rounds, in ms."""

    median: float
    p10: float
    p90: float
    iterations: int


def time_alternating(
    fns: Mapping[str, Callable[[], object]],
    *,
    rounds: int,
    min_time: float,
    warmup: int = 2,
    inference_mode: bool = True,
) -> dict[str, Timing]:
    """Time each callable for about ``min_time`` seconds in all, in ``rounds`` rounds.

    Within a round the callables run one after another in the dict's order (A B C A B C
    ...), so drift hits all alike; each gets ``warmup`` untimed calls and then
    ``min_time / rounds`` seconds (at least archbench's minimum iterations) of ``time_cpu``.
    """
    samples: dict[str, list[float]] = {label: [] for label in fns}
    with torch.inference_mode() if inference_mode else contextlib.nullcontext():
        for _ in range(max(rounds, 1)):
            for label, fn in fns.items():
                samples[label] += time_cpu(fn, warmup=warmup, min_time=min_time / max(rounds, 1))
    return {
        label: Timing(statistics.median(s), percentile(s, 10), percentile(s, 90), len(s))
        for label, s in samples.items()
    }


def print_table(
    results: Mapping[str, Timing],
    reference: str,
    extra: Mapping[str, Mapping[str, str]] | None = None,
) -> None:
    """One row per label: ``extra`` columns ({header: {label: text}}), median, p10, p90,
    iterations and the ratio of its median to ``reference``'s."""
    extra = extra or {}
    width = max(len(label) for label in results) + 2
    head = f"{'model':<{width}}" + "".join(f"{h:>10}" for h in extra)
    print(head + f"{'median ms':>11}{'p10 ms':>10}{'p90 ms':>10}{'iters':>7}  / {reference}")
    base = results[reference].median
    for label, t in results.items():
        cells = "".join(f"{col.get(label, ''):>10}" for col in extra.values())
        print(
            f"{label:<{width}}{cells}{t.median:11.2f}{t.p10:10.2f}{t.p90:10.2f}"
            f"{t.iterations:7d}  {t.median / base:.3f}"
        )


def print_goal(results: Mapping[str, Timing], label: str, reference: str,
               goal: float = 1.0) -> float:
    """Print ``label / reference`` of the medians against ``goal``; return the ratio."""
    ratio = results[label].median / results[reference].median
    verdict = "meets" if ratio <= goal else "misses"
    print(f"{label} / {reference} = {ratio:.3f} ({verdict} goal <= {goal})")
    return ratio
