"""archbench plugin: ViT (Dosovitskiy et al. 2021), registered under the ``archbench`` entry point.

This module stays light (no torch import) so that ``archbench list`` answers fast; the
model lives in :mod:`archbench_vit.model` and is imported when a model is built.
"""

from __future__ import annotations

from typing import Any

from archbench import Architecture, Field, ModelSpec, Schema, UsageError, Variant, hookimpl
from archbench.core.accuracy import Published
from archbench.core.schema import MAX_CLASSES, MAX_DEPTH, MAX_WIDTH
from archbench.formulas import msa_crossover_tokens, msa_macs
from archbench.mixers import MixerConfig, MixerSwap, SwapStage, TokenMixer

NAME = "vit"


def _variant(patch: int, dim: int, depth: int, heads: int, img: int, desc: str,
             published: Published | None = None) -> Variant:
    config = {
        "patch_size": patch,
        "embed_dim": dim,
        "depth": depth,
        "num_heads": heads,
        "mlp_ratio": 4.0,
        "num_classes": 1000,
    }
    return Variant(config=config, img_size=img, description=desc, published=published)


#: DeiT's ImageNet-1k top-1 (trained on ImageNet-1k alone, no distillation, single crop).
#: ViT-L/16, ViT-H/14 and ViT-B/32 at 224 as built here have no published
#: ImageNet-1k-from-scratch figure for exactly this configuration: left empty.
DEIT = "Touvron et al. 2021, DeiT (ICML; arXiv:2012.12877), ImageNet-1k results without distillation"
PUBLISHED = {
    "tiny": Published(72.2, DEIT, note="released checkpoint: 72.2 top-1, 91.1 top-5 "
                      "(facebookresearch/deit README)"),
    "small": Published(79.8, DEIT, note="released checkpoint: 79.9 top-1, 95.0 top-5 "
                       "(facebookresearch/deit README)"),
    "base": Published(81.8, DEIT, note="released checkpoint: 81.8 top-1, 95.6 top-5 "
                      "(facebookresearch/deit README)"),
    "base_384": Published(83.1, DEIT + ", DeiT-B fine-tuned at 384 (abstract)",
                          note="released checkpoint: 82.9 top-1, 96.2 top-5 "
                          "(facebookresearch/deit README)"),
}


# --------------------------------------------------------------------------- --mixer swaps

#: Window and gnConv order of the swapped mixers in the isotropic ViT (Swin's M = 7; the
#: gnConv order is a choice of ours, see docs/mixers.md).
SWAP_WINDOW = 7
SWAP_ORDER = 3


def swap_stages(spec: ModelSpec) -> list[SwapStage]:
    """One stage of ``depth`` blocks: the patch grid as a map, and the class token, which
    a sequence mixer sees too (a 2-D mixer sees the map only; the core drops it there)."""
    cfg = spec.config
    grid = spec.img_size // cfg["patch_size"]
    layer = MixerConfig(dim=cfg["embed_dim"], heads=cfg["num_heads"],
                        window=min(SWAP_WINDOW, grid), order=SWAP_ORDER, size=grid,
                        extra_tokens=1)
    return [SwapStage(layer, cfg["depth"])]


def swap_notes(spec: ModelSpec, mixer: TokenMixer) -> list[str]:
    if mixer.layout == "tokens":
        return ["the class token is kept: the mixer sees N = grid^2 + 1 tokens"]
    return ["a 2-D mixer sees the patch grid without the class token; the head reads the "
            "token average (as the HorNet paper's isotropic models do)"]


# --------------------------------------------------------------------------- config schema


def param_estimate(spec: ModelSpec) -> float:
    """Parameters without building: per block 4C² (qkv, proj) + 2·C·hidden (MLP), then the
    patch embedding, position embeddings and head (biases and norms left out: < 1%)."""
    cfg = spec.config
    dim, hidden = cfg["embed_dim"], int(cfg["embed_dim"] * cfg["mlp_ratio"])
    tokens = (spec.img_size // cfg["patch_size"]) ** 2 + 1
    return (cfg["depth"] * (4 * dim * dim + 2 * dim * hidden)
            + (3 * cfg["patch_size"] ** 2 + tokens + cfg["num_classes"]) * dim)


SCHEMA = Schema(
    fields={
        "img_size": Field(int, minimum=1, multiple_of="patch_size"),
        "patch_size": Field(int, minimum=1, maximum=1024),
        "embed_dim": Field(int, minimum=1, maximum=MAX_WIDTH, multiple_of="num_heads"),
        "depth": Field(int, minimum=1, maximum=MAX_DEPTH),
        "num_heads": Field(int, minimum=1, maximum=MAX_WIDTH),
        "mlp_ratio": Field(float, above=0, maximum=64),
        "num_classes": Field(int, minimum=0, maximum=MAX_CLASSES),  # 0: no head
    },
    params=param_estimate,
)

VIT = Architecture(
    name=NAME,
    family="ViT",
    paper="Dosovitskiy et al. 2021, An Image is Worth 16x16 Words (ICLR); DeiT: Touvron et al. 2021",
    input_kind="image",
    default_variant="small",
    description="Vision Transformer: 16x16 patches as tokens, class token, global MSA encoder",
    variants={
        "tiny": _variant(16, 192, 12, 3, 224, "ViT-Ti/16 = DeiT-Ti", PUBLISHED["tiny"]),
        "small": _variant(16, 384, 12, 6, 224, "ViT-S/16 = DeiT-S", PUBLISHED["small"]),
        "base": _variant(16, 768, 12, 12, 224, "ViT-B/16 = DeiT-B", PUBLISHED["base"]),
        "large": _variant(16, 1024, 24, 16, 224, "ViT-L/16"),
        "huge": _variant(14, 1280, 32, 16, 224, "ViT-H/14"),
        "base_patch32": _variant(32, 768, 12, 12, 224, "ViT-B/32"),
        "base_384": _variant(16, 768, 12, 12, 384, "ViT-B/16 at 384 = DeiT-B 384",
                             PUBLISHED["base_384"]),
    },
    token_mixer_types=("Attention",),
    mlp_types=("Mlp",),
    mixer_swap=MixerSwap(stages=swap_stages, layout="tokens", notes=swap_notes),
    schema=SCHEMA,
)


# --------------------------------------------------------------------------- token mixer


def _check_heads(cfg: MixerConfig) -> None:
    if cfg.dim % cfg.heads:
        raise UsageError(f"msa: the head count {cfg.heads} does not divide dim {cfg.dim}")


def _build_msa(cfg: MixerConfig) -> Any:
    from archbench_vit.model import Attention

    return Attention(cfg.dim, cfg.heads)


MSA = TokenMixer(
    name="msa",
    description="global multi-head self-attention over all hw tokens, Swin eq. (1) 4NC^2 + 2N^2C",
    paper=VIT.paper,
    build=_build_msa,
    macs=lambda cfg: msa_macs(cfg.tokens, cfg.dim),
    layout="tokens",
    check=_check_heads,
    attention_bytes=lambda cfg: cfg.heads * cfg.tokens**2,
)


@hookimpl
def archbench_token_mixers() -> list[TokenMixer]:
    return [MSA]


@hookimpl
def archbench_architectures() -> list[Architecture]:
    return [VIT]


@hookimpl
def archbench_build_model(spec: ModelSpec, swap):
    """ViT, or with ``swap`` (``vit:small+gnconv``) the swapped mixer in every block; a
    2-D mixer sees the patch grid as a map, so the class token is dropped and the head
    reads the token average."""
    if spec.arch.name != NAME:
        return None
    from archbench_vit.model import VisionTransformer

    if swap is None:
        return VisionTransformer(img_size=spec.img_size, **spec.config)
    return VisionTransformer(img_size=spec.img_size, **spec.config,
                             mixer_factory=lambda: swap(0), class_token=swap.mixer_layout == "tokens")


@hookimpl
def archbench_analyze(ctx) -> dict[str, Any] | None:
    """Global MSA cost, Swin paper eq. (1), per block and summed, beside the counted MACs."""
    if ctx.spec.arch.name != NAME or ctx.swap is not None:
        return None  # a swapped model's mixer columns come from the core
    cfg = ctx.spec.config
    tokens = (ctx.spec.img_size // cfg["patch_size"]) ** 2 + 1  # patches + class token
    per_layer = msa_macs(tokens, cfg["embed_dim"])
    total = per_layer * cfg["depth"]
    return {
        "mixer": "msa",
        "mixer_gmacs_formula": total / 1e9,
        "mixer_gmacs_as_msa": total / 1e9,
        "mixer_msa_saving": 1.0,  # it is global MSA
        "mixer_formula": {
            "equation": "Swin eq. (1): 4NC^2 + 2N^2C per block, softmax omitted",
            "tokens": tokens,
            "dim": cfg["embed_dim"],
            "blocks": cfg["depth"],
            "macs_per_block": per_layer,
            "crossover_tokens": msa_crossover_tokens(cfg["embed_dim"]),
        },
    }
