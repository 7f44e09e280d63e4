"""A token mixer measured alone (``archbench mixers``), as a model spec like any other, so
it runs through the same build, count, time and evaluate path as a whole backbone. The
core's ``mixers`` plugin (:mod:`archbench.builtin.mixers`) builds, feeds and describes it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from archbench.core.errors import UsageError
from archbench.core.mixers import MixerConfig, TokenMixer, check_mixer_config
from archbench.core.settings import element_bytes
from archbench.core.spec import Architecture, ModelSpec, Variant

#: The architecture of every mixer-alone spec: not registered, never listed.
MIXER_ARCH = Architecture(
    name="mixer", family="token mixer", paper="each mixer's own (see the mixer column)",
    input_kind="image", variants={"alone": Variant(config={})}, default_variant="alone",
    description="one token mixer alone, on a square feature map",
)


def mixer_spec(mixer: TokenMixer, cfg: MixerConfig, budget_mb: float, dtype: str,
               batch: int) -> ModelSpec:
    """Mixer ``mixer`` at ``cfg`` (its ``size`` is the map side) as a spec; a config the
    mixer cannot take is a UsageError; a size whose attention matrix (at ``batch`` in
    ``dtype``) exceeds ``budget_mb`` is marked to be skipped rather than run."""
    mixer_config_check(mixer, cfg)
    config: dict[str, Any] = {**dataclasses.asdict(cfg), "mixer": mixer.name}
    if mixer.attention_bytes is not None:
        estimate = batch * mixer.attention_bytes(cfg) * element_bytes(dtype) / 2**20
        config["attention_mb_estimate"] = estimate
        if estimate > budget_mb:
            config["skip"] = (f"attention matrix ~{estimate:.0f} MB > memory budget "
                              f"{budget_mb:.0f} MB (--max-memory)")
    return ModelSpec(MIXER_ARCH, mixer.name, config, img_size=cfg.size, label=mixer.name)


def mixer_config_check(mixer: TokenMixer, cfg: MixerConfig) -> None:
    """The mixer's rules for ``cfg``; UsageError naming the map size."""
    try:
        check_mixer_config(mixer, cfg)
    except UsageError as exc:
        raise UsageError(f"{exc} (map {cfg.size}x{cfg.size})") from None


def mixer_config(spec: ModelSpec) -> MixerConfig:
    fields = {f.name for f in dataclasses.fields(MixerConfig)}
    return MixerConfig(**{k: v for k, v in spec.config.items() if k in fields})
