"""archbench plugin: ConvNeXt (Liu et al. 2022), a third-party plugin package.

Registered in this package's ``pyproject.toml``::

    [project.entry-points.archbench]
    convnext = "archbench_convnext"

This module stays light (no torch import) so ``archbench list`` answers fast; the model
lives in :mod:`archbench_convnext.model` and is imported only when a model is built.
"""

from __future__ import annotations

from typing import Any

from archbench import Architecture, ModelSpec, UsageError, Variant, hookimpl
from archbench.formulas import msa_macs, wmsa_macs

__version__ = "0.1.0"

NAME = "convnext"


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
)


@hookimpl
def archbench_architectures() -> list[Architecture]:
    return [CONVNEXT]


@hookimpl
def archbench_validate(spec: ModelSpec) -> None:
    if spec.arch.name != NAME:
        return
    cfg = spec.config
    depths, dims = cfg["depths"], cfg["dims"]
    if len(depths) != len(dims) or not depths:
        raise UsageError(
            f"{spec.name}: depths {depths} and dims {dims} need the same, "
            "non-zero length (one entry per stage)"
        )
    if min(depths) < 1 or min(dims) < 1:
        raise UsageError(f"{spec.name}: every depth and width must be at least 1")
    if cfg["kernel_size"] < 1 or cfg["kernel_size"] % 2 == 0:
        raise UsageError(f"{spec.name}: kernel_size must be odd, got {cfg['kernel_size']}")
    stride = 4 * 2 ** (len(depths) - 1)  # the stem's 4, then 2 per downsampling layer
    if spec.img_size % stride:
        raise UsageError(
            f"{spec.name}: image size {spec.img_size} is not divisible by the "
            f"total stride {stride} of {len(depths)} stages"
        )


@hookimpl
def archbench_build_model(spec: ModelSpec):
    if spec.arch.name != NAME:
        return None
    from archbench_convnext.model import ConvNeXt

    return ConvNeXt(**spec.config)


@hookimpl
def archbench_analyze(ctx) -> dict[str, Any] | None:
    """Depth-wise conv cost, H·W·C·k² MACs per block, beside what MSA would cost there."""
    if ctx.spec.arch.name != NAME:
        return None
    cfg = ctx.spec.config
    k = cfg["kernel_size"]
    stages, total, as_msa, as_wmsa = [], 0, 0, 0
    for i, (depth, dim) in enumerate(zip(cfg["depths"], cfg["dims"])):
        side = ctx.spec.img_size // (4 * 2**i)
        tokens = side * side
        padded = -(-side // 7) * 7  # W-MSA pads the feature map up to whole 7x7 windows
        per_block = tokens * dim * k * k
        stages.append(
            {"stage": i + 1, "side": side, "dim": dim, "blocks": depth, "macs_per_block": per_block}
        )
        total += depth * per_block
        as_msa += depth * msa_macs(tokens, dim)
        as_wmsa += depth * wmsa_macs(padded * padded, dim, 7)
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
                "as fvcore does not count it"
            ],
        },
    }
