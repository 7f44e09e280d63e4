"""Accuracy as plain data: a variant's published ImageNet-1k top-1 (:class:`Published`) and
what a run measures it on (:class:`Evaluation`: ``compare --data DIR --weights SOURCE``).

No torch here: ``archbench list`` shows the published numbers without it, and an
:class:`Evaluation` travels inside every task's :class:`archbench.RunSettings`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from archbench.core.spec import ModelSpec

#: What a published figure was pre-trained on before its ImageNet-1k fine-tuning (or
#: training): ``ImageNet-1k`` (trained on it alone) or ``ImageNet-22k``.
IMAGENET_1K = "ImageNet-1k"
IMAGENET_22K = "ImageNet-22k"


@dataclass(frozen=True)
class Published:
    """A variant's published ImageNet-1k validation accuracy, in percent, single crop at the
    variant's own input size, with where it is published: the paper and its table (and
    the pre-training data when it is not ImageNet-1k alone). ``note`` says what a reader
    should know beside it (the released checkpoint's own figure, say).

    Give it only for the exact configuration the source reports: the core shows it for
    the variant as registered, never for a target with overrides, a ``+MIXER`` swap or
    another input size.
    """

    top1: float
    source: str
    pretrain: str = IMAGENET_1K
    top5: float | None = None
    note: str = ""

    def __post_init__(self) -> None:
        for name, value in (("top1", self.top1), ("top5", self.top5)):
            if value is None and name == "top5":
                continue
            if not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or not 0 < value <= 100:
                raise ValueError(f"Published.{name} is a percentage in (0, 100], got {value!r}")
        if not isinstance(self.source, str) or not self.source.strip():
            raise ValueError("Published.source must say where the figure is published")

    def as_dict(self) -> dict[str, Any]:
        return {"top1": self.top1, "top5": self.top5, "source": self.source,
                "pretrain": self.pretrain, "note": self.note}


def published_for(spec: ModelSpec) -> Published | None:
    """The published figure of ``spec`` where it is the registered variant unchanged (same
    config, input size and token mixer), else None."""
    variant = spec.arch.variants.get(spec.variant)
    published = getattr(variant, "published", None)
    if published is None or spec.mixer or spec.label:
        return None
    if spec.img_size != variant.img_size or dict(spec.config) != dict(variant.config):
        return None
    return published


def published_columns(spec: ModelSpec) -> dict[str, Any] | None:
    """The row's ``top1_published`` columns (None: nothing published for it)."""
    published = published_for(spec)
    if published is None:
        return None
    columns: dict[str, Any] = {"top1_published": float(published.top1),
                               "top1_source": published.source,
                               "top1_pretrain": published.pretrain}
    if published.top5 is not None:
        columns["top5_published"] = float(published.top5)
    if published.note:
        columns["top1_published_note"] = published.note
    return columns


WeightKind = Literal["timm", "path"]


@dataclass(frozen=True)
class WeightSource:
    """The weights one model is evaluated with: a timm pretrained tag (loaded through
    timm's own download machinery and hub cache) or a local checkpoint file."""

    model: str
    kind: WeightKind
    #: The timm tag (``deit_small_patch16_224.fb_in1k``) or the checkpoint's absolute path.
    value: str

    @property
    def label(self) -> str:
        return f"timm:{self.value}" if self.kind == "timm" else self.value


@dataclass(frozen=True)
class Evaluation:
    """What ``--data`` measures, checked by the plan: the image folder (ImageFolder
    layout, or a flat folder with a labels CSV), each model's weights, ``--limit``, and
    what the plan found there (so a worker that finds something else fails its row)."""

    data: str
    labels: str | None
    weights: tuple[WeightSource, ...]
    limit: int | None = None
    batch_size: int = 32
    #: Images and classes the plan found (before ``--limit``).
    images: int = 0
    classes: int = 0
    #: How labels map to class indices, in words (the report says it).
    layout: str = ""

    def source_for(self, model: str) -> WeightSource | None:
        return next((w for w in self.weights if w.model == model), None)
