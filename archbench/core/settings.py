"""How models are measured (:class:`RunSettings`), and the one place that knows the names
of dtypes and devices and parses integer lists. No torch here; :mod:`archbench.measure.device`
maps these names onto torch and the machine."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from archbench.core.accuracy import Evaluation
from archbench.core.errors import UsageError

#: ``--dtype`` names → (torch dtype attribute, TF32 matmuls allowed, bytes per element).
DTYPES: dict[str, tuple[str, bool, int]] = {
    "fp32": ("float32", False, 4),
    "tf32": ("float32", True, 4),
    "fp16": ("float16", False, 2),
    "bf16": ("bfloat16", False, 2),
}
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclass(frozen=True)
class RunSettings:
    """How models are evaluated; built by the plan from the command's options. Plain data:
    it travels inside every :class:`archbench.run.task.Task`."""

    batch_sizes: tuple[int, ...] = (1,)
    device: str = "cpu"
    #: fp32, tf32 (fp32 storage, TF32 matmuls and convolutions), fp16 or bf16.
    dtype: str = "fp32"
    warmup: int = 3
    #: Seconds of timed iterations per row, over all its trials.
    min_time: float = 1.0
    #: Trials per row; models are interleaved across trials.
    repeat: int = 5
    threads: int | None = None
    latency: bool = True
    #: ``infer`` times a forward pass; ``train`` a forward, loss, backward and SGD step.
    mode: Literal["infer", "train"] = "infer"
    channels_last: bool = False
    #: ``torch.compile`` mode (``default``, ``reduce-overhead``, ``max-autotune``), or None.
    compile: str | None = None
    cuda_graphs: bool = False
    #: Find the largest batch that fits instead of using ``batch_sizes``.
    max_batch: bool = False
    #: Memory budget in MB for ``max_batch`` and for skipping token-mixer sizes whose
    #: attention matrix cannot fit (None: 90% of the device's free memory).
    max_memory_mb: float | None = None
    #: Print tracebacks of failed rows to stderr.
    debug: bool = False
    #: Keep adding trials until each row's 95% interval half-width is within this % of its
    #: median (None: exactly ``repeat`` trials).
    target_ci: float | None = None
    #: With ``target_ci``: seconds a group's trials may take in all before it gives up.
    max_time: float | None = None
    #: Read and write the on-disk complexity cache (params, FLOPs, formulas).
    cache: bool = True
    #: After a row's timed trials, a profiled pass attributes its time to the token mixers,
    #: MLPs, norms, the architecture's time regions and stages (``--breakdown``).
    breakdown: bool = False
    #: ``--data DIR --weights SOURCE``: after a model's trials, its top-1/top-5 with those
    #: weights on those images (checked by the plan; None: not measured).
    evaluation: Evaluation | None = None


def element_bytes(dtype: str) -> int:
    return DTYPES[dtype][2]


def check_device_name(device: str, option: str = "--device") -> None:
    if not DEVICE_PATTERN.fullmatch(device):
        raise UsageError(f"{option} {device!r}: expected auto, cpu, cuda or cuda:N")


def int_list(values: str | Iterable[str], option: str) -> tuple[int, ...]:
    """``"1,8,64"`` (or several such strings, a repeated option) → distinct positive ints,
    in the order given; UsageError naming ``option`` otherwise."""
    parts = [values] if isinstance(values, str) else list(values)
    numbers = []
    for part in (p.strip() for v in parts for p in v.split(",")):
        if not part:
            continue
        try:
            number = int(part)
        except ValueError:
            raise UsageError(f"{option} {part!r}: expected comma-separated integers, "
                             "e.g. 1,8,64") from None
        if number < 1:
            raise UsageError(f"{option} must be at least 1, got {number}")
        numbers.append(number)
    if not numbers:
        raise UsageError(f"{option}: give at least one value")
    return tuple(dict.fromkeys(numbers))
