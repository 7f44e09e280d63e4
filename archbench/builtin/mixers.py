"""Core plugin: a token mixer measured alone (``archbench mixers``). Builds the registered
mixer for its spec, feeds it a tensor in its layout, and adds the mixer's columns (analytic
and counted MACs, the config). Registered as an object holding the plugin manager, to find
the mixers the other plugins register."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from archbench import hookimpl
from archbench.core.errors import RowSkipped
from archbench.core.mixers import collect_mixers
from archbench.core.spec import ModelSpec
from archbench.mixers.alone import MIXER_ARCH, mixer_config

if TYPE_CHECKING:
    from torch import nn

    from archbench.measure.counting import AnalysisContext


class MixersAlone:
    def __init__(self, pm: Any) -> None:
        self.pm = pm
        self._mixers: dict | None = None

    def mixer(self, spec: ModelSpec):
        if self._mixers is None:
            self._mixers = collect_mixers(self.pm)
        return self._mixers[spec.config["mixer"]]

    @staticmethod
    def static_columns(spec: ModelSpec, mixer: Any) -> dict[str, Any]:
        cfg = mixer_config(spec)
        macs = mixer.macs(cfg)
        # ``arch``: the plugin that registered the mixer, as the mixers table always said
        columns = {"arch": mixer.plugin, "mixer": mixer.name, "layout": mixer.layout,
                   "tokens": cfg.tokens, "dim": cfg.dim, "heads": cfg.heads,
                   "window": cfg.window, "order": cfg.order, "macs_formula": macs,
                   "mixer_gmacs_formula": macs / 1e9}
        if "attention_mb_estimate" in spec.config:
            columns["attention_mb_estimate"] = spec.config["attention_mb_estimate"]
        return columns

    @hookimpl
    def archbench_build_model(self, spec: ModelSpec) -> nn.Module | None:
        if spec.arch.name != MIXER_ARCH.name:
            return None
        mixer = self.mixer(spec)
        if spec.config.get("skip"):
            raise RowSkipped(spec.config["skip"], self.static_columns(spec, mixer))
        return mixer.build(mixer_config(spec))

    @hookimpl
    def archbench_example_inputs(self, spec: ModelSpec, batch_size: int) -> tuple | None:
        if spec.arch.name != MIXER_ARCH.name:
            return None
        import torch

        cfg, layout = mixer_config(spec), self.mixer(spec).layout
        shape = {"tokens": (batch_size, cfg.tokens, cfg.dim),
                 "channels_first": (batch_size, cfg.dim, cfg.size, cfg.size),
                 "channels_last": (batch_size, cfg.size, cfg.size, cfg.dim)}[layout]
        return (torch.randn(shape, generator=torch.Generator().manual_seed(0)),)

    @hookimpl
    def archbench_flop_handlers(self, spec: ModelSpec) -> dict[str, Any] | None:
        if spec.arch.name != MIXER_ARCH.name:
            return None
        mixer = self.mixer(spec)
        return dict(mixer.flop_handlers()) if mixer.flop_handlers else None

    @hookimpl
    def archbench_analyze(self, ctx: AnalysisContext) -> dict[str, Any] | None:
        if ctx.spec.arch.name != MIXER_ARCH.name:
            return None
        columns = self.static_columns(ctx.spec, self.mixer(ctx.spec))
        counted, macs = ctx.flops.total, columns["macs_formula"]
        return {**columns, "macs_counted": counted,
                "macs_diff": (counted - macs) / macs if macs else None,
                "params": sum(p.numel() for p in ctx.model.parameters())}
