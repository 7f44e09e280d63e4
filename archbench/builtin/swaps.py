"""Core plugin: the columns of a ``--mixer`` swap, after checking that the built model holds
the swapped layers and that their counted MACs are the mixer's formula (the row fails
otherwise). Architecture plugins leave swapped specs to this plugin."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from archbench import hookimpl
from archbench.mixers import SWAP_LAYER_TYPE
from archbench.mixers.swap import swap_columns

if TYPE_CHECKING:
    from archbench.measure.counting import AnalysisContext


@hookimpl
def archbench_analyze(ctx: AnalysisContext) -> dict[str, Any] | None:
    if ctx.swap is None:
        return None
    layers = [m for m in ctx.model.modules()
              if type(m).__name__ == SWAP_LAYER_TYPE and getattr(m, "name", None) == ctx.swap.mixer.name]
    return swap_columns(ctx.swap, ctx.flops.macs_of_types([SWAP_LAYER_TYPE]), len(layers))
