"""Peak memory of one iteration: CUDA's allocator statistics, or, on the CPU, the peak of
the bytes torch's CPU allocator held, from the profiler's memory accounting (every
allocation and free, in order), over what was held before the iteration began."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any


def cuda_peak_memory_mb(fn: Callable[[], Any], device: Any) -> float:
    """``torch.cuda.max_memory_allocated`` over one forward pass: weights, inputs, activations."""
    import torch

    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) / 2**20


def cpu_peak_memory_mb(fn: Callable[[], Any]) -> float:
    """The most memory torch's CPU allocator held at once during one call of ``fn``, beyond
    what it held before (activations, workspace, a training step's gradients; not the
    weights and inputs, which were allocated earlier). Memory allocated outside torch's
    allocator (a BLAS library's own buffers) is not seen."""
    from torch.profiler import ProfilerActivity, profile

    prof = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
    with stderr_silenced():
        prof.start()
    try:
        fn()
    finally:
        with stderr_silenced():
            prof.stop()
    changes = sorted((event.start_ns(), event.nbytes())
                     for event in prof.profiler.kineto_results.events()
                     if event.name() == "[memory]")
    held = peak = 0
    for _, nbytes in changes:
        held += nbytes
        peak = max(peak, held)
    return peak / 2**20


@contextlib.contextmanager
def stderr_silenced() -> Iterator[None]:
    """File descriptor 2 to /dev/null: the profiler's C++ side prints a line to stderr
    whenever it starts and stops (``USDT: ... profiler_start``), which no setting turns
    off. Only around the start and the stop, never around the code being measured."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def peak_memory_mb(fn: Callable[[], Any], device: str) -> float:
    """Peak memory of one iteration: CUDA max allocated, or the CPU allocator's peak."""
    if device.startswith("cuda"):
        return cuda_peak_memory_mb(fn, device)
    return cpu_peak_memory_mb(fn)
