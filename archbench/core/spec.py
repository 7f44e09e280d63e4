"""The plain data that flows between the core and the plugins: architectures, their
variants and the model specs resolved from the user's targets.

Nothing here imports torch: ``archbench list`` reads these objects without it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from archbench.core.accuracy import Published
    from archbench.core.mixers import MixerSwap
    from archbench.core.schema import Schema

InputKind = Literal["image", "tokens"]


@dataclass(frozen=True)
class Variant:
    """One named configuration of an architecture.

    ``config`` holds the keyword arguments of the plugin's model constructor; every key can
    be overridden from the CLI with ``--set KEY=VALUE`` (the value is parsed to the type
    of the default and checked against the architecture's schema, see
    :mod:`archbench.core.schema`). ``img_size`` / ``seq_len`` is the variant's default
    input size. ``published``: its published ImageNet-1k top-1 with the source
    (:class:`archbench.core.accuracy.Published`), shown as ``top1_published``; None where
    nothing is published for exactly this configuration.
    """

    config: Mapping[str, Any]
    img_size: int | None = None
    seq_len: int | None = None
    description: str = ""
    published: Published | None = None


@dataclass(frozen=True)
class Architecture:
    """An architecture as a plugin registers it (see ``archbench_architectures``).

    ``token_mixer_types`` and ``mlp_types`` are module class names; the core sums fvcore's
    per-module counts over modules of those classes for the token-mixer breakdown.
    ``max_seq_len`` is the longest sequence a token model accepts (``None``: no limit).
    """

    name: str
    family: str
    paper: str
    input_kind: InputKind
    variants: Mapping[str, Variant]
    default_variant: str
    description: str = ""
    token_mixer_types: tuple[str, ...] = ()
    mlp_types: tuple[str, ...] = ()
    max_seq_len: int | None = None
    #: For an architecture with too many variants to list up front (every timm model):
    #: ``find_variants(pattern)`` returns the variants whose names match the fnmatch
    #: pattern, or an exact name's variant. It may import heavy libraries, so the core
    #: calls it only when the user names this architecture (``timm:convnext_tiny``,
    #: ``archbench list 'timm:*convnext*'``). Raise ``UsageError`` with suggestions for an
    #: unknown exact name.
    find_variants: Callable[[str], Mapping[str, Variant]] | None = None
    #: How ``--mixer NAME`` (``arch:variant+NAME``) puts another token mixer in every block;
    #: None: the architecture takes no swaps and the core refuses ``--mixer`` before
    #: anything is built. See :class:`archbench.mixers.MixerSwap` and docs/plugins.md.
    mixer_swap: MixerSwap | None = None
    #: What each config key (and the input size) may hold: types, ranges, divisibility,
    #: tuple lengths, cross-key rules and a size bound, checked by the core for every model
    #: before anything is built (:func:`archbench.core.schema.check_spec`). None: every key
    #: gets a field inferred from its default (a positive int, a finite float, ...).
    schema: Schema | None = None
    #: ``--breakdown``: module class names timed as norms (None: the core's default, torch's
    #: LayerNorm, GroupNorm, BatchNorm, InstanceNorm and RMSNorm and their subclasses).
    norm_types: tuple[str, ...] | None = None
    #: ``--breakdown``: module paths of the stages, ``{i}`` standing for 0, 1, 2, ...
    #: (``("layers.{i}",)``); patterns with ``{i}`` add up by index (HorNet's
    #: ``downsample_layers.{i}`` and ``stages.{i}``), a path without it is a stage of its
    #: own. Empty (or nothing matching): the model is one stage.
    stage_modules: tuple[str, ...] = ()
    #: ``--breakdown``: time spent outside modules, as lines of their own: a line name (a
    #: column ``NAME_ms``) → dotted paths of module-level functions, wrapped only during the
    #: profiled pass, and aten op names (``aten::roll``). Swin's ``window`` line is its
    #: window partition and reverse, roll and shift mask. A line's time is carved out of
    #: every module's, the mixer's included.
    time_regions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: Filled in by the core: the name of the plugin that registered it.
    plugin: str = ""

    def __post_init__(self) -> None:
        if self.find_variants is None and self.default_variant not in self.variants:
            raise ValueError(
                f"architecture {self.name!r}: default variant {self.default_variant!r} "
                f"is not one of {sorted(self.variants)}"
            )


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to build one model and feed it: one row of the report per batch size.

    ``config`` is the variant's config with the user's ``--set`` overrides applied.
    Exactly one of ``img_size`` (image models) and ``seq_len`` (token models) is set.
    """

    arch: Architecture
    variant: str
    config: Mapping[str, Any]
    img_size: int | None = None
    seq_len: int | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    #: ``--mixer NAME``: build the backbone with this token mixer (a name registered through
    #: ``archbench_token_mixers``) in every block instead of its own; None keeps its own.
    mixer: str | None = None
    #: The row's name where it is not ``arch:variant...`` (a token mixer measured alone).
    label: str | None = None

    @property
    def name(self) -> str:
        """``arch:variant``, plus the mixer swap and overrides, e.g.
        ``swin:tiny+msa`` or ``vit:small[depth=6]``: the target syntax that asks for it."""
        if self.label:
            return self.label
        base = f"{self.arch.name}:{self.variant}"
        if self.mixer:
            base += f"+{self.mixer}"
        if self.overrides:
            base += "[" + ",".join(f"{k}={v}" for k, v in self.overrides.items()) + "]"
        return base

    @property
    def input_desc(self) -> str:
        """Human-readable input size: ``224x224`` for images, ``seq 512`` for tokens."""
        if self.arch.input_kind == "tokens":
            return f"seq {self.seq_len}"
        return f"{self.img_size}x{self.img_size}"

    def replace(self, **changes: Any) -> ModelSpec:
        return dataclasses.replace(self, **changes)
