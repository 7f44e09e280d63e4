"""What one timed iteration runs: an inference forward or a full training step, with the
run's dtype, memory format, ``torch.compile`` and CUDA graphs applied.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from archbench.core.settings import RunSettings
from archbench.measure.device import torch_dtype

if TYPE_CHECKING:
    from torch import nn

class RecompiledError(RuntimeError):
    """``torch.compile`` compiled again while the model was being timed."""


def place_model(model: nn.Module, settings: RunSettings) -> nn.Module:
    """The model on the run's device and dtype, in the mode's train/eval state."""
    import torch

    model = model.to(settings.device, dtype=torch_dtype(settings.dtype))
    if settings.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model.train(settings.mode == "train")


def place_inputs(inputs: tuple[Any, ...], settings: RunSettings) -> tuple[Any, ...]:
    import torch

    dtype = torch_dtype(settings.dtype)
    placed = []
    for x in inputs:
        if isinstance(x, torch.Tensor):
            x = x.to(settings.device, dtype=dtype if x.is_floating_point() else None)
            if settings.channels_last and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
        placed.append(x)
    return tuple(placed)


def _compiled_graphs() -> int:
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


@dataclass
class Workload:
    """One iteration's callable for a model at one batch size, ready to be timed."""

    fn: Callable[[], Any]
    batch_size: int
    model: nn.Module
    inputs: tuple[Any, ...]
    compile_s: float | None = None
    _graphs: int | None = field(default=None, repr=False)

    def count_graphs(self) -> None:
        """Note torch's (process-wide) count of compiled graphs before a trial: other
        models of the group compile between this one's trials."""
        if self._graphs is not None:
            self._graphs = _compiled_graphs()

    def check_no_recompile(self) -> None:
        """Raise if ``torch.compile`` compiled a new graph since ``count_graphs``."""
        if self._graphs is not None and _compiled_graphs() != self._graphs:
            raise RecompiledError("torch.compile recompiled during timing; the timed "
                                  "iterations would include compilation")


def training_step(model: nn.Module, inputs: tuple[Any, ...]) -> Callable[[], Any]:
    """Forward, a scalar loss, backward and an SGD step: one training iteration."""
    import torch

    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-6)

    def step() -> Any:
        optimizer.zero_grad(set_to_none=True)
        output = model(*inputs)
        loss = output.float().pow(2).mean()
        loss.backward()
        optimizer.step()
        return loss

    return step


def iteration(model: nn.Module, inputs: tuple[Any, ...], settings: RunSettings
              ) -> Callable[[], Any]:
    """One iteration of the run's mode: a training step, or a forward pass under
    ``torch.inference_mode()``."""
    import torch

    if settings.mode == "train":
        return training_step(model, inputs)

    def forward() -> Any:
        with torch.inference_mode():
            return model(*inputs)

    return forward


def make_workload(model: nn.Module, inputs: tuple[Any, ...], batch_size: int,
                  settings: RunSettings) -> Workload:
    """The callable one timed iteration runs; compiles (and times the compilation) or
    captures a CUDA graph first where the settings ask for it."""
    import torch

    workload = Workload(fn=iteration(model, inputs, settings), batch_size=batch_size,
                        model=model, inputs=inputs)
    if settings.compile:
        compiled = torch.compile(model, mode=None if settings.compile == "default"
                                 else settings.compile)
        workload.fn = iteration(compiled, inputs, settings)
        start = time.perf_counter()
        workload.fn()  # compiles
        if settings.device.startswith("cuda"):
            torch.cuda.synchronize(settings.device)
        workload.compile_s = time.perf_counter() - start
        workload._graphs = _compiled_graphs()
    if settings.cuda_graphs:
        workload.fn = capture_cuda_graph(workload.fn, settings.device)
    return workload


def capture_cuda_graph(fn: Callable[[], Any], device: str) -> Callable[[], Any]:
    """Capture ``fn`` into a CUDA graph (after a warm-up on a side stream); returns replay."""
    import torch

    stream = torch.cuda.Stream(device)
    stream.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(stream):
        for _ in range(3):
            fn()
    torch.cuda.current_stream(device).wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return graph.replay
