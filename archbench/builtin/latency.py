"""Core plugin: latency statistics, throughput, efficiency and peak memory of one row.

The worker times the rows (see :mod:`archbench.measure.timing` for the rules) and hands each
row's trials to ``archbench_evaluate``; this plugin turns them into columns and measures
memory with one more iteration (:mod:`archbench.measure.memory`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from archbench import hookimpl
from archbench.core.settings import RunSettings
from archbench.core.spec import ModelSpec
from archbench.core.stats import summarize

if TYPE_CHECKING:
    from archbench.measure.workload import Workload


#: Substrings of aten op names → the scaled-dot-product-attention backend they belong to.
ATTENTION_KERNELS = (
    ("_flash_attention", "flash"),
    ("_efficient_attention", "efficient"),
    ("_cudnn_attention", "cudnn"),
    ("_fused_attention_overrideable", "overrideable"),
)


def attention_backends(workload: Workload) -> str | None:
    """The SDPA backends one forward pass ran, or None for a model that does not call
    ``scaled_dot_product_attention``. The fused kernels are named by the aten ops they
    dispatch to; a call that reaches none of them ran the decomposed ``math`` form. Runs
    under ``no_grad``: under ``inference_mode`` the dispatcher shows only the composite op.
    """
    import torch
    from torch.overrides import TorchFunctionMode
    from torch.utils._python_dispatch import TorchDispatchMode

    class SdpaCalls(TorchFunctionMode):
        calls = 0

        def __torch_function__(self, func, types, args=(), kwargs=None):
            if getattr(func, "__name__", "") == "scaled_dot_product_attention":
                self.calls += 1
            return func(*args, **(kwargs or {}))

    class OpNames(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.names: set[str] = set()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names.add(func.__name__)
            return func(*args, **(kwargs or {}))

    with SdpaCalls() as calls, OpNames() as seen, torch.no_grad():
        workload.model(*workload.inputs)
    found = {backend for pattern, backend in ATTENTION_KERNELS
             for name in seen.names if pattern in name}
    if calls.calls and not found:
        found = {"math"}
    return ",".join(sorted(found)) or None


@hookimpl(tryfirst=True)
def archbench_evaluate(
    spec: ModelSpec, workload: Workload, batch_size: int, settings: RunSettings,
    trials: list[list[float]], analysis: Mapping[str, Any], peak_gmacs_per_s: float | None,
) -> dict[str, Any]:
    import torch

    from archbench.measure.memory import peak_memory_mb

    columns = summarize(trials, batch_size)
    if settings.target_ci:
        width = columns["latency_ms_ci95_halfwidth_pct"]
        columns["ci_reached"] = width is not None and width <= settings.target_ci
    macs = analysis.get("train_gmacs" if settings.mode == "train" else "gmacs")
    if macs and columns["latency_ms_median"] > 0:
        achieved = macs * batch_size / (columns["latency_ms_median"] / 1e3)
        columns["achieved_gmacs_per_s"] = achieved
        if peak_gmacs_per_s:
            columns["peak_fraction"] = achieved / peak_gmacs_per_s
    cuda = settings.device.startswith("cuda")
    what = ("max_memory_allocated" if cuda
            else "allocator peak from the profiler (activations; weights excluded)")
    return {
        **columns,
        "compile_s": workload.compile_s,
        # A compiled model or a graph replay does not dispatch op by op: unknown there.
        "attention_backend": None if settings.compile or settings.cuda_graphs
        else attention_backends(workload),
        "memory_mb": peak_memory_mb(workload.fn, settings.device),
        "memory_measure": f"{'cuda' if cuda else 'cpu'} {what} over one "
                          f"{'training step' if settings.mode == 'train' else 'forward'}",
        "threads": torch.get_num_threads(),
        "latency_samples_ms": trials,
    }
