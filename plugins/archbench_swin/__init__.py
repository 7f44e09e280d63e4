"""archbench plugin: Swin Transformer (Liu et al. 2021), registered under the ``archbench``
entry point.

This module stays light (no torch import) so that ``archbench list`` answers fast; the model
lives in :mod:`archbench_swin.model` and is imported when a model is built. The stage
geometry (:mod:`archbench_swin.geometry`) is plain arithmetic shared by the validator, the
analytic formulas and the model, so all three agree on resolutions, windows and padding.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from archbench import Architecture, ModelSpec, UsageError, Variant, hookimpl
from archbench.formulas import msa_macs, padded_side, wmsa_macs
from archbench.mixers import MixerConfig, MixerSwap, SwapStage, TokenMixer
from archbench_swin.geometry import effective_window, stage_resolutions

NAME = "swin"


def _variant(dim: int, depths: tuple, heads: tuple, window: int, img: int, desc: str) -> Variant:
    config = {
        "patch_size": 4,
        "embed_dim": dim,
        "depths": depths,
        "num_heads": heads,
        "window_size": window,
        "mlp_ratio": 4.0,
        "num_classes": 1000,
    }
    return Variant(config=config, img_size=img, description=desc)


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


SWIN = Architecture(
    name=NAME,
    family="Swin",
    paper="Liu et al. 2021, Swin Transformer: Hierarchical Vision Transformer using "
    "Shifted Windows (ICCV)",
    input_kind="image",
    default_variant="tiny",
    description="Hierarchical Transformer: 4 stages, patch merging, (shifted) window MSA",
    variants={
        "tiny": _variant(96, (2, 2, 6, 2), (3, 6, 12, 24), 7, 224, "Swin-T"),
        "small": _variant(96, (2, 2, 18, 2), (3, 6, 12, 24), 7, 224, "Swin-S"),
        "base": _variant(128, (2, 2, 18, 2), (4, 8, 16, 32), 7, 224, "Swin-B"),
        "large": _variant(192, (2, 2, 18, 2), (6, 12, 24, 48), 7, 224, "Swin-L"),
        "base_384": _variant(128, (2, 2, 18, 2), (4, 8, 16, 32), 12, 384, "Swin-B, 384, window 12"),
        "large_384": _variant(
            192, (2, 2, 18, 2), (6, 12, 24, 48), 12, 384, "Swin-L, 384, window 12"
        ),
    },
    token_mixer_types=("WindowAttention",),
    mlp_types=("Mlp",),
    mixer_swap=MixerSwap(stages=swap_stages, layout="channels_last"),
)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_tuple(spec: ModelSpec, key: str, value: Any) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,)
    if not isinstance(value, (tuple, list)) or not value or not all(_is_int(v) for v in value):
        raise UsageError(f"{spec.name}: {key} must be a non-empty tuple of ints, got {value!r}")
    return tuple(value)


def check_config(spec: ModelSpec) -> None:
    """Raise :class:`UsageError` for a config the model cannot be built or run with."""
    cfg: Mapping[str, Any] = spec.config
    img = spec.img_size
    for key in ("patch_size", "embed_dim", "window_size"):
        if not _is_int(cfg[key]) or cfg[key] < 1:
            raise UsageError(f"{spec.name}: {key} must be a positive integer, got {cfg[key]!r}")
    if not _is_int(img) or img < 1:
        raise UsageError(f"{spec.name}: image size must be a positive integer, got {img!r}")
    depths = _int_tuple(spec, "depths", cfg["depths"])
    heads = _int_tuple(spec, "num_heads", cfg["num_heads"])
    if len(depths) != len(heads):
        raise UsageError(
            f"{spec.name}: depths {depths} and num_heads {heads} must have one entry per stage"
        )
    if min(depths) < 1 or min(heads) < 1:
        raise UsageError(f"{spec.name}: every stage needs depth >= 1 and num_heads >= 1")
    patch = cfg["patch_size"]
    if img % patch:
        raise UsageError(
            f"{spec.name}: image size {img} is not divisible by the patch size {patch}"
        )
    stages = len(depths)
    min_img = patch * 2 ** (stages - 1)
    if img < min_img:
        raise UsageError(
            f"{spec.name}: image size {img} is too small for {stages} stages: "
            f"patch size {patch} and {stages - 1} patch mergings need at least {min_img}"
        )
    dim = cfg["embed_dim"]
    for i, h in enumerate(heads):
        if (dim * 2**i) % h:
            raise UsageError(
                f"{spec.name}: stage {i + 1} width {dim * 2**i} (embed_dim {dim} x 2^{i}) "
                f"is not divisible by num_heads[{i}] = {h}"
            )
    if not isinstance(cfg["mlp_ratio"], (int, float)) or cfg["mlp_ratio"] <= 0:
        raise UsageError(f"{spec.name}: mlp_ratio must be positive, got {cfg['mlp_ratio']!r}")
    if not _is_int(cfg["num_classes"]) or cfg["num_classes"] < 0:
        raise UsageError(f"{spec.name}: num_classes must be >= 0, got {cfg['num_classes']!r}")


@hookimpl
def archbench_architectures() -> list[Architecture]:
    return [SWIN]


@hookimpl
def archbench_validate(spec: ModelSpec) -> None:
    if spec.arch.name != NAME:
        return
    check_config(spec)


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
