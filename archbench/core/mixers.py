"""Token mixers as plain data: what a plugin registers (``archbench_token_mixers``), the
config of one mixer layer, and how an architecture declares that it takes another mixer in
every block (``--mixer``). No torch here; plugins import these from :mod:`archbench.mixers`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from archbench.core.errors import UsageError

if TYPE_CHECKING:
    from torch import nn

    from archbench.core.spec import ModelSpec

Layout = Literal["tokens", "channels_first", "channels_last"]

#: The mixer the others are compared with (``archbench mixers`` crossover, ``as_msa``).
REFERENCE_MIXER = "msa"


@dataclass(frozen=True)
class MixerConfig:
    """One token-mixer layer: width ``dim``, ``heads`` (attention), ``window`` M (windowed
    attention), gnConv ``order``, the square feature map's side ``size`` (h = w), and
    ``extra_tokens`` that a sequence mixer sees beside the map (a class token)."""

    dim: int = 96
    heads: int = 3
    window: int = 7
    order: int = 3
    size: int = 56
    extra_tokens: int = 0

    @property
    def tokens(self) -> int:
        """N = hw + extra tokens: the number of tokens a sequence mixer sees."""
        return self.size * self.size + self.extra_tokens


@dataclass(frozen=True)
class TokenMixer:
    """A token mixer as a plugin registers it (see ``archbench_token_mixers``).

    ``build(cfg)`` returns the mixer module alone (import torch inside it), taking and
    returning one tensor in ``layout``: ``tokens`` (B, N, C), ``channels_first``
    (B, C, H, W) or ``channels_last`` (B, H, W, C). ``macs(cfg)`` is its analytic cost for
    one sample (MACs). ``check(cfg)`` raises
    :class:`archbench.UsageError` for a config the mixer cannot take, in words that name the
    config fields (``heads 5 does not divide dim 96``), since both ``archbench mixers`` and
    ``compare ... --mixer`` report it. ``attention_bytes(cfg)`` is the size of one sample's
    attention matrix in elements (to skip sizes that cannot fit); None for a mixer without
    one. ``flop_handlers()`` gives the fvcore handlers a count of this mixer needs beyond the
    core's, wherever it is built (alone, or swapped into any backbone).
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


@dataclass(frozen=True)
class SwapStage:
    """One stage of a backbone as a swapped-in mixer sees it: the mixer ``config`` (width,
    heads, window, order, map side) and the number of ``blocks`` that hold one mixer each."""

    config: MixerConfig
    blocks: int


@dataclass(frozen=True)
class MixerSwap:
    """An architecture's declaration that ``--mixer NAME`` can replace its token mixer in
    every block (``Architecture.mixer_swap``). The plugin supplies what differs between
    architectures; the core does the rest (checks each stage's config, builds the mixer in
    the host's layout, counts and verifies the swapped layers, writes the columns).

    ``stages(spec)`` returns a :class:`SwapStage` per stage of ``spec``'s model: its width,
    heads, window (at most the map), gnConv order and map side, and its number of blocks.
    ``layout`` is the layout of the tensor around the token mixer in a block.
    ``notes(spec, mixer)`` may add lines to the row's JSON details (e.g. how a class token
    is handled). The core calls ``archbench_build_model(spec, swap)`` with a factory:
    ``swap(stage)`` returns a fresh mixer layer for one block of that stage.
    """

    stages: Callable[[ModelSpec], Sequence[SwapStage]]
    layout: Layout
    notes: Callable[[ModelSpec, TokenMixer], Sequence[str]] | None = None


def collect_mixers(pm: Any) -> dict[str, TokenMixer]:
    """Every mixer the plugins of ``pm`` register, by name. A plugin whose hook fails, or
    that registers a name already taken, costs a warning (the first registered keeps the
    name; see :meth:`archbench.plugins.PluginManager.collect`)."""
    return {mixer.name: mixer for mixer in pm.collect("archbench_token_mixers")}


def find_mixer(mixers: Mapping[str, TokenMixer], name: str) -> TokenMixer:
    """The registered mixer ``name``; UsageError with suggestions for an unknown one."""
    if name not in mixers:
        close = difflib.get_close_matches(name, list(mixers), n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise UsageError(f"unknown token mixer {name!r}{hint} (registered: "
                         f"{', '.join(sorted(mixers))})")
    return mixers[name]


def check_mixer_config(mixer: TokenMixer, cfg: MixerConfig) -> None:
    """The generic rules, then the mixer's own ``check``; raises UsageError."""
    for key in ("dim", "heads", "window", "order", "size"):
        if getattr(cfg, key) < 1:
            raise UsageError(f"{key} must be at least 1, got {getattr(cfg, key)}")
    if mixer.check is not None:
        mixer.check(cfg)
