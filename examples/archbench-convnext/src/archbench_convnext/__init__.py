"""archbench plugin: ConvNeXt (Liu et al. 2022), a third-party plugin package.

Registered in this package's ``pyproject.toml``::

    [project.entry-points.archbench]
    convnext = "archbench_convnext"

What it adds, one example of each thing a plugin can register:

- the architecture ``convnext`` (``archbench_architectures``, ``archbench_build_model``,
  ``archbench_analyze``), with a config schema (``Architecture.schema``: what each config
  key may hold, checked by the core before anything is built) and ``--mixer`` swaps
  (``Architecture.mixer_swap``: ``convnext:tiny+msa``);
- the token mixer ``dwconv`` (``archbench_token_mixers``), for ``archbench mixers`` and for
  ``--mixer`` in any architecture that takes swaps (``hornet:tiny+dwconv``);
- an fvcore FLOP handler for ``aten::mean`` (``archbench_flop_handlers``), for its own models.

This module stays light (no torch import) so ``archbench list`` answers fast; the model
lives in :mod:`archbench_convnext.model` and is imported only when a model is built. The
FLOP handler reads traced values through :mod:`archbench.formulas`, so it needs no torch.
"""

from __future__ import annotations

import math
from typing import Any

from archbench import Architecture, Field, ModelSpec, Schema, Variant, hookimpl
from archbench.formulas import constant_list, msa_macs, padded_side, shape_of, wmsa_macs
from archbench.mixers import MixerConfig, MixerSwap, SwapStage, TokenMixer

__version__ = "0.1.0"

NAME = "convnext"
#: Window M of the W-MSA comparison columns, and of W-MSA swapped into ConvNeXt (Swin's 7).
WMSA_WINDOW = 7
#: Channels per head of attention swapped into ConvNeXt (Swin's: 32).
SWAP_HEAD_DIM = 32
#: gnConv order per stage of gnConv swapped into ConvNeXt (HorNet's: 2, 3, 4, 5).
SWAP_ORDERS = (2, 3, 4, 5)
#: Kernel of the registered ``dwconv`` mixer: ConvNeXt's 7x7. ``MixerConfig`` has no kernel
#: field, so the mixer's kernel is fixed; ``--set kernel_size=9`` changes the model's own.
DWCONV_KERNEL = 7


def _variant(depths: tuple[int, ...], dim: int, desc: str) -> Variant:
    config = {
        "depths": depths,
        "dims": tuple(dim * 2**i for i in range(len(depths))),
        "kernel_size": 7,
        "mlp_ratio": 4,
        "layer_scale_init_value": 1e-6,
        "num_classes": 1000,
    }
    return Variant(config=config, img_size=224, description=desc)


def stage_sides(spec: ModelSpec) -> list[int]:
    """Side of each stage's feature map: the stem's stride 4, then 2 per downsampling."""
    return [spec.img_size // (4 * 2**i) for i in range(len(spec.config["depths"]))]


# --------------------------------------------------------------------------- --mixer swaps


def swap_stages(spec: ModelSpec) -> list[SwapStage]:
    """Each stage as a swapped-in mixer sees it: its width, heads of 32 channels, window 7
    (at most the map), HorNet's gnConv order, map side, and its number of blocks.

    A module-level function, not a lambda: specs (and with them ``Architecture``) are
    pickled when tasks run elsewhere. Called after the schema accepted ``spec``.
    """
    cfg = spec.config
    return [
        SwapStage(
            MixerConfig(
                dim=dim,
                heads=max(1, dim // SWAP_HEAD_DIM),
                window=min(WMSA_WINDOW, side),
                order=SWAP_ORDERS[min(i, len(SWAP_ORDERS) - 1)],
                size=side,
            ),
            blocks=depth,
        )
        for i, (depth, dim, side) in enumerate(zip(cfg["depths"], cfg["dims"], stage_sides(spec)))
    ]


def swap_notes(spec: ModelSpec, mixer: TokenMixer) -> list[str]:
    """Lines for the row's ``mixer_formula.notes`` (JSON) of a swapped ConvNeXt."""
    return [
        "the mixer replaces each block's depth-wise convolution only; the block's "
        "LayerNorm, inverted-bottleneck MLP and layer scale stay"
    ]


# --------------------------------------------------------------------------- config schema


def image_divisible_by_stride(spec: ModelSpec) -> str | None:
    """A cross-key rule: the stem's stride 4, then 2 per downsampling layer, must divide the
    image. Module-level (architectures are pickled); it runs after every field passed."""
    stride = 4 * 2 ** (len(spec.config["depths"]) - 1)
    if spec.img_size % stride:
        return (f"image size {spec.img_size} is not divisible by the total stride {stride} "
                f"of {len(spec.config['depths'])} stages")
    return None


def param_estimate(spec: ModelSpec) -> float:
    """Parameters without building (biases and norms left out): per block 2·ratio·C² for
    the MLP and k²·C for the depth-wise conv, 4·C·C' per downsampling, stem and head."""
    cfg = spec.config
    dims, ratio, k = cfg["dims"], cfg["mlp_ratio"], cfg["kernel_size"]
    blocks = sum(d * (2 * ratio * c * c + k * k * c) for d, c in zip(cfg["depths"], dims))
    downsampling = sum(4 * a * b for a, b in zip(dims, dims[1:]))
    return blocks + downsampling + 48 * dims[0] + dims[-1] * cfg["num_classes"]


SCHEMA = Schema(
    fields={
        "depths": Field(tuple, items=Field(int, minimum=1, maximum=1000), max_length=8),
        "dims": Field(tuple, items=Field(int, minimum=1, maximum=65536), length="depths"),
        "kernel_size": Field(int, minimum=1, maximum=63, odd=True),
        "mlp_ratio": Field(int, minimum=1, maximum=64),
        "layer_scale_init_value": Field(float, minimum=0),
        "num_classes": Field(int, minimum=1, maximum=1 << 20),
    },
    rules=(image_divisible_by_stride,),
    params=param_estimate,
)

CONVNEXT = Architecture(
    name=NAME,
    family="ConvNeXt",
    paper="Liu et al. 2022, A ConvNet for the 2020s (CVPR)",
    input_kind="image",
    default_variant="tiny",
    description="a pure ConvNet modernised toward Swin: 7x7 depth-wise conv as token mixer",
    variants={
        "tiny": _variant((3, 3, 9, 3), 96, "ConvNeXt-T"),
        "small": _variant((3, 3, 27, 3), 96, "ConvNeXt-S"),
    },
    token_mixer_types=("DepthwiseConv2d",),
    mlp_types=("PointwiseLinear",),
    # The block's token mixer takes and returns (B, C, H, W): the host layout is
    # channels_first; the core adapts mixers of other layouts (msa takes tokens).
    mixer_swap=MixerSwap(stages=swap_stages, layout="channels_first", notes=swap_notes),
    # What each config key may hold; the core checks every model against it before
    # anything is built, so no archbench_validate hook is needed.
    schema=SCHEMA,
)


@hookimpl
def archbench_architectures() -> list[Architecture]:
    return [CONVNEXT]


@hookimpl
def archbench_build_model(spec: ModelSpec, swap):
    """ConvNeXt; with ``swap`` (``convnext:tiny+msa``) the swapped mixer in every block.

    ``swap`` is None for an unswapped spec, else the core's factory: ``swap(stage)``
    returns a fresh mixer layer for one block of that stage, in the host layout. It is
    passed straight through as the model's ``mixer_factory``. No default value for
    ``swap``: pluggy passes only arguments without one.
    """
    if spec.arch.name != NAME:
        return None
    from archbench_convnext.model import ConvNeXt

    return ConvNeXt(**spec.config, mixer_factory=swap)


# --------------------------------------------------------------------------- FLOP handler


def mean_macs_handle(inputs: list[Any], outputs: list[Any]) -> int:
    """fvcore handle for ``aten::mean``: the head's global average pool ``x.mean([-2, -1])``.

    Convention: a mean of n elements is n - 1 adds and one multiply by 1/n, counted as n
    MACs per output element, i.e. one per input element. fvcore leaves ``aten::mean``
    uncounted (listed in ``unsupported_ops``); for ConvNeXt-T at 224 this adds
    7·7·768 = 37,632 MACs.

    ``inputs`` of ``aten::mean.dim`` are (self, dim, keepdim, dtype); ``dim`` is traced as a
    ``prim::ListConstruct`` of constants, which :func:`archbench.formulas.constant_list`
    reads ([-2, -1] here; None where a dim is computed at run time). ``x.mean()`` traces
    as ``aten::mean(self, dtype)``.
    """
    shape, out = shape_of(inputs[0]), math.prod(shape_of(outputs[0]))
    dims = constant_list(inputs[1]) if len(inputs) == 4 else None
    if not dims:  # x.mean(), dim=[] (every element) or dims unknown at trace time
        return math.prod(shape)
    n = math.prod(shape[d] for d in dims)  # the reduced sides: H·W for [-2, -1]
    return n * out


@hookimpl
def archbench_flop_handlers(spec: ModelSpec) -> dict[str, Any] | None:
    """Handlers for this plugin's own models only (swapped ones too: their head is the same).
    A swapped mixer's own handlers (``TokenMixer.flop_handlers``) are added by the core."""
    if spec.arch.name != NAME:
        return None
    return {"aten::mean": mean_macs_handle}


# --------------------------------------------------------------------------- token mixer


def dwconv_macs(cfg: MixerConfig) -> int:
    """One ``dwconv`` layer, per sample: H·W·C·k² MACs (one k×k filter per channel at every
    position of the zero-padded map). The bias add is not counted, as fvcore does not."""
    return cfg.size * cfg.size * cfg.dim * DWCONV_KERNEL**2


def build_dwconv(cfg: MixerConfig) -> Any:
    """The mixer alone, taking and returning (B, C, H, W); torch is imported here only."""
    from archbench_convnext.model import DepthwiseConv2d

    return DepthwiseConv2d(cfg.dim, DWCONV_KERNEL)


DWCONV = TokenMixer(
    name="dwconv",
    description=f"ConvNeXt's {DWCONV_KERNEL}x{DWCONV_KERNEL} depth-wise convolution, "
    f"H*W*C*{DWCONV_KERNEL**2} MACs",
    paper=CONVNEXT.paper,
    build=build_dwconv,
    macs=dwconv_macs,
    layout="channels_first",
    # No ``check``: the core's generic check (every field at least 1) is all a depth-wise
    # convolution needs; heads, window and order do not apply to it.
)


@hookimpl
def archbench_token_mixers() -> list[TokenMixer]:
    return [DWCONV]


# --------------------------------------------------------------------------- analysis


@hookimpl
def archbench_analyze(ctx) -> dict[str, Any] | None:
    """Depth-wise conv cost, H·W·C·k² MACs per block, beside what MSA would cost there."""
    if ctx.spec.arch.name != NAME or ctx.swap is not None:
        return None  # a swapped model's mixer columns come from the core
    cfg = ctx.spec.config
    k = cfg["kernel_size"]
    stages, total, as_msa, as_wmsa = [], 0, 0, 0
    for i, (depth, dim, side) in enumerate(zip(cfg["depths"], cfg["dims"], stage_sides(ctx.spec))):
        tokens = side * side
        window = min(WMSA_WINDOW, side)  # Swin's rule: a window never exceeds the map
        per_block = tokens * dim * k * k
        stages.append(
            {"stage": i + 1, "side": side, "dim": dim, "blocks": depth, "macs_per_block": per_block}
        )
        total += depth * per_block
        as_msa += depth * msa_macs(tokens, dim)
        # W-MSA pads the feature map up to whole windows
        as_wmsa += depth * wmsa_macs(padded_side(side, window) ** 2, dim, window)
    return {
        "mixer": f"dwconv{k}x{k}",
        "mixer_gmacs_formula": total / 1e9,
        "mixer_gmacs_as_msa": as_msa / 1e9,
        "mixer_gmacs_as_wmsa": as_wmsa / 1e9,
        "mixer_msa_saving": as_msa / total,
        "mixer_formula": {
            "equation": "depth-wise k x k conv: H*W*C*k^2 MACs per block",
            "stages": stages,
            "notes": [
                "the depth-wise conv's bias add (H*W*C per block) is not counted, "
                "as fvcore does not count it",
                "the head's global average pool (aten::mean) is counted by this plugin's "
                "handler, one MAC per input element; it is outside the token mixer",
            ],
        },
    }
