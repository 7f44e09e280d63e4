"""The device's own dense matmul rate, against which a row's achieved GMAC/s is a fraction."""

from __future__ import annotations

import statistics
from collections.abc import Callable

#: Rates measured in this process, by (device, dtype): each is measured once.
_MEASURED: dict[tuple[str, str, int], float] = {}


def matmul_peak_gmacs_per_s(device: str, dtype: str,
                            progress: Callable[[str], None] = lambda _: None) -> float:
    """A large square matmul on ``device`` in ``dtype``, timed like the models, in GMAC/s
    (n³ multiply-adds per product). Measured once per process, device, dtype and
    torch thread count."""
    import torch

    key = (device, dtype, torch.get_num_threads())
    if key in _MEASURED:
        return _MEASURED[key]

    from archbench.measure import timing
    from archbench.measure.device import torch_dtype

    progress(f"measuring the {device} {dtype} matmul peak")
    n = 8192 if device.startswith("cuda") else 2048
    a = torch.randn(n, n, device=device, dtype=torch_dtype(dtype))
    b = torch.randn(n, n, device=device, dtype=torch_dtype(dtype))
    samples = timing.time_trial(lambda: a @ b, device, warmup=2, min_time=0.5)
    _MEASURED[key] = n**3 / (statistics.median(samples) / 1e3) / 1e9
    return _MEASURED[key]
