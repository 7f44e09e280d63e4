"""Peak memory of one iteration: CUDA's allocator statistics, or the CPU's resident-memory
growth sampled while it runs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


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


def peak_memory_mb(fn: Callable[[], Any], device: str) -> float:
    """Peak memory of one iteration: CUDA max allocated, or the CPU's RSS growth."""
    if device.startswith("cuda"):
        return cuda_peak_memory_mb(fn, device)
    return cpu_rss_growth_mb(fn)


def return_freed_memory() -> None:
    """Make the CPU's RSS growth a repeatable peak: glibc's malloc keeps freed blocks below
    its (self-raising) mmap threshold in the heap, so a second forward pass shows ~0 growth.
    A fixed 64 KiB threshold (M_MMAP_THRESHOLD) returns every activation to the OS on free.
    Process-wide; a no-op where the C library is not glibc."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-3, 64 * 1024)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass
