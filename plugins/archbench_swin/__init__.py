"""archbench plugin: Swin Transformer (Liu et al. 2021), registered under the ``archbench``
entry point.

This module stays light (no torch import) so that ``archbench list`` answers fast; the model
lives in :mod:`archbench_swin.model` and is imported when a model is built. The stage
geometry (:mod:`archbench_swin.geometry`) is plain arithmetic shared by the schema rules, the
analytic formulas and the model, so all three agree on resolutions, windows and padding.
"""

from __future__ import annotations

from typing import Any

from archbench import Architecture, Field, ModelSpec, Schema, UsageError, Variant, hookimpl
from archbench.core.accuracy import IMAGENET_22K, Published
from archbench.core.schema import MAX_CLASSES, MAX_DEPTH, MAX_WIDTH
from archbench.formulas import msa_macs, padded_side, wmsa_macs
from archbench.mixers import MixerConfig, MixerSwap, SwapStage, TokenMixer
from archbench_swin.geometry import effective_window, stage_resolutions

NAME = "swin"


def _variant(dim: int, depths: tuple, heads: tuple, window: int, img: int, desc: str,
             published: Published | None = None) -> Variant:
    config = {
        "patch_size": 4,
        "embed_dim": dim,
        "depths": depths,
        "num_heads": heads,
        "window_size": window,
        "mlp_ratio": 4.0,
        "num_classes": 1000,
    }
    return Variant(config=config, img_size=img, description=desc, published=published)


#: Swin's ImageNet-1k top-1, single crop: T/S/B trained on ImageNet-1k alone (the paper's
#: Table 1(a)); Swin-L has no ImageNet-1k-only figure, only ImageNet-22k pre-training then
#: ImageNet-1k fine-tuning (Table 1(b)), which its ``pretrain`` says.
SWIN_1K = "Liu et al. 2021, Swin Transformer (ICCV; arXiv:2103.14030), Table 1(a)"
SWIN_22K = ("Liu et al. 2021, Swin Transformer (ICCV; arXiv:2103.14030), Table 1(b), "
            "ImageNet-22k pre-trained, fine-tuned on ImageNet-1k")
_RELEASED = "released checkpoint: {} top-1, {} top-5 (microsoft/Swin-Transformer MODELHUB.md)"
PUBLISHED = {
    "tiny": Published(81.3, SWIN_1K, note=_RELEASED.format(81.2, 95.5)),
    "small": Published(83.0, SWIN_1K, note=_RELEASED.format(83.2, 96.2)),
    "base": Published(83.5, SWIN_1K, note=_RELEASED.format(83.5, 96.5) + "; pre-trained "
                      "on ImageNet-22k: 85.2 (Table 1(b))"),
    "base_384": Published(84.5, SWIN_1K, note=_RELEASED.format(84.5, 97.0) + "; pre-trained "
                          "on ImageNet-22k: 86.4 (Table 1(b))"),
    "large": Published(86.3, SWIN_22K, IMAGENET_22K, note=_RELEASED.format(86.3, 97.9)),
    "large_384": Published(87.3, SWIN_22K, IMAGENET_22K, note=_RELEASED.format(87.3, 98.2)),
}


#: gnConv order per stage when gnConv replaces (S)W-MSA: HorNet's choice (2, 3, 4, 5).
SWAP_ORDERS = (2, 3, 4, 5)


def swap_stages(spec: ModelSpec) -> list[SwapStage]:
    """Each stage as a swapped-in mixer sees it: its width, heads, window (at most the
    map), HorNet's gnConv order and map side, and its number of blocks."""
    cfg = spec.config
    res = stage_resolutions(spec.img_size // cfg["patch_size"], len(cfg["depths"]))
    return [
        SwapStage(MixerConfig(dim=cfg["embed_dim"] * 2**i, heads=cfg["num_heads"][i],
                              window=min(cfg["window_size"], r),
                              order=SWAP_ORDERS[min(i, len(SWAP_ORDERS) - 1)], size=r),
                  blocks)
        for i, (r, blocks) in enumerate(zip(res, cfg["depths"]))
    ]


# --------------------------------------------------------------------------- config schema


def image_fits_stages(spec: ModelSpec) -> str | None:
    """The patch grid must survive every patch merging (each halves it)."""
    patch, stages = spec.config["patch_size"], len(spec.config["depths"])
    min_img = patch * 2 ** (stages - 1)
    if spec.img_size < min_img:
        return (f"image size {spec.img_size} is too small for {stages} stages: patch size "
                f"{patch} and {stages - 1} patch mergings need at least {min_img}")
    return None


def heads_divide_stage_widths(spec: ModelSpec) -> str | None:
    """Stage i is embed_dim·2^i wide; its heads must split that width evenly."""
    dim = spec.config["embed_dim"]
    for i, heads in enumerate(spec.config["num_heads"]):
        if (dim * 2**i) % heads:
            return (f"stage {i + 1} width {dim * 2**i} (embed_dim {dim} x 2^{i}) is not "
                    f"divisible by num_heads[{i}] = {heads}")
    return None


def param_estimate(spec: ModelSpec) -> float:
    """Parameters without building: per block 4C² (qkv, proj) + 2·ratio·C² (MLP), 8C² per
    patch merging, the patch embedding and the head (biases, norms and the relative
    position tables left out: about 1%)."""
    cfg = spec.config
    widths = [cfg["embed_dim"] * 2**i for i in range(len(cfg["depths"]))]
    blocks = sum(d * (4 + 2 * cfg["mlp_ratio"]) * w * w for d, w in zip(cfg["depths"], widths))
    merging = sum(8 * w * w for w in widths[:-1])
    return (blocks + merging + 3 * cfg["patch_size"] ** 2 * widths[0]
            + widths[-1] * cfg["num_classes"])


SCHEMA = Schema(
    fields={
        "img_size": Field(int, minimum=1, multiple_of="patch_size"),
        "patch_size": Field(int, minimum=1, maximum=1024),
        "embed_dim": Field(int, minimum=1, maximum=MAX_WIDTH),
        "depths": Field(tuple, items=Field(int, minimum=1, maximum=MAX_DEPTH), max_length=16),
        "num_heads": Field(tuple, items=Field(int, minimum=1, maximum=MAX_WIDTH),
                           length="depths"),
        "window_size": Field(int, minimum=1, maximum=1024),
        "mlp_ratio": Field(float, above=0, maximum=64),
        "num_classes": Field(int, minimum=0, maximum=MAX_CLASSES),  # 0: no head
    },
    rules=(image_fits_stages, heads_divide_stage_widths),
    params=param_estimate,
)

#: The window partition and reverse, the cyclic shift and the shifted-window mask (built
#: for another map size, and added to the relative position bias): functions of
#: ``archbench_swin.model``'s namespace, where the blocks look them up. The zero padding to
#: a multiple of the window (sizes other than 224) is inline code: other time.
WINDOW_REGIONS = (
    "archbench_swin.model.window_partition",
    "archbench_swin.model.window_reverse",
    "archbench_swin.model.shifted_window_mask",
    "archbench_swin.model.add_shift_mask",
    "aten::roll",
)

SWIN = Architecture(
    name=NAME,
    family="Swin",
    paper="Liu et al. 2021, Swin Transformer: Hierarchical Vision Transformer using "
    "Shifted Windows (ICCV)",
    input_kind="image",
    default_variant="tiny",
    description="Hierarchical Transformer: 4 stages, patch merging, (shifted) window MSA",
    variants={
        "tiny": _variant(96, (2, 2, 6, 2), (3, 6, 12, 24), 7, 224, "Swin-T", PUBLISHED["tiny"]),
        "small": _variant(96, (2, 2, 18, 2), (3, 6, 12, 24), 7, 224, "Swin-S",
                          PUBLISHED["small"]),
        "base": _variant(128, (2, 2, 18, 2), (4, 8, 16, 32), 7, 224, "Swin-B",
                         PUBLISHED["base"]),
        "large": _variant(192, (2, 2, 18, 2), (6, 12, 24, 48), 7, 224, "Swin-L",
                          PUBLISHED["large"]),
        "base_384": _variant(128, (2, 2, 18, 2), (4, 8, 16, 32), 12, 384, "Swin-B, 384, window 12",
                             PUBLISHED["base_384"]),
        "large_384": _variant(
            192, (2, 2, 18, 2), (6, 12, 24, 48), 12, 384, "Swin-L, 384, window 12",
            PUBLISHED["large_384"],
        ),
    },
    token_mixer_types=("WindowAttention",),
    mlp_types=("Mlp",),
    mixer_swap=MixerSwap(stages=swap_stages, layout="channels_last"),
    schema=SCHEMA,
    stage_modules=("layers.{i}",),  # patch merging at the start of stages 2-4
    # --breakdown's window line: what W-MSA pays for its saved MACs, in time and no MACs
    time_regions={"window": WINDOW_REGIONS},
)


@hookimpl
def archbench_architectures() -> list[Architecture]:
    return [SWIN]


@hookimpl
def archbench_build_model(spec: ModelSpec, swap):
    if spec.arch.name != NAME:
        return None
    from archbench_swin.model import SwinTransformer

    if swap is None:
        return SwinTransformer(img_size=spec.img_size, **spec.config)
    return SwinTransformer(img_size=spec.img_size, **spec.config,
                           mixer_factory=lambda stage, dim, heads, res: swap(stage))


# --------------------------------------------------------------------------- token mixers

def _window(cfg: MixerConfig) -> int:
    return min(cfg.window, cfg.size)


def window_tokens(cfg: MixerConfig) -> int:
    """hw of eq. (2): the map padded to a multiple of the window."""
    return padded_side(cfg.size, _window(cfg)) ** 2


def _check_window(cfg: MixerConfig) -> None:
    if cfg.dim % cfg.heads:
        raise UsageError(f"window attention: the head count {cfg.heads} does not divide dim "
                         f"{cfg.dim}")
    if cfg.size < cfg.window:
        raise UsageError(
            f"window attention: feature-map size {cfg.size} is smaller than the window "
            f"{cfg.window}; use sizes >= {cfg.window} or a smaller window"
        )


def _build(shifted: bool) -> Any:
    def build(cfg: MixerConfig) -> Any:
        from archbench_swin.model import WindowMSA

        return WindowMSA(
            cfg.dim, cfg.heads, cfg.window, cfg.window // 2 if shifted else 0, cfg.size
        )

    return build


def _wmsa_cost(cfg: MixerConfig) -> int:
    return wmsa_macs(window_tokens(cfg), cfg.dim, _window(cfg))


def _handlers() -> dict[str, Any]:
    return {"aten::pad": None, "aten::constant_pad_nd": None}


_COMMON = {
    "paper": SWIN.paper,
    "macs": _wmsa_cost,
    "layout": "channels_last",
    "check": _check_window,
    # heads x windows x (M² x M²) scores = heads x hw x M²
    "attention_bytes": lambda cfg: cfg.heads * window_tokens(cfg) * _window(cfg) ** 2,
    "flop_handlers": _handlers,
}
MIXERS = [
    TokenMixer(
        name="w-msa",
        build=_build(False),
        description="window MSA in non-overlapping MxM windows, Swin eq. (2) 4hwC^2 + 2M^2hwC",
        **_COMMON,
    ),
    TokenMixer(
        name="sw-msa",
        build=_build(True),
        description="shifted-window MSA (cyclic shift by M/2 + mask), Swin eq. (2) "
        "4hwC^2 + 2M^2hwC (mask add not counted)",
        **_COMMON,
    ),
]


@hookimpl
def archbench_token_mixers() -> list[TokenMixer]:
    return MIXERS


def mixer_formula(spec: ModelSpec) -> dict[str, Any]:
    """Swin eqs. (1) and (2) per stage for the model as built (pure arithmetic)."""
    cfg = spec.config
    depths, heads = tuple(cfg["depths"]), tuple(cfg["num_heads"])
    window = cfg["window_size"]
    res = stage_resolutions(spec.img_size // cfg["patch_size"], len(depths))
    stages = []
    for i, (r, depth, nh) in enumerate(zip(res, depths, heads)):
        dim = cfg["embed_dim"] * 2**i
        m, shift = effective_window(r, window, window // 2)
        hw_padded = padded_side(r, m) ** 2
        wmsa = wmsa_macs(hw_padded, dim, m)
        msa = msa_macs(r * r, dim)
        stages.append(
            {
                "stage": i + 1,
                "resolution": r,
                "padded_resolution": padded_side(r, m),
                "window": m,
                "shift": shift,
                "windows": hw_padded // (m * m),
                "dim": dim,
                "heads": nh,
                "blocks": depth,
                "wmsa_macs_per_block": wmsa,
                "msa_macs_per_block": msa,
                "wmsa_macs": wmsa * depth,
                "msa_macs": msa * depth,
            }
        )
    return {
        "equation": "W-MSA: Swin eq. (2) 4hwC^2 + 2M^2hwC per block; "
        "as MSA: Swin eq. (1) 4hwC^2 + 2(hw)^2C per block",
        "stages": stages,
        "wmsa_macs": sum(s["wmsa_macs"] for s in stages),
        "msa_macs": sum(s["msa_macs"] for s in stages),
        "notes": [
            "relative position bias add and shifted-window mask add not counted",
            "softmax and the 1/sqrt(d) scaling omitted (as in the paper)",
            "W-MSA hw includes the zero padding to a multiple of the window (it is computed); "
            "MSA hw is the unpadded map (global attention needs no padding)",
            "window = min(window_size, stage resolution); stages no larger than the window "
            "are one window with no shift, where W-MSA equals MSA",
            "patch merging, MLP, LayerNorm and the cyclic shift (torch.roll) are not "
            "token-mixer terms",
        ],
    }


@hookimpl
def archbench_analyze(ctx) -> dict[str, Any] | None:
    """W-MSA cost (Swin eq. 2) per stage and summed, beside global MSA (eq. 1)."""
    if ctx.spec.arch.name != NAME or ctx.swap is not None:
        return None  # a swapped model's mixer columns come from the core
    formula = mixer_formula(ctx.spec)
    wmsa, msa = formula["wmsa_macs"], formula["msa_macs"]
    return {
        "mixer": "w-msa",
        "mixer_gmacs_formula": wmsa / 1e9,
        "mixer_gmacs_as_msa": msa / 1e9,
        "mixer_gmacs_as_wmsa": wmsa / 1e9,
        "mixer_msa_saving": msa / wmsa,
        "mixer_formula": formula,
    }


@hookimpl
def archbench_flop_handlers(spec: ModelSpec) -> dict[str, Any] | None:
    """Zero padding to a multiple of the window (or to even before patch merging) moves
    data and does no arithmetic: mark it as deliberately not counted."""
    if spec.arch.name != NAME:
        return None
    return _handlers()
