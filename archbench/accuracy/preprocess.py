"""Each model's own evaluation preprocessing: resize, crop, interpolation, mean and std as
timm's pretrained config defines them for the matching timm model (read from the timm
package, no download), at the model's input size; built with timm's own
``resolve_data_config`` and ``create_transform``.

HorNet has no timm model: its official evaluation (ConvNeXt's transform) is used, bicubic
resize to size/0.875 then a centre crop below 384, a bicubic warp to size x size from 384,
ImageNet mean and std. A model matching nothing (a third-party plugin's) gets timm's
defaults at its input size: bicubic, crop_pct 0.875, centre crop, ImageNet mean and std.
"""

from __future__ import annotations

from typing import Any

from archbench.accuracy.weights import timm_tag
from archbench.core.spec import ModelSpec

#: HorNet's evaluation below and from 384 (raoyongming/HorNet datasets.py).
HORNET_CROP = {"interpolation": "bicubic", "crop_pct": 224 / 256, "crop_mode": "center"}
HORNET_WARP = {"interpolation": "bicubic", "crop_pct": 1.0, "crop_mode": "squash"}


def data_config(spec: ModelSpec) -> tuple[dict[str, Any], str]:
    """timm's data config for ``spec`` at its input size, and where it comes from."""
    from timm.data import resolve_data_config
    from timm.models import get_pretrained_cfg

    tag = timm_tag(spec)
    cfg = get_pretrained_cfg(tag) if tag else None
    if cfg is not None:
        pretrained, source = cfg.to_dict(), f"timm pretrained_cfg of {tag}"
    elif spec.arch.name == "hornet":
        warp = (spec.img_size or 0) >= 384
        pretrained = dict(HORNET_WARP if warp else HORNET_CROP)
        source = "HorNet's official evaluation (ConvNeXt's transform)"
    else:
        pretrained, source = {}, "timm's defaults (no matching timm model)"
    size = spec.img_size or 224
    config = resolve_data_config(args={"input_size": (3, size, size)},
                                 pretrained_cfg=pretrained)
    return config, source


def describe(config: dict[str, Any]) -> str:
    """The transform in a few words, e.g. ``resize 248 bicubic, center crop 224,
    mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225)``."""
    size = config["input_size"][-1]
    crop_pct = config.get("crop_pct") or 1.0
    scale = int(size / crop_pct)
    interpolation = config.get("interpolation", "bilinear")
    if config.get("crop_mode") == "squash":
        resize = f"resize to {scale}x{scale} {interpolation}"
    else:
        resize = f"resize {scale} {interpolation}"
    mean = tuple(round(v, 4) for v in config["mean"])
    std = tuple(round(v, 4) for v in config["std"])
    return f"{resize}, center crop {size}, mean {mean}, std {std}"


def make_transform(config: dict[str, Any]) -> Any:
    """timm's evaluation transform for ``config`` (PIL image → normalised tensor)."""
    from timm.data import create_transform

    return create_transform(**config, is_training=False)
