"""archbench plugin: every timm model by name (``timm:convnext_tiny``, ``'timm:*convnext*'``).

timm (Wightman, *PyTorch Image Models*) registers well over a thousand models, too many to
list up front, so the architecture ``timm`` has no fixed variants: the core asks
:func:`find_variants` when the user names ``timm``, and only then is timm (and torch)
imported. ``archbench list`` without a ``timm`` pattern stays torch-free.

Models are built with ``timm.create_model(name, pretrained=False)`` (random weights, no
download). The default input size is the model's pretrained config ``input_size``;
``--img-size`` is passed to ``create_model`` where the model takes ``img_size`` (ViT,
Swin, ...) and otherwise only changes the example input.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from archbench import Architecture, Field, ModelSpec, Schema, UsageError, Variant, hookimpl
from archbench.core.schema import MAX_CLASSES

NAME = "timm"
DEFAULT_MODEL = "vit_small_patch16_224"

#: timm's token mixers by module class name, with the short name the ``mixer`` column
#: shows: global attention (ViT, DeiT, ...), window attention (Swin v1 and v2), and a child
#: module with no class of its own as ``Class.attribute`` (ConvNeXt's 7x7 depth-wise
#: ``conv_dw``, an ``nn.Conv2d``). The core sums fvcore's MACs over class names (the
#: ``Class.attribute`` entries are timed by ``--breakdown``), so extend this table, not the
#: core, to make another timm model's mixer known (docs/plugins.md).
MIXER_NAMES = {"Attention": "msa", "WindowAttention": "w-msa",
               "ConvNeXtBlock.conv_dw": "dwconv"}
#: timm's MLP blocks (ConvNeXt's is ``Mlp``, ``ConvMlp`` or V2's ``GlobalResponseNormMlp``).
MLP_TYPES = ("Mlp", "GluMlp", "SwiGLU", "GatedMlp", "ConvMlp", "GlobalResponseNormMlp")
#: ``--breakdown``: Swin's window partition and reverse, and its cyclic shift, as the
#: ``window`` line (timm adds its shift mask inside ``WindowAttention``: mixer time there).
WINDOW_REGIONS = (
    "timm.models.swin_transformer.window_partition",
    "timm.models.swin_transformer.window_reverse",
    "timm.models.swin_transformer_v2.window_partition",
    "timm.models.swin_transformer_v2.window_reverse",
    "aten::roll",
)


def _variant(model_name: str) -> Variant:
    """A timm model (``arch`` or ``arch.tag``) as a variant: its pretrained config's input size
    and class count; the config keys are ``create_model`` keyword arguments."""
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(model_name)
    in_chans, _, width = cfg.input_size if cfg and cfg.input_size else (3, 224, 224)
    num_classes = cfg.num_classes if cfg and cfg.num_classes else 1000
    paper = f" ({cfg.paper_name})" if cfg and cfg.paper_name else ""
    return Variant(
        config={"num_classes": num_classes, "in_chans": in_chans},
        img_size=width,
        description=f"timm.create_model({model_name!r}){paper}",
    )


def find_variants(pattern: str) -> Mapping[str, Variant]:
    """timm models matching an fnmatch ``pattern`` (timm's own ``list_models``), or the one
    exact name; an unknown exact name raises ``UsageError`` naming the closest models."""
    import timm

    if any(c in pattern for c in "*?["):
        return {name: _variant(name) for name in timm.list_models(pattern)}
    if timm.is_model(pattern):
        return {pattern: _variant(pattern)}
    known = timm.list_models()
    close = difflib.get_close_matches(pattern.partition(".")[0], known, n=5, cutoff=0.6)
    hint = f"; closest: {', '.join(close)}" if close else ""
    raise UsageError(
        f"unknown timm model {pattern!r}{hint} (search: archbench list 'timm:*{pattern[:4]}*')"
    )


TIMM = Architecture(
    name=NAME,
    family="timm",
    paper="Wightman 2019, PyTorch Image Models (timm); each model's own paper",
    input_kind="image",
    variants={},
    default_variant=DEFAULT_MODEL,
    description="any timm model by name, e.g. timm:convnext_tiny; list with 'timm:*PATTERN*'",
    token_mixer_types=tuple(MIXER_NAMES),
    mlp_types=MLP_TYPES,
    stage_modules=("stages.{i}", "layers.{i}"),  # ConvNeXt, Swin; ViT has none
    time_regions={"window": WINDOW_REGIONS},
    find_variants=find_variants,
    # The config holds create_model's num_classes and in_chans (0 classes: no head); the
    # model's own shape is timm's, so there is no size estimate here.
    schema=Schema(fields={"num_classes": Field(int, minimum=0, maximum=MAX_CLASSES),
                          "in_chans": Field(int, minimum=1, maximum=1024)}),
)


@hookimpl
def archbench_architectures() -> list[Architecture]:
    return [TIMM]


@hookimpl
def archbench_build_model(spec: ModelSpec):
    if spec.arch.name != NAME:
        return None
    import timm

    kwargs = dict(spec.config)
    if spec.img_size != _variant(spec.variant).img_size:
        try:
            return timm.create_model(
                spec.variant, pretrained=False, img_size=spec.img_size, **kwargs
            )
        except TypeError as exc:
            if "img_size" not in str(exc):
                raise
            # A convolutional model takes any input size: only the example input changes.
    return timm.create_model(spec.variant, pretrained=False, **kwargs)


@hookimpl
def archbench_analyze(ctx) -> dict[str, Any] | None:
    """The token mixer's short name where timm's module classes show it (``msa``, ``w-msa``)."""
    if ctx.spec.arch.name != NAME:
        return None
    from archbench.measure.counting import type_names_in

    found = type_names_in(ctx.model) & set(MIXER_NAMES)
    return {"mixer": "+".join(sorted(MIXER_NAMES[c] for c in found)) or None}
