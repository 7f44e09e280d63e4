"""``--mixer`` swaps in whole backbones, done by the core for every architecture that
declares :class:`archbench.mixers.MixerSwap`: the check of each stage before anything is
built, the factory the plugin's model calls for each block, and the analytic columns and
verification after counting. Light at import: torch only inside :meth:`Swap.__call__`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from archbench.core.errors import ORIGIN_ATTRIBUTE, UsageError
from archbench.core.mixers import (
    REFERENCE_MIXER,
    SwapStage,
    TokenMixer,
    check_mixer_config,
    find_mixer,
)
from archbench.core.spec import Architecture, ModelSpec
from archbench.formulas import msa_macs, padded_side, wmsa_macs

if TYPE_CHECKING:
    from torch import nn

#: Counted MACs of the swapped layers may differ from the mixer's formula by this much
#: before the row fails: the formulas are exact for the built-in mixers (0 difference).
VERIFY_TOLERANCE = 0.01


@dataclass(frozen=True)
class Swap:
    """Mixer ``mixer`` in every block of ``spec``'s model. ``swap(stage)`` builds a fresh
    layer for one block of that stage, taking and returning the host's layout."""

    spec: ModelSpec
    mixer: TokenMixer
    stages: tuple[SwapStage, ...]

    @property
    def mixer_layout(self) -> str:
        """The layout the mixer itself takes (``tokens`` mixers see a sequence; the others a
        2-D map, so a class token has no place in them)."""
        return self.mixer.layout

    @property
    def host_layout(self) -> str:
        """The layout of the tensor around the mixer in the host's blocks (what
        ``swap(stage)`` takes and returns), as the architecture declares it."""
        return self.spec.arch.mixer_swap.layout

    def flop_handlers(self) -> dict[str, Any]:
        """The mixer's counting handlers, for the whole model: they count the same ops
        elsewhere in the host too (real work, e.g. a host's multiplies). Its ``None``
        markers (ops it deliberately leaves uncounted) are left out, so that a host's
        uncounted ops are still listed as such."""
        handlers = self.mixer.flop_handlers() if self.mixer.flop_handlers else {}
        return {op: handle for op, handle in handlers.items() if handle is not None}

    @property
    def blocks(self) -> int:
        return sum(stage.blocks for stage in self.stages)

    def __call__(self, stage: int) -> nn.Module:
        from archbench.mixers.layer import TokenMixerLayer

        cfg = self.stages[stage].config
        return TokenMixerLayer(self.mixer.build(cfg), self.host_layout, self.mixer_layout,
                               cfg.size, self.mixer.name)

    def formula_macs(self) -> int:
        return sum(self.mixer.macs(s.config) * s.blocks for s in self.stages)


def check_swappable(arch: Architecture, name: str, mixer: str | None) -> None:
    """UsageError for a mixer asked of an architecture that declares no swaps."""
    if mixer and arch.mixer_swap is None:
        raise UsageError(f"{name}: architecture {arch.name!r} does not support token-mixer "
                         "swaps (its plugin declares no Architecture.mixer_swap)")


def plan_swap(spec: ModelSpec, mixers: Mapping[str, TokenMixer]) -> Swap | None:
    """The swap ``spec`` asks for, checked stage by stage; None without ``--mixer``.
    Raises UsageError (in ``compare``'s terms) for an architecture that declares no swaps,
    an unknown mixer, or a stage the mixer cannot take."""
    if not spec.mixer:
        return None
    check_swappable(spec.arch, spec.name, spec.mixer)
    declared = spec.arch.mixer_swap
    try:
        mixer = find_mixer(mixers, spec.mixer)
    except UsageError as exc:
        raise UsageError(f"{spec.name}: {exc}") from None
    stages = []
    for i, stage in enumerate(declared.stages(spec)):
        if mixer.layout != "tokens":  # a 2-D mixer sees the map only
            stage = dataclasses.replace(
                stage, config=dataclasses.replace(stage.config, extra_tokens=0))
        try:
            check_mixer_config(mixer, stage.config)
        except UsageError as exc:
            raise UsageError(f"{spec.name}: token mixer {spec.mixer!r} in stage {i + 1} "
                             f"(dim {stage.config.dim}, map {stage.config.size}x"
                             f"{stage.config.size}): {exc}") from None
        stages.append(stage)
    return Swap(spec, mixer, tuple(stages))


def swap_columns(swap: Swap, counted_macs: int, layers_found: int) -> dict[str, Any]:
    """The analytic columns of a swapped backbone, after checking that the model holds
    the swapped layers and that their counted MACs are the mixer's formula."""
    formula = swap.formula_macs()
    if layers_found != swap.blocks:
        raise SwapNotApplied(swap, f"+{swap.mixer.name}: the model holds {layers_found} "
                             f"swapped layer(s) where {swap.blocks} blocks should: it does "
                             "not put swap(stage) in every block")
    if formula and abs(counted_macs - formula) > VERIFY_TOLERANCE * formula:
        raise SwapNotApplied(swap, f"+{swap.mixer.name}: the swapped layers count "
                             f"{counted_macs / 1e9:.4g} GMACs where the mixer's formula gives "
                             f"{formula / 1e9:.4g}")
    as_msa = as_wmsa = 0
    stages = []
    for stage in swap.stages:
        cfg, per_layer = stage.config, swap.mixer.macs(stage.config)
        window = min(cfg.window, cfg.size)
        as_msa += msa_macs(cfg.tokens, cfg.dim) * stage.blocks
        as_wmsa += wmsa_macs(padded_side(cfg.size, window) ** 2, cfg.dim, window) * stage.blocks
        stages.append({**dataclasses.asdict(cfg), "blocks": stage.blocks,
                       "macs_per_layer": per_layer, "macs": per_layer * stage.blocks})
    notes = swap.spec.arch.mixer_swap.notes
    return {
        "mixer": swap.mixer.name,
        "mixer_gmacs_formula": formula / 1e9,
        "mixer_gmacs_as_msa": as_msa / 1e9,
        "mixer_gmacs_as_wmsa": as_wmsa / 1e9,
        "mixer_msa_saving": as_msa / formula if formula else None,
        "mixer_formula": {
            "equation": f"{swap.mixer.name}: {swap.mixer.description} (analytic MACs of the "
            f"registered mixer, plugin {swap.mixer.plugin!r}), per stage; as MSA: Swin eq. (1); "
            "as W-MSA: Swin eq. (2) with the stage's window, map padded to a multiple of it",
            "swapped": True,
            "reference": REFERENCE_MIXER,
            "stages": stages,
            "macs": formula,
            "counted_macs": counted_macs,
            "notes": ["swap: every block's token mixer is replaced; the core checked "
                      f"that the model holds {layers_found} swapped layers counting "
                      f"{counted_macs / 1e9:.4g} GMACs", *(notes(swap.spec, swap.mixer)
                                                       if notes else [])],
        },
    }


class SwapNotApplied(RuntimeError):
    """The built model does not hold the swap its row claims: the row fails, and its error
    names the architecture's plugin and its build hook, which made the model."""

    def __init__(self, swap: Swap, message: str) -> None:
        super().__init__(message)
        setattr(self, ORIGIN_ATTRIBUTE, (swap.spec.arch.plugin, "archbench_build_model"))
