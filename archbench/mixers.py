"""Token mixers on their own: the data classes plugins register (``archbench_token_mixers``),
the registry, and the helpers plugins use for ``--mixer`` swaps in whole backbones. The
``archbench mixers`` sweep is in :mod:`archbench.mixer_sweep`.

Light at import (no torch, no pandas): ``archbench --help`` imports this module.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from archbench.spec import UsageError

if TYPE_CHECKING:
    from torch import nn

Layout = Literal["tokens", "channels_first", "channels_last"]

#: Mixers whose latency is compared against global MSA for the crossover table.
REFERENCE_MIXER = "msa"


@dataclass(frozen=True)
class MixerConfig:
    """One token-mixer layer: width ``dim``, ``heads`` (attention), ``window`` M (windowed
    attention), gnConv ``order``, and the square feature map's side ``size`` (h = w)."""

    dim: int = 96
    heads: int = 3
    window: int = 7
    order: int = 3
    size: int = 56
    batch: int = 1

    @property
    def tokens(self) -> int:
        """hw = size², the number of tokens the mixer sees."""
        return self.size * self.size


@dataclass(frozen=True)
class TokenMixer:
    """A token mixer as a plugin registers it (see ``archbench_token_mixers``).

    ``build(cfg)`` returns the mixer module alone (import torch inside it), taking and
    returning one tensor in ``layout``: ``tokens`` (B, N, C), ``channels_first``
    (B, C, H, W) or ``channels_last`` (B, H, W, C). ``macs(cfg)`` is its analytic cost for
    one sample (MACs). ``check(cfg)`` raises :class:`archbench.UsageError` for a config the
    mixer cannot take. ``attention_bytes(cfg)`` is the size of the attention matrix of one
    sample in elements (the sweep multiplies it by the batch and the element size to skip
    sizes that cannot fit); None for a mixer without one. ``flop_handlers()`` gives fvcore
    handlers the count of this mixer needs beyond the core's.
    """

    name: str
    description: str
    paper: str
    build: Callable[[MixerConfig], nn.Module]
    macs: Callable[[MixerConfig], int]
    layout: Layout = "tokens"
    check: Callable[[MixerConfig], None] | None = None
    attention_bytes: Callable[[MixerConfig], int] | None = None
    flop_handlers: Callable[[], Mapping[str, Any]] | None = None
    #: Filled in by the core: the plugin that registered it.
    plugin: str = ""


# -- registry ----------------------------------------------------------------------------


def collect_mixers(pm: Any) -> dict[str, TokenMixer]:
    """Every registered mixer by name; two plugins registering one name is a UsageError."""
    mixers: dict[str, TokenMixer] = {}
    for impl in pm.hook.archbench_token_mixers.get_hookimpls():
        for mixer in impl.function() or []:
            mixer = dataclasses.replace(mixer, plugin=impl.plugin_name)
            if mixer.name in mixers:
                raise UsageError(
                    f"token mixer {mixer.name!r} is registered twice: by plugin "
                    f"{mixers[mixer.name].plugin!r} and by plugin {mixer.plugin!r}"
                )
            mixers[mixer.name] = mixer
    return mixers


_REGISTRY: dict[str, TokenMixer] | None = None


def registered_mixers(pm: Any = None) -> dict[str, TokenMixer]:
    """The mixers of ``pm`` (remembered for later lookups), or of a default plugin manager."""
    global _REGISTRY
    if pm is not None:
        _REGISTRY = collect_mixers(pm)
    elif _REGISTRY is None:
        from archbench.plugins import get_plugin_manager

        _REGISTRY = collect_mixers(get_plugin_manager())
    return _REGISTRY


def unknown_mixer(name: str, names: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(names), n=3, cutoff=0.4)
    hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
    return f"unknown token mixer {name!r}{hint} (registered: {', '.join(sorted(names))})"


def get_token_mixer(name: str) -> TokenMixer:
    """The registered mixer ``name``; UsageError with suggestions for an unknown name."""
    mixers = registered_mixers()
    if name not in mixers:
        raise UsageError(unknown_mixer(name, list(mixers)))
    return mixers[name]


def check_mixer_config(mixer: TokenMixer, cfg: MixerConfig) -> None:
    """The generic rules, then the mixer's own ``check``; raises UsageError."""
    for key in ("dim", "heads", "window", "order", "size", "batch"):
        if getattr(cfg, key) < 1:
            raise UsageError(f"--{key} must be at least 1, got {getattr(cfg, key)}")
    if mixer.check is not None:
        mixer.check(cfg)


# -- helpers for plugins: swaps in whole backbones ---------------------------------------


def build_swap(name: str, cfg: MixerConfig, host_layout: Layout) -> nn.Module:
    """Mixer ``name`` built for ``cfg``, wrapped to take and return ``host_layout``
    (a :class:`archbench.mixer_layer.TokenMixerLayer`)."""
    from archbench.mixer_layer import TokenMixerLayer

    mixer = get_token_mixer(name)
    return TokenMixerLayer(mixer.build(cfg), host_layout, mixer.layout, cfg.size, name)


#: Class name of the swap wrapper, for ``Architecture.token_mixer_types``.
SWAP_LAYER_TYPE = "TokenMixerLayer"


def swap_columns(
    name: str,
    layers: Sequence[tuple[MixerConfig, int]],
    as_msa: int,
    as_wmsa: int | None,
    notes: Sequence[str] = (),
) -> dict[str, Any]:
    """The shared analytic columns for a backbone whose mixer layers are all ``name``:
    ``layers`` is (config, number of blocks) per stage; ``as_msa`` / ``as_wmsa`` are the same
    layers' costs as global MSA / W-MSA (MACs)."""
    mixer = get_token_mixer(name)
    stages = []
    total = 0
    for cfg, blocks in layers:
        per_layer = mixer.macs(cfg)
        total += per_layer * blocks
        stages.append(
            {
                **dataclasses.asdict(cfg),
                "blocks": blocks,
                "macs_per_layer": per_layer,
                "macs": per_layer * blocks,
            }
        )
    columns: dict[str, Any] = {
        "mixer": name,
        "mixer_gmacs_formula": total / 1e9,
        "mixer_gmacs_as_msa": as_msa / 1e9,
        "mixer_msa_saving": as_msa / total if total else None,
        "mixer_formula": {
            "equation": f"{name}: {mixer.description} (analytic MACs of the registered mixer, "
            f"plugin {mixer.plugin!r}), per stage",
            "swapped": True,
            "stages": stages,
            "macs": total,
            "notes": ["--mixer swap: every block's token mixer is replaced", *notes],
        },
    }
    if as_wmsa is not None:
        columns["mixer_gmacs_as_wmsa"] = as_wmsa / 1e9
    return columns
