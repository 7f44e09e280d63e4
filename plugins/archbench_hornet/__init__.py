"""archbench plugin: HorNet (Rao et al., NeurIPS 2022), registered under the ``archbench`` entry point.

This module stays light (no torch import) so that ``archbench list`` answers fast; the
model lives in :mod:`archbench_hornet.model` and is imported when a model is built. The FLOP
handlers below read traced shapes only, so they need no torch import either.

FLOP convention (MACs, fvcore's): see ``COUNT_NOTES`` and docs/hornet.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from archbench import Architecture, ModelSpec, UsageError, Variant, hookimpl
from archbench.complexity import shape_of
from archbench.formulas import msa_macs, padded_side, wmsa_macs
from archbench.mixers import (
    MixerConfig,
    TokenMixer,
    build_swap,
    check_mixer_config,
    get_token_mixer,
    swap_columns,
)

NAME = "hornet"
#: Window of the W-MSA comparison (Swin's M = 7).
WMSA_WINDOW = 7
#: Highest gnConv order accepted (the paper uses 2..5).
MAX_ORDER = 5


def _variant(base_dim: int, gf: bool, gf_sizes: tuple, img: int, desc: str) -> Variant:
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
    return Variant(config=config, img_size=img, description=desc)


_GF224 = ((14, 8), (7, 4))
_GF384 = ((24, 13), (12, 7))

HORNET = Architecture(
    name=NAME,
    family="HorNet",
    paper="Rao et al. 2022, HorNet: Efficient High-Order Spatial Interactions with Recursive "
    "Gated Convolutions (NeurIPS)",
    input_kind="image",
    default_variant="tiny",
    description="ConvNeXt-style hierarchy with recursive gated convolutions (gnConv), orders 2-5",
    variants={
        "tiny": _variant(64, False, _GF224, 224, "HorNet-T 7x7"),
        "small": _variant(96, False, _GF224, 224, "HorNet-S 7x7"),
        "base": _variant(128, False, _GF224, 224, "HorNet-B 7x7"),
        "large": _variant(192, False, _GF224, 224, "HorNet-L 7x7"),
        "tiny_gf": _variant(64, True, _GF224, 224, "HorNet-T GF"),
        "small_gf": _variant(96, True, _GF224, 224, "HorNet-S GF"),
        "base_gf": _variant(128, True, _GF224, 224, "HorNet-B GF"),
        "large_gf": _variant(192, True, _GF224, 224, "HorNet-L GF"),
        "large_gf_384": _variant(192, True, _GF384, 384, "HorNet-L GF at 384"),
    },
    token_mixer_types=("GnConv",),
    mlp_types=("PointwiseLinear",),
)


# --------------------------------------------------------------------------- validation


def _ints(value: Any, n: int) -> bool:
    return (
        isinstance(value, (tuple, list))
        and len(value) == n
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    )


def stage_resolutions(img_size: int) -> list[int]:
    """Side of the feature map in each stage: stem conv 4/4, then 2/2 convs (floor)."""
    sides = [img_size // 4]
    for _ in range(3):
        sides.append(sides[-1] // 2)
    return sides


@hookimpl
def archbench_architectures() -> list[Architecture]:
    return [HORNET]


@hookimpl
def archbench_validate(spec: ModelSpec) -> None:
    if spec.arch.name != NAME:
        return
    cfg = spec.config
    pre = spec.name
    base, depths, orders = cfg["base_dim"], cfg["depths"], cfg["orders"]
    if not isinstance(base, int) or base < 1:
        raise UsageError(f"{pre}: base_dim must be a positive integer, got {base!r}")
    if not _ints(depths, 4) or min(depths) < 1:
        raise UsageError(f"{pre}: depths must be 4 integers >= 1, got {depths!r}")
    if not _ints(orders, 4):
        raise UsageError(f"{pre}: orders must be 4 integers (one per stage), got {orders!r}")
    for i, order in enumerate(orders):
        if not 1 <= order <= MAX_ORDER:
            raise UsageError(
                f"{pre}: gnConv order {order} of stage {i + 1} is outside 1..{MAX_ORDER}"
            )
        dim = base * 2**i
        if dim % 2 ** (order - 1):
            raise UsageError(
                f"{pre}: stage {i + 1} width {dim} is not divisible by 2^(order-1) = "
                f"{2 ** (order - 1)} (gnConv order {order} halves it {order - 1} times)"
            )
    k = cfg["kernel_size"]
    if not isinstance(k, int) or k < 1 or k % 2 == 0:
        raise UsageError(f"{pre}: kernel_size must be a positive odd integer, got {k!r}")
    if spec.img_size is None or spec.img_size < 32:
        raise UsageError(f"{pre}: image size must be at least 32 (4 stages, stride 32)")
    if not 0.0 <= cfg["drop_path_rate"] < 1.0:
        raise UsageError(f"{pre}: drop_path_rate must be in [0, 1), got {cfg['drop_path_rate']}")
    if cfg["layer_scale_init"] < 0:
        raise UsageError(f"{pre}: layer_scale_init must be >= 0, got {cfg['layer_scale_init']}")
    if cfg["num_classes"] < 0:
        raise UsageError(f"{pre}: num_classes must be >= 0, got {cfg['num_classes']}")
    if cfg["gf"]:
        _validate_gf(spec)
    if spec.mixer:
        mixer = get_token_mixer(spec.mixer)
        for i, layer in enumerate(swap_configs(spec)):
            try:
                check_mixer_config(mixer, layer)
            except UsageError as exc:
                raise UsageError(f"{pre}: --mixer {spec.mixer} in stage {i + 1}: {exc}") from None


def _validate_gf(spec: ModelSpec) -> None:
    """GF filter rule: each (h, w) must be the rfft2 half-spectrum of an h x h grid,
    w == h // 2 + 1. A filter made for another resolution than the stage's is resized by
    bilinear interpolation (official behaviour), so it need not equal the stage's grid."""
    cfg, pre = spec.config, spec.name
    sizes = cfg["gf_sizes"]
    if (
        not isinstance(sizes, (tuple, list))
        or len(sizes) != 2
        or not all(_ints(s, 2) for s in sizes)
    ):
        raise UsageError(
            f"{pre}: gf_sizes must be two (h, w) pairs (stages 3 and 4), got {sizes!r}"
        )
    sides = stage_resolutions(spec.img_size)
    for (h, w), stage in zip(sizes, (3, 4)):
        side = sides[stage - 1]
        if h < 1 or w != h // 2 + 1:
            raise UsageError(
                f"{pre}: GF filter {h}x{w} of stage {stage} is not an rfft2 half-spectrum: "
                f"need w == h//2+1 (= {h // 2 + 1} for h={h}); for this stage's "
                f"{side}x{side} map use ({side}, {side // 2 + 1})"
            )
        dims = gnconv_dims(cfg["base_dim"] * 2 ** (stage - 1), cfg["orders"][stage - 1])
        if sum(dims) % 2:
            raise UsageError(
                f"{pre}: GF stage {stage} splits {sum(dims)} channels in two halves; "
                "need an even count"
            )


@hookimpl
def archbench_build_model(spec: ModelSpec) -> Any:
    if spec.arch.name != NAME:
        return None
    from archbench_hornet.model import HorNet

    if spec.mixer:
        configs = swap_configs(spec)
        return HorNet(
            **spec.config,
            mixer_factory=lambda stage: build_swap(spec.mixer, configs[stage], "channels_first"),
        )
    return HorNet(**spec.config)


# --------------------------------------------------------------------------- --mixer swaps

#: Head width of attention swapped into HorNet (Swin's: 32 channels per head).
SWAP_HEAD_DIM = 32


def swap_configs(spec: ModelSpec) -> list[MixerConfig]:
    """One mixer config per stage of a ``--mixer`` swap: the stage's width, heads of 32
    channels (Swin's), window 7 (at most the map), the stage's gnConv order and map side."""
    cfg = spec.config
    return [
        MixerConfig(
            dim=cfg["base_dim"] * 2**i,
            heads=max(1, cfg["base_dim"] * 2**i // SWAP_HEAD_DIM),
            window=min(WMSA_WINDOW, side),
            order=cfg["orders"][i],
            size=side,
        )
        for i, side in enumerate(stage_resolutions(spec.img_size))
    ]


# --------------------------------------------------------------------------- FLOP handlers


def _numel(value: Any) -> int:
    return math.prod(shape_of(value))


def _is_tensor(value: Any) -> bool:
    return value.type().kind() == "TensorType"


def _dtype(value: Any) -> str:
    return str(value.type().scalarType())


def fft_macs(spatial: Sequence[int], batch_channels: int) -> int:
    """One 2-D (i)rFFT, the HorNet/GFNet authors' convention: N·C·ceil(log2 N), N = H·W."""
    n = math.prod(spatial)
    return batch_channels * n * math.ceil(math.log2(n)) if n > 1 else 0


def rfft2_handle(inputs: list[Any], outputs: list[Any]) -> int:
    """``aten::fft_rfft2``: N·C·ceil(log2 N) with N = H·W of the real input."""
    *bc, h, w = shape_of(inputs[0])
    return fft_macs((h, w), math.prod(bc))


def irfft2_handle(inputs: list[Any], outputs: list[Any]) -> int:
    """``aten::fft_irfft2``: N·C·ceil(log2 N) with N = H·W of the real output (same as the
    forward transform)."""
    *bc, h, w = shape_of(outputs[0])
    return fft_macs((h, w), math.prod(bc))


def mul_handle(inputs: list[Any], outputs: list[Any]) -> int:
    """``aten::mul``: every floating-point multiply the model executes, one MAC per output
    element; a complex x complex product (the GF filter) counts 4 real MACs per element;
    integer multiplies (shape arithmetic of the trace) count 0.

    In HorNet that is: the gnConv gating products p_k * q_k, the gnConv scale s, the GF
    complex filter, and the layer-scale multiplies γ1, γ2 (see ``COUNT_NOTES``).
    """
    tensors = [v for v in inputs[:2] if _is_tensor(v)]
    dtypes = {_dtype(v) for v in tensors}
    if any("Complex" in d for d in dtypes):
        return 4 * _numel(outputs[0])
    if not any(d in ("Float", "Half", "BFloat16", "Double") for d in dtypes):
        return 0
    if not _is_tensor(outputs[0]) or _dtype(outputs[0]) not in (
        "Float",
        "Half",
        "BFloat16",
        "Double",
    ):
        return 0
    return _numel(outputs[0])


#: What the count includes and leaves out (docs/hornet.md says the same).
COUNT_NOTES = [
    "counted (fvcore): convolutions and linear layers (MACs, bias adds not counted); "
    "aten::layer_norm at 5 MACs/element (all LayerNorms, channels-first ones included: they run "
    "as F.layer_norm on a channels-last view)",
    "counted (hornet handler aten::mul): every floating multiply, 1 MAC/element: gnConv gating "
    "products p_k*q_k, the gnConv scale s (x1/3 on the depth-wise output), layer scale "
    "gamma1/gamma2; GF complex filter multiply at 4 real MACs/element",
    "counted (hornet handlers aten::fft_rfft2 / aten::fft_irfft2): N*C*ceil(log2 N) per "
    "transform with N = H*W, C = channels (x batch), the HorNet/GFNet authors' convention",
    "not counted: adds (bias, residual), GELU, global average pool (aten::mean), "
    "view_as_complex; bilinear resizing of a GF filter only when sizes differ (fvcore, 4/element)",
]


#: The handlers a model with gnConv needs (HorNet, or another backbone with ``--mixer gnconv``).
HANDLERS: dict[str, Any] = {
    "aten::fft_rfft2": rfft2_handle,
    "aten::fft_irfft2": irfft2_handle,
    "aten::mul": mul_handle,
    "aten::add": None,
    "aten::gelu": None,
    "aten::mean": None,
    "aten::view_as_complex": None,
}


@hookimpl
def archbench_flop_handlers(spec: ModelSpec) -> dict[str, Any] | None:
    if spec.arch.name != NAME:
        return None
    return dict(HANDLERS)


# --------------------------------------------------------------------------- analysis


def gnconv_dims(dim: int, order: int) -> list[int]:
    """C_k = C / 2^(n-k-1), k = 0..n-1 (paper eq. 3.3; same as model.gnconv_dims)."""
    return [dim // 2 ** (order - k - 1) for k in range(order)]


def gnconv_macs(
    side: int,
    dim: int,
    order: int,
    kernel_size: int = 7,
    gf_size: Sequence[int] | None = None,
) -> dict[str, int]:
    """Exact MACs of one gnConv layer on a side x side map, term by term, from the construction.

    proj_in 2HWC², depth-wise HW·K²·ΣC_k (or the GF layer), g_k projections HW·ΣC_k·C_{k+1},
    proj_out HWC², gating products HW·ΣC_k, scale s HW·ΣC_k (the last one is outside the
    paper's construction: it could be folded into the depth-wise weights).
    """
    hw = side * side
    dims = gnconv_dims(dim, order)
    sdim = sum(dims)
    terms = {
        "proj_in": hw * dim * 2 * dim,
        "pws": hw * sum(dims[k] * dims[k + 1] for k in range(order - 1)),
        "proj_out": hw * dim * dim,
        "gating": hw * sdim,
        "scale": hw * sdim,
    }
    if gf_size is None:
        terms["dwconv"] = hw * kernel_size**2 * sdim
    else:
        half = sdim // 2
        spec_h, spec_w = side, side // 2 + 1
        terms["gf_norms"] = 2 * 5 * hw * sdim  # pre_norm, post_norm (fvcore's 5/element)
        terms["gf_dw3x3"] = hw * 9 * half
        terms["gf_fft"] = 2 * fft_macs((side, side), half)  # rfft2 + irfft2
        terms["gf_filter"] = 4 * half * spec_h * spec_w  # complex multiply
        if tuple(gf_size) != (spec_h, spec_w):  # weight resized by bilinear interpolation
            terms["gf_resize"] = 4 * 2 * half * spec_h * spec_w
    return terms


def paper_bound_macs(side: int, dim: int, kernel_size: int) -> float:
    """Paper sec. 3.1: FLOPs(gnConv) < HWC(2K² + 11C/3 + 2)."""
    return side * side * dim * (2 * kernel_size**2 + 11 * dim / 3 + 2)


@hookimpl
def archbench_analyze(ctx) -> dict[str, Any] | None:
    """gnConv's exact cost per stage beside the counted MACs, the paper's bound, and what
    global MSA / W-MSA (window 7) of the same width would cost on the same layers."""
    if ctx.spec.arch.name != NAME:
        return None
    cfg = ctx.spec.config
    sides = stage_resolutions(ctx.spec.img_size)
    if ctx.spec.mixer:
        layers = swap_configs(ctx.spec)
        depths = cfg["depths"]
        return swap_columns(
            ctx.spec.mixer,
            list(zip(layers, depths)),
            as_msa=sum(msa_macs(c.tokens, c.dim) * d for c, d in zip(layers, depths)),
            as_wmsa=sum(
                wmsa_macs(padded_side(c.size, WMSA_WINDOW) ** 2, c.dim, WMSA_WINDOW) * d
                for c, d in zip(layers, depths)
            ),
        )
    by_module = ctx.flops.by_module
    types = ctx.flops.module_types
    stages = []
    total = as_msa = as_wmsa = 0
    for i in range(4):
        dim = cfg["base_dim"] * 2**i
        side, order, depth = sides[i], cfg["orders"][i], cfg["depths"][i]
        gf_size = cfg["gf_sizes"][i - 2] if cfg["gf"] and i >= 2 else None
        terms = gnconv_macs(side, dim, order, cfg["kernel_size"], gf_size)
        per_layer = sum(terms.values())
        counted = sum(
            v
            for name, v in by_module.items()
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
        stages.append(entry)
        total += per_layer * depth
        as_msa += msa * depth
        as_wmsa += wmsa * depth
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
        raise UsageError(f"{name}: --order {cfg.order} is outside 1..{MAX_ORDER}")
    if cfg.dim % 2 ** (cfg.order - 1):
        raise UsageError(
            f"{name}: --dim {cfg.dim} is not divisible by 2^(order-1) = "
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
