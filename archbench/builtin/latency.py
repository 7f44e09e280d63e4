"""Core plugin: forward latency, throughput and peak memory of one model at one batch size.

Timing rules: the model is in eval mode and the core calls us inside
``torch.inference_mode()``; warm-up iterations are never timed; on CUDA every iteration is
bracketed by CUDA events and read after one synchronisation at the end (never a host
timer on asynchronous work); on the CPU each iteration is timed with ``perf_counter``.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from archbench import hookimpl
from archbench.spec import ModelSpec, RunSettings

if TYPE_CHECKING:
    from torch import nn

#: Never fewer timed iterations than this, however slow the model.
MIN_ITERATIONS = 5
#: Never more, however fast (keeps a tiny model from spinning for minutes).
MAX_ITERATIONS = 100_000


def time_cpu(fn: Callable[[], Any], warmup: int, min_time: float) -> list[float]:
    """Per-iteration wall times in ms: until ``min_time`` seconds and MIN_ITERATIONS are reached."""
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    spent = 0.0
    while (spent < min_time or len(samples) < MIN_ITERATIONS) and len(samples) < MAX_ITERATIONS:
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        samples.append(elapsed * 1e3)
        spent += elapsed
    return samples


def time_cuda(fn: Callable[[], Any], warmup: int, min_time: float, device: Any) -> list[float]:
    """Per-iteration GPU times in ms from CUDA events, one synchronisation at the end.

    The iteration count is chosen from the warm-up's own timing so that the timed loop
    lasts about ``min_time`` without synchronising inside it.
    """
    import torch

    torch.cuda.synchronize(device)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(max(warmup, 1)):
        fn()
    end.record()
    torch.cuda.synchronize(device)
    per_iter = start.elapsed_time(end) / max(warmup, 1) / 1e3
    count = min(MAX_ITERATIONS, max(MIN_ITERATIONS, math.ceil(min_time / max(per_iter, 1e-7))))
    events = [
        (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
        for _ in range(count)
    ]
    for begin, finish in events:
        begin.record()
        fn()
        finish.record()
    torch.cuda.synchronize(device)
    return [begin.elapsed_time(finish) for begin, finish in events]


def percentile(samples: list[float], q: float) -> float:
    """Linear-interpolated percentile, ``q`` in [0, 100] (numpy's default method)."""
    ordered = sorted(samples)
    pos = (len(ordered) - 1) * q / 100
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summarize(samples: list[float], batch_size: int) -> dict[str, Any]:
    median = statistics.median(samples)
    return {
        "latency_ms_median": median,
        "latency_ms_p10": percentile(samples, 10),
        "latency_ms_p90": percentile(samples, 90),
        "latency_ms_mean": statistics.fmean(samples),
        "latency_ms_std": statistics.stdev(samples) if len(samples) > 1 else 0.0,
        "iterations": len(samples),
        "throughput_per_s": batch_size / median * 1e3 if median > 0 else None,
    }


def cuda_peak_memory_mb(fn: Callable[[], Any], device: Any) -> float:
    """``torch.cuda.max_memory_allocated`` over one forward pass: weights, inputs, activations."""
    import torch

    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) / 2**20


def cpu_rss_growth_mb(fn: Callable[[], Any], interval: float = 0.0005) -> float:
    """Peak growth of the process's resident memory during one forward pass, sampled.

    On the CPU there is no allocator statistic like CUDA's: this is what the operating
    system saw the forward pass add (activations and workspace) on top of what was
    resident before (weights, inputs). Allocator caching can make it an underestimate.
    """
    import psutil

    process = psutil.Process()
    before = process.memory_info().rss
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, process.memory_info().rss)
            time.sleep(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        fn()
    finally:
        done.set()
        sampler.join()
    peak = max(peak, process.memory_info().rss)
    return (peak - before) / 2**20


@hookimpl(tryfirst=True)
def archbench_evaluate(
    spec: ModelSpec, model: nn.Module, inputs: tuple[Any, ...], batch_size: int,
    settings: RunSettings,
) -> dict[str, Any]:
    import torch

    def forward() -> Any:
        return model(*inputs)

    device = torch.device(settings.device)
    if device.type == "cuda":
        memory = cuda_peak_memory_mb(forward, device)
        measure = "cuda max_memory_allocated over one forward (weights + activations)"
        samples = time_cuda(forward, settings.warmup, settings.min_time, device)
    else:
        forward()  # first call outside the memory probe: one-off allocations
        memory = cpu_rss_growth_mb(forward)
        measure = "cpu peak RSS growth during one forward (activations; weights excluded)"
        samples = time_cpu(forward, settings.warmup, settings.min_time)
    return {
        **summarize(samples, batch_size),
        "memory_mb": memory,
        "memory_measure": measure,
        "threads": torch.get_num_threads(),
        "latency_samples_ms": samples,
    }
