"""Core plugin: example inputs for any image or token model (runs after every other plugin)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from archbench import hookimpl
from archbench.core.spec import ModelSpec

if TYPE_CHECKING:
    from torch import nn

#: Fixed seed, so that every run feeds every model the same inputs.
SEED = 0


@hookimpl(trylast=True)
def archbench_example_inputs(spec: ModelSpec, model: nn.Module, batch_size: int) -> tuple[Any, ...]:
    import torch

    generator = torch.Generator().manual_seed(SEED)
    if spec.arch.input_kind == "tokens":
        vocab = int(spec.config.get("vocab_size", 1000))
        ids = torch.randint(0, vocab, (batch_size, spec.seq_len), generator=generator)
        return (ids,)
    in_chans = int(spec.config.get("in_chans", 3))
    size = (batch_size, in_chans, spec.img_size, spec.img_size)
    return (torch.randn(size, generator=generator),)
