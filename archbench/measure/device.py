"""The run's device and dtype on this machine: torch dtypes, device checks, precision flags
and the memory budget. The names live in :mod:`archbench.core.settings`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from archbench.core.errors import UsageError
from archbench.core.settings import DTYPES, RunSettings, check_device_name


def torch_dtype(name: str) -> Any:
    """The torch dtype of a ``--dtype`` name (fp32, tf32, fp16, bf16)."""
    import torch

    return getattr(torch, DTYPES[name][0])


def resolve_device(device: str) -> str:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` → a device that exists here; UsageError."""
    check_device_name(device)
    if device == "cpu":
        return device
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available():
        raise UsageError(f"--device {device}: CUDA is not available here (torch "
                         f"{torch.__version__}); use --device cpu")
    index = int(device.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        raise UsageError(f"--device {device}: only {torch.cuda.device_count()} CUDA "
                         "device(s) here")
    return device


def amp_dtype(device: str) -> str:
    """``--amp``: bf16, or fp16 on a GPU without bf16."""
    if device.startswith("cuda"):
        import torch

        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16"


def apply_precision_flags(settings: RunSettings) -> dict[str, Any]:
    """TF32 only when asked (``--dtype tf32``), cuDNN autotuning off; returns what was set."""
    import torch

    tf32 = DTYPES[settings.dtype][1]
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = False
    return {"tf32_matmul": tf32, "tf32_cudnn": tf32, "cudnn_benchmark": False,
            "float32_matmul_precision": torch.get_float32_matmul_precision()}


def memory_budget_mb(settings: RunSettings) -> float:
    """``--max-memory`` or 90% of the device's free memory, in MB."""
    if settings.max_memory_mb:
        return settings.max_memory_mb
    if settings.device.startswith("cuda"):
        import torch

        free, _ = torch.cuda.mem_get_info(settings.device)
        return 0.9 * free / 2**20
    import psutil

    return 0.9 * psutil.virtual_memory().available / 2**20


#: What a ``RuntimeError`` says when an allocation failed: CUDA's and MPS's "out of
#: memory", the CPU allocator's "DefaultCPUAllocator: can't allocate memory: you tried to
#: allocate N bytes" (Linux) and "not enough memory" (Windows), and the OS's ENOMEM text.
OOM_MESSAGES = ("out of memory", "not enough memory", "can't allocate memory",
                "cannot allocate memory")


def is_oom(exc: BaseException) -> bool:
    """An out-of-memory on any device: CUDA's, the CPU allocator's ``MemoryError``, or a
    ``RuntimeError`` saying so (:data:`OOM_MESSAGES`)."""
    import torch

    if isinstance(exc, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    message = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(m in message for m in OOM_MESSAGES)


@contextlib.contextmanager
def objects_frozen() -> Iterator[None]:
    """While a task builds, counts and times its models: the objects alive before it (the
    interpreter's and torch's, some hundreds of thousands) are moved out of the garbage
    collector's sight (``gc.freeze``), so that :func:`release_memory` after each model, and
    the collections Python starts by itself, walk only what the task made: 0.1 s a
    collection becomes a few ms. ``gc.unfreeze`` on leaving, so nothing stays frozen. Does
    nothing where other code has frozen objects already. Garbage frozen with the rest would
    stay until the task ends, so the young generations are collected first (cheap: what
    was made since the last collection, such as the previous task's leftovers)."""
    import gc

    if gc.get_freeze_count():
        yield
        return
    gc.collect(1)
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def release_memory() -> None:
    """Free what the last model left: Python garbage, and CUDA's cached blocks."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
