"""Timing loops: per-iteration samples of one trial, and the interleaved trials of a group.

Rules: warm-up iterations are never timed; on CUDA each iteration is bracketed by CUDA
events that are read after one synchronisation at the end of the trial (no host timer on
asynchronous work, no synchronisation inside the timed loop); on the CPU each iteration is
timed with ``perf_counter``. A row's samples come from several trials, and
:func:`interleave` alternates the rows of a comparison group across trials (A B C A B C ...)
so that drift hits all alike. compare, sweep, mixers and max-batch all time through here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

#: A row never gets fewer timed iterations than this, summed over its trials.
MIN_ITERATIONS = 5
#: Nor more than this in one trial, however fast the model (keeps a tiny model from
#: spinning for minutes).
MAX_ITERATIONS = 100_000


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


@dataclass(eq=False)
class Slot:
    """One row being timed: ``make()`` returns its iteration's callable (called lazily, at
    its first trial, so a failure there costs that row only); ``before()`` runs just before
    and ``check()`` just after every trial (e.g. that ``torch.compile`` did not recompile)."""

    key: Any
    make: Callable[[], Callable[[], Any]]
    before: Callable[[], None] | None = None
    check: Callable[[], None] | None = None
    trials: list[list[float]] = field(default_factory=list)
    fn: Callable[[], Any] | None = None


def interleave(slots: Sequence[Slot], device: str, warmup: int, min_time: float, repeat: int,
               progress: Callable[[str], None] = lambda _: None,
               ) -> Iterator[tuple[Slot, BaseException | None]]:
    """Time every slot for ``repeat`` trials, alternating slots within each trial. Yields
    ``(slot, None)`` as soon as a slot's last trial ends (its row can be written at once),
    and ``(slot, exception)`` for a slot that failed, which is then left out. The first
    trial of a slot runs ``warmup`` untimed iterations, later ones a single one."""
    per_trial = min_time / repeat
    min_iterations = -(-MIN_ITERATIONS // repeat)
    live = list(slots)
    for trial in range(repeat):
        for slot in list(live):
            try:
                if slot.fn is None:
                    slot.fn = slot.make()
                if slot.before is not None:
                    slot.before()
                slot.trials.append(time_trial(slot.fn, device, warmup if trial == 0 else 1,
                                              per_trial, min_iterations))
                if slot.check is not None:
                    slot.check()
            except Exception as exc:
                live.remove(slot)
                slot.fn = None
                yield slot, exc
                continue
            if trial == repeat - 1:
                yield slot, None
        progress(f"trial {trial + 1}/{repeat} done")
