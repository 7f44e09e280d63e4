"""``--max-batch``: the largest batch whose iteration fits the memory budget."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from archbench.measure.device import is_oom, release_memory
from archbench.measure.memory import peak_memory_mb

Probe = tuple[int, bool, float | None]


def find_max_batch(iteration: Callable[[int], Callable[[], Any]], device: str, budget_mb: float,
                   progress: Callable[[str], None], limit: int = 1 << 16
                   ) -> tuple[int, list[Probe]]:
    """Doubling, then bisection, over ``iteration(batch)`` (one iteration's callable at that
    batch). A batch that raises out-of-memory, or whose measured peak is over budget, does
    not fit. Returns the batch and every probe (batch, fits, memory MB)."""
    import torch

    probes: list[Probe] = []

    def fits(size: int) -> bool:
        try:
            memory = peak_memory_mb(iteration(size), device)
            ok = memory <= budget_mb
        except Exception as exc:
            if not is_oom(exc):
                raise
            ok, memory = False, None
        release_memory()
        probes.append((size, ok, memory))
        progress(f"  max batch probe {size}: {'fits' if ok else 'does not fit'}")
        return ok

    if not fits(1):
        raise torch.cuda.OutOfMemoryError("batch 1 does not fit in the memory budget "
                                          f"of {budget_mb:.0f} MB")
    good, bad = 1, None
    while bad is None and good < limit:
        if fits(good * 2):
            good *= 2
        else:
            bad = good * 2
    while bad is not None and bad - good > 1:
        middle = (good + bad) // 2
        good, bad = (middle, bad) if fits(middle) else (good, middle)
    return good, probes
