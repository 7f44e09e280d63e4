"""Timing loops: per-iteration samples of one trial, and the interleaved trials of a group.

Rules: warm-up iterations are never timed; on CUDA each iteration is bracketed by CUDA
events that are read after one synchronisation at the end of the trial (no host timer on
asynchronous work, no synchronisation inside the timed loop); on the CPU each iteration is
timed with ``perf_counter``. A row's samples come from several trials, and
:func:`interleave` alternates the rows of a comparison group across trials (A B C, B C A,
C A B, ...) so that drift and order effects hit all alike; Python's garbage collector is
off while a trial runs (it collects once before the first). compare, sweep, mixers and
max-batch all time through here.

Every trial also records whether the machine was busy (:mod:`archbench.measure.contention`):
the CPU time the process got and the cores others used, or other processes on the GPU.
"""

from __future__ import annotations

import contextlib
import gc
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from archbench.measure.contention import CpuMeter

#: A row never gets fewer timed iterations than this, summed over its trials (timm's
#: benchmark script times about 40), so its interval rests on enough samples.
MIN_ITERATIONS = 40
#: Nor fewer than this in any one trial.
MIN_TRIAL_ITERATIONS = 5
#: Nor more than this in one trial, however fast the model (keeps a tiny model from
#: spinning for minutes).
MAX_ITERATIONS = 100_000


def time_cpu(fn: Callable[[], Any], warmup: int, min_time: float,
             min_iterations: int = MIN_TRIAL_ITERATIONS,
             usage: list | None = None) -> list[float]:
    """Per-iteration wall times in ms, until ``min_time`` seconds and ``min_iterations``;
    the timed iterations' :class:`~archbench.measure.contention.CpuWindow` is appended to
    ``usage`` when given."""
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    spent = 0.0
    meter = CpuMeter()
    meter.start()
    while (spent < min_time or len(samples) < min_iterations) and len(samples) < MAX_ITERATIONS:
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        samples.append(elapsed * 1e3)
        spent += elapsed
    if usage is not None:
        usage.append(meter.stop())
    return samples


def time_cuda(fn: Callable[[], Any], warmup: int, min_time: float, device: Any,
              min_iterations: int = MIN_TRIAL_ITERATIONS,
              usage: list | None = None) -> list[float]:
    """Per-iteration GPU times in ms from CUDA events, one synchronisation at the end.

    The iteration count comes from the warm-up's own event timing, so that the timed
    loop lasts about ``min_time`` without a synchronisation inside it. Other processes on
    the GPU, seen before and after the trial, go to ``usage`` as a ``GpuWindow``.
    """
    import torch

    from archbench.measure.contention import GpuWindow, gpu_other_processes

    before = gpu_other_processes(device) if usage is not None else None
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
    if usage is not None:
        after = gpu_other_processes(device)
        usage.append(GpuWindow(None if before is None or after is None
                               else tuple(sorted({*before, *after}))))
    return [begin.elapsed_time(finish) for begin, finish in events]


def time_trial(fn: Callable[[], Any], device: str, warmup: int, min_time: float,
               min_iterations: int = MIN_TRIAL_ITERATIONS,
               usage: list | None = None) -> list[float]:
    """One trial on ``device`` (``cpu`` or ``cuda[:N]``): per-iteration times in ms."""
    if device.startswith("cuda"):
        return time_cuda(fn, warmup, min_time, device, min_iterations, usage)
    return time_cpu(fn, warmup, min_time, min_iterations, usage)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No garbage-collection pause inside a trial (it runs between trials)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass(eq=False)
class Slot:
    """One row being timed: ``make()`` returns its iteration's callable (called lazily, at
    its first trial, so a failure there costs that row only); ``before()`` runs just before
    and ``check()`` just after every trial (e.g. that ``torch.compile`` did not recompile).
    ``usage`` collects each trial's contention record."""

    key: Any
    make: Callable[[], Callable[[], Any]]
    before: Callable[[], None] | None = None
    check: Callable[[], None] | None = None
    trials: list[list[float]] = field(default_factory=list)
    usage: list[Any] = field(default_factory=list)
    fn: Callable[[], Any] | None = None


@dataclass(frozen=True)
class Precision:
    """``--target-ci``: after the planned trials, keep adding trials to every row of the
    group (still interleaved) until ``reached(trials)`` holds for all of them or
    ``max_time`` seconds (from the first trial) have passed."""

    reached: Callable[[list[list[float]]], bool]
    max_time: float


def trial_iterations(repeat: int) -> int:
    """Timed iterations each of ``repeat`` trials needs so a row gets MIN_ITERATIONS."""
    return max(MIN_TRIAL_ITERATIONS, -(-MIN_ITERATIONS // repeat))


def interleave(slots: Sequence[Slot], device: str, warmup: int, min_time: float, repeat: int,
               progress: Callable[[str], None] = lambda _: None,
               precision: Precision | None = None,
               ) -> Iterator[tuple[Slot, BaseException | None]]:
    """Time every slot for ``repeat`` trials (more with ``precision``), alternating slots
    within each trial and rotating their order from trial to trial. Yields ``(slot, None)``
    as soon as a slot is done (its row can be written at once), and ``(slot, exception)``
    for a slot that failed, which is then left out. The first trial of a slot runs
    ``warmup`` untimed iterations, later ones a single one."""
    per_trial = min_time / repeat
    min_iterations = trial_iterations(repeat)
    live = list(slots)
    deadline = time.monotonic() + precision.max_time if precision else 0.0
    trial = 0
    gc.collect()
    while live:
        shift = trial % len(live)
        finished = []
        for slot in live[shift:] + live[:shift]:
            try:
                if slot.fn is None:
                    slot.fn = slot.make()
                if slot.before is not None:
                    slot.before()
                with collector_paused():
                    slot.trials.append(time_trial(slot.fn, device, warmup if trial == 0 else 1,
                                                  per_trial, min_iterations, slot.usage))
                if slot.check is not None:
                    slot.check()
            except Exception as exc:
                live.remove(slot)
                slot.fn = None
                yield slot, exc
                continue
            finished.append(slot)
        if trial + 1 < repeat or not (precision is None or time.monotonic() > deadline
                                      or all(precision.reached(s.trials) for s in finished)):
            finished = []  # another trial for every row, so that they stay interleaved
        for slot in sorted(finished, key=live.index):  # in the order asked, not timed
            live.remove(slot)
            yield slot, None
        trial += 1
        if trial <= repeat:
            progress(f"trial {trial}/{repeat} done")
        elif live:
            progress(f"trial {trial} done ({len(live)} row(s) short of --target-ci)")
