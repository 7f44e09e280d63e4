"""archbench plugin: HorNet (Rao et al., NeurIPS 2022), registered under the ``archbench`` entry point.

This module stays light (no torch import) so that ``archbench list`` answers fast; the
model lives in :mod:`archbench_hornet.model` and is imported when a model is built. The FLOP
handlers and the gnConv cost formulas (:mod:`archbench_hornet.flops`, re-exported here) read
traced shapes only, so they need no torch import either.

FLOP convention (MACs, fvcore's): see ``COUNT_NOTES`` and docs/hornet.md.
"""

from __future__ import annotations

from typing import Any

from archbench import Architecture, Field, ModelSpec, Schema, UsageError, Variant, hookimpl
from archbench.core.accuracy import Published
from archbench.core.schema import MAX_CLASSES, MAX_DEPTH, MAX_WIDTH
from archbench.formulas import msa_macs, padded_side, wmsa_macs
from archbench.mixers import MixerConfig, MixerSwap, SwapStage, TokenMixer
from archbench_hornet.flops import (
    COUNT_NOTES,
    HANDLERS,
    gnconv_dims,
    gnconv_macs,
    paper_bound_macs,
)
from archbench_hornet.flops import fft_macs as fft_macs  # re-exported
from archbench_hornet.flops import irfft2_handle as irfft2_handle  # re-exported
from archbench_hornet.flops import mul_handle as mul_handle  # re-exported
from archbench_hornet.flops import rfft2_handle as rfft2_handle  # re-exported

NAME = "hornet"
#: Window of the W-MSA comparison (Swin's M = 7).
WMSA_WINDOW = 7
#: Highest gnConv order accepted (the paper uses 2..5).
MAX_ORDER = 5


def _variant(base_dim: int, gf: bool, gf_sizes: tuple, img: int, desc: str,
             published: Published | None = None) -> Variant:
    config = {
        "base_dim": base_dim,
        "depths": (2, 3, 18, 2),
        "orders": (2, 3, 4, 5),
        "kernel_size": 7,
        "gnconv_scale": 1.0 / 3.0,
        "gf": gf,
        "gf_sizes": gf_sizes,
        "layer_scale_init": 1e-6,
        "drop_path_rate": 0.0,
        "num_classes": 1000,
    }
    return Variant(config=config, img_size=img, description=desc, published=published)


#: HorNet's ImageNet-1k top-1 (trained on ImageNet-1k alone, 224, single crop), as the
#: official model zoo lists it for the released checkpoints. HorNet-L (7x7, GF, GF at 384)
#: is pre-trained on ImageNet-22k; its ImageNet-1k figures could not be confirmed here, and
#: the released L checkpoints are ImageNet-22k models: left empty.
HORNET_PAPER = ("Rao et al. 2022, HorNet (NeurIPS; arXiv:2207.14284), Table 1; "
          "raoyongming/HorNet README model zoo")
PUBLISHED = {
    "tiny": Published(82.8, HORNET_PAPER),
    "tiny_gf": Published(83.0, HORNET_PAPER),
    "small": Published(83.8, HORNET_PAPER),
    "small_gf": Published(84.0, HORNET_PAPER),
    "base": Published(84.2, HORNET_PAPER),
    "base_gf": Published(84.3, HORNET_PAPER),
}


_GF224 = ((14, 8), (7, 4))
_GF384 = ((24, 13), (12, 7))

#: Head width of attention swapped into HorNet (Swin's: 32 channels per head).
SWAP_HEAD_DIM = 32


def stage_resolutions(img_size: int) -> list[int]:
    """Side of the feature map in each stage: stem conv 4/4, then 2/2 convs (floor)."""
    sides = [img_size // 4]
    for _ in range(3):
        sides.append(sides[-1] // 2)
    return sides


def swap_stages(spec: ModelSpec) -> list[SwapStage]:
    """Each stage as a swapped-in mixer sees it: its width, heads of 32 channels (Swin's),
    window 7 (at most the map), its gnConv order and map side, and its number of blocks."""
    cfg = spec.config
    return [
        SwapStage(MixerConfig(dim=cfg["base_dim"] * 2**i,
                              heads=max(1, cfg["base_dim"] * 2**i // SWAP_HEAD_DIM),
                              window=min(WMSA_WINDOW, side), order=cfg["orders"][i],
                              size=side), cfg["depths"][i])
        for i, side in enumerate(stage_resolutions(spec.img_size))
    ]


# --------------------------------------------------------------------------- config schema


def orders_halve_widths(spec: ModelSpec) -> str | None:
    """gnConv of order n halves its width n - 1 times: 2^(n-1) must divide the stage width."""
    cfg = spec.config
    for i, order in enumerate(cfg["orders"]):
        dim = cfg["base_dim"] * 2**i
        if dim % 2 ** (order - 1):
            return (f"stage {i + 1} width {dim} is not divisible by 2^(order-1) = "
                    f"{2 ** (order - 1)} (gnConv order {order} halves it {order - 1} times)")
    return None


def gf_filters_fit(spec: ModelSpec) -> str | None:
    """GF filter rule: each (h, w) must be the rfft2 half-spectrum of an h x h grid,
    w == h // 2 + 1. A filter made for another resolution than the stage's is resized by
    bilinear interpolation (official behaviour), so it need not equal the stage's grid."""
    cfg = spec.config
    if not cfg["gf"]:
        return None  # the 7x7 variants ignore gf_sizes
    sides = stage_resolutions(spec.img_size)
    for (h, w), stage in zip(cfg["gf_sizes"], (3, 4)):
        side = sides[stage - 1]
        if w != h // 2 + 1:
            return (f"GF filter {h}x{w} of stage {stage} is not an rfft2 half-spectrum: "
                    f"need w == h//2+1 (= {h // 2 + 1} for h={h}); for this stage's "
                    f"{side}x{side} map use ({side}, {side // 2 + 1})")
        dims = gnconv_dims(cfg["base_dim"] * 2 ** (stage - 1), cfg["orders"][stage - 1])
        if sum(dims) % 2:
            return (f"GF stage {stage} splits {sum(dims)} channels in two halves; need an "
                    "even count")
    return None


def param_estimate(spec: ModelSpec) -> float:
    """Parameters without building: about 12C² per block (gnConv's projections 3C² and at
    most C² for its g_k, the MLP 8C²), 8C² per downsampling, stem and head."""
    cfg = spec.config
    widths = [cfg["base_dim"] * 2**i for i in range(4)]
    blocks = sum(d * 12 * w * w for d, w in zip(cfg["depths"], widths))
    return (blocks + sum(8 * w * w for w in widths[:-1]) + 48 * widths[0]
            + widths[-1] * cfg["num_classes"])


_STAGES = 4
SCHEMA = Schema(
    fields={
        "img_size": Field(int, minimum=32),  # 4 stages, total stride 32
        "base_dim": Field(int, minimum=1, maximum=MAX_WIDTH),
        "depths": Field(tuple, items=Field(int, minimum=1, maximum=MAX_DEPTH), length=_STAGES),
        "orders": Field(tuple, items=Field(int, minimum=1, maximum=MAX_ORDER), length=_STAGES),
        "kernel_size": Field(int, minimum=1, maximum=255, odd=True),
        "gnconv_scale": Field(float),
        "gf": Field(bool),
        # stages 3 and 4: (h, w) of each global filter
        "gf_sizes": Field(tuple, length=2, items=Field(
            tuple, length=2, items=Field(int, minimum=1, maximum=4096))),
        "layer_scale_init": Field(float, minimum=0),
        "drop_path_rate": Field(float, minimum=0, below=1),
        "num_classes": Field(int, minimum=0, maximum=MAX_CLASSES),  # 0: no head
    },
    rules=(orders_halve_widths, gf_filters_fit),
    params=param_estimate,
)

HORNET = Architecture(
    name=NAME,
    family="HorNet",
    paper="Rao et al. 2022, HorNet: Efficient High-Order Spatial Interactions with Recursive "
    "Gated Convolutions (NeurIPS)",
    input_kind="image",
    default_variant="tiny",
    description="ConvNeXt-style hierarchy with recursive gated convolutions (gnConv), orders 2-5",
    variants={
        "tiny": _variant(64, False, _GF224, 224, "HorNet-T 7x7", PUBLISHED["tiny"]),
        "small": _variant(96, False, _GF224, 224, "HorNet-S 7x7", PUBLISHED["small"]),
        "base": _variant(128, False, _GF224, 224, "HorNet-B 7x7", PUBLISHED["base"]),
        "large": _variant(192, False, _GF224, 224, "HorNet-L 7x7"),
        "tiny_gf": _variant(64, True, _GF224, 224, "HorNet-T GF", PUBLISHED["tiny_gf"]),
        "small_gf": _variant(96, True, _GF224, 224, "HorNet-S GF", PUBLISHED["small_gf"]),
        "base_gf": _variant(128, True, _GF224, 224, "HorNet-B GF", PUBLISHED["base_gf"]),
        "large_gf": _variant(192, True, _GF224, 224, "HorNet-L GF"),
        "large_gf_384": _variant(192, True, _GF384, 384, "HorNet-L GF at 384"),
    },
    token_mixer_types=("GnConv",),
    # the block's MLP has no container: pwconv1, its GELU (the model's only one; no MACs)
    # and pwconv2, so that --breakdown times the whole MLP
    mlp_types=("PointwiseLinear", "GELU"),
    # --breakdown: stage i is its downsampling layer (the stem for i = 0) and its blocks
    stage_modules=("downsample_layers.{i}", "stages.{i}"),
    mixer_swap=MixerSwap(stages=swap_stages, layout="channels_first"),
    schema=SCHEMA,
)


@hookimpl
def archbench_architectures() -> list[Architecture]:
    return [HORNET]


@hookimpl
def archbench_build_model(spec: ModelSpec, swap) -> Any:
    if spec.arch.name != NAME:
        return None
    from archbench_hornet.model import HorNet

    return HorNet(**spec.config, mixer_factory=swap)


# --------------------------------------------------------------------------- FLOP handlers


@hookimpl
def archbench_flop_handlers(spec: ModelSpec) -> dict[str, Any] | None:
    if spec.arch.name != NAME:
        return None
    return dict(HANDLERS)


# --------------------------------------------------------------------------- analysis


def _stage_entry(
    cfg: dict[str, Any], i: int, side: int, flops: Any
) -> tuple[dict[str, Any], tuple[int, int, int]]:
    """Stage ``i``'s analysis entry, and its totals (formula, as MSA, as W-MSA) over its blocks."""
    dim = cfg["base_dim"] * 2**i
    order, depth = cfg["orders"][i], cfg["depths"][i]
    gf_size = cfg["gf_sizes"][i - 2] if cfg["gf"] and i >= 2 else None
    terms = gnconv_macs(side, dim, order, cfg["kernel_size"], gf_size)
    per_layer = sum(terms.values())
    types = flops.module_types
    counted = sum(
        v
        for name, v in flops.by_module.items()
        if name.startswith(f"stages.{i}.") and types.get(name) == "GnConv"
    )
    msa = msa_macs(side * side, dim)
    wmsa = wmsa_macs(padded_side(side, WMSA_WINDOW) ** 2, dim, WMSA_WINDOW)
    entry: dict[str, Any] = {
        "stage": i + 1,
        "resolution": f"{side}x{side}",
        "dim": dim,
        "order": order,
        "dims": gnconv_dims(dim, order),
        "blocks": depth,
        "mixer": "gf"
        if gf_size is not None
        else f"dwconv{cfg['kernel_size']}x{cfg['kernel_size']}",
        "macs_per_layer_terms": terms,
        "macs_per_layer": per_layer,
        "gmacs_formula": per_layer * depth / 1e9,
        "gmacs_counted": counted / 1e9,
        "gmacs_as_msa": msa * depth / 1e9,
        "gmacs_as_wmsa": wmsa * depth / 1e9,
    }
    if gf_size is None:
        bound = paper_bound_macs(side, dim, cfg["kernel_size"])
        paper_terms = per_layer - terms["scale"]
        entry["paper_bound_per_layer"] = bound
        entry["paper_construction_per_layer"] = paper_terms
        entry["paper_bound_holds"] = paper_terms < bound
    else:
        entry["paper_bound_per_layer"] = None
        entry["gf_filter_size"] = list(gf_size)
        entry["gf_resized"] = "gf_resize" in terms
    return entry, (per_layer * depth, msa * depth, wmsa * depth)


@hookimpl
def archbench_analyze(ctx) -> dict[str, Any] | None:
    """gnConv's exact cost per stage beside the counted MACs, the paper's bound, and what
    global MSA / W-MSA (window 7) of the same width would cost on the same layers."""
    if ctx.spec.arch.name != NAME or ctx.swap is not None:
        return None  # a swapped model's mixer columns come from the core
    cfg = ctx.spec.config
    stages = []
    total = as_msa = as_wmsa = 0
    for i, side in enumerate(stage_resolutions(ctx.spec.img_size)):
        entry, (formula, msa, wmsa) = _stage_entry(cfg, i, side, ctx.flops)
        stages.append(entry)
        total += formula
        as_msa += msa
        as_wmsa += wmsa
    return {
        "mixer": "gnconv-gf" if cfg["gf"] else "gnconv",
        "mixer_gmacs_formula": total / 1e9,
        "mixer_gmacs_as_msa": as_msa / 1e9,
        "mixer_gmacs_as_wmsa": as_wmsa / 1e9,
        "mixer_msa_saving": as_msa / total if total else None,
        "mixer_formula": {
            "equation": "gnConv per layer: 2HWC^2 (proj_in) + HW*K^2*sum(C_k) (depth-wise) + "
            "HW*sum(C_k*C_{k+1}) (g_k) + HWC^2 (proj_out) + HW*sum(C_k) (gating) + "
            "HW*sum(C_k) (scale s); paper bound HWC(2K^2 + 11C/3 + 2) covers all but the scale",
            "msa_equation": "Swin eq. (1) 4NC^2 + 2N^2C; W-MSA Swin eq. (2) with M = 7, "
            "tokens padded to a multiple of 7",
            "stages": stages,
            "notes": [
                "bias adds of proj_in/dwconv/pws/proj_out are not in the formula (fvcore does not "
                "count them either)",
                "the scale s is a real multiply in this model (and the release) but outside the "
                "paper's construction; it is in the formula as the 'scale' term",
                "GF stages: LayerNorms at 5/element (fvcore), 3x3 depth-wise on half the "
                "channels, rfft2 + irfft2 at N*C*ceil(log2 N) each, complex filter at 4 "
                "MACs/element; no paper bound",
                "norm1 and the layer scale gamma1 are outside GnConv and outside the formula",
                *COUNT_NOTES,
            ],
        },
    }


# --------------------------------------------------------------------------- token mixers


def _check_gnconv(cfg: MixerConfig, gf: bool = False) -> None:
    name = "gnconv-gf" if gf else "gnconv"
    if not 1 <= cfg.order <= MAX_ORDER:
        raise UsageError(f"{name}: order {cfg.order} is outside 1..{MAX_ORDER}")
    if cfg.dim % 2 ** (cfg.order - 1):
        raise UsageError(
            f"{name}: dim {cfg.dim} is not divisible by 2^(order-1) = "
            f"{2 ** (cfg.order - 1)} (gnConv of order {cfg.order} halves it "
            f"{cfg.order - 1} times)"
        )
    if gf and sum(gnconv_dims(cfg.dim, cfg.order)) % 2:
        raise UsageError(
            f"{name}: the global filter splits {sum(gnconv_dims(cfg.dim, cfg.order))}"
            " channels in two halves; need an even count"
        )


def _gf_size(cfg: MixerConfig) -> tuple[int, int]:
    """The rfft2 half-spectrum of the map: no resizing of the filter."""
    return cfg.size, cfg.size // 2 + 1


def _build_gnconv(cfg: MixerConfig) -> Any:
    from archbench_hornet.model import GnConv

    return GnConv(cfg.dim, cfg.order, kernel_size=7)


def _build_gnconv_gf(cfg: MixerConfig) -> Any:
    from archbench_hornet.model import GnConv

    return GnConv(cfg.dim, cfg.order, gf_size=_gf_size(cfg))


MIXERS = [
    TokenMixer(
        name="gnconv",
        description="recursive gated convolution g^nConv with a 7x7 depth-wise conv, exact "
        "sum of its terms (HorNet sec. 3.1)",
        paper=HORNET.paper,
        build=_build_gnconv,
        layout="channels_first",
        macs=lambda cfg: sum(gnconv_macs(cfg.size, cfg.dim, cfg.order, 7).values()),
        check=_check_gnconv,
        flop_handlers=lambda: dict(HANDLERS),
    ),
    TokenMixer(
        name="gnconv-gf",
        description="g^nConv with the global filter (3x3 depth-wise + FFT filter, HorNet-GF "
        "sec. 3.3), exact sum of its terms",
        paper=HORNET.paper,
        build=_build_gnconv_gf,
        layout="channels_first",
        macs=lambda cfg: sum(
            gnconv_macs(cfg.size, cfg.dim, cfg.order, 7, gf_size=_gf_size(cfg)).values()
        ),
        check=lambda cfg: _check_gnconv(cfg, gf=True),
        flop_handlers=lambda: dict(HANDLERS),
    ),
]


@hookimpl
def archbench_token_mixers() -> list[TokenMixer]:
    return MIXERS
