"""What ``--data``, ``--labels``, ``--weights`` and ``--limit`` must satisfy, checked by the
plan before anything runs (one line, exit 2): the options together, the folder and its
labels, each model's weights (a checkpoint's names and shapes against the model built on
the meta device; timm's weights on disk or downloadable), and each model's class count
against the data's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from archbench.accuracy.data import ImageSet, check_classes, scan
from archbench.accuracy.weights import (
    checkpoint_problem,
    mismatch,
    shapes,
    timm_download_problem,
    timm_kwargs,
    timm_tag,
)
from archbench.core.accuracy import Evaluation, WeightSource
from archbench.core.errors import UsageError
from archbench.core.settings import RunSettings
from archbench.core.spec import ModelSpec

#: Images per forward pass of the evaluation.
EVAL_BATCH_SIZE = 32
_KEY = re.compile(r"[A-Za-z0-9_.:+\-]+(\[[^\]]*\])?")


def split_source(text: str) -> tuple[str | None, str]:
    """``--weights`` value → (model key or None, source): ``timm``, ``PATH``,
    ``MODEL=timm`` or ``MODEL=PATH``, MODEL a row name (``vit:small``, ``vit``)."""
    if text == "timm" or Path(text).expanduser().exists():
        return None, text
    key, sep, source = text.partition("=")
    depth = 0
    for i, ch in enumerate(text):  # the first '=' outside [...]
        depth += {"[": 1, "]": -1}.get(ch, 0)
        if ch == "=" and depth == 0:
            key, sep, source = text[:i], "=", text[i + 1:]
            break
    if sep and _KEY.fullmatch(key) and source:
        return key, source
    return None, text


def _matches(key: str, spec: ModelSpec) -> int:
    """How closely ``key`` names ``spec`` (0: not at all)."""
    plain = f"{spec.arch.name}:{spec.variant}"
    return {spec.name: 3, plain: 2, spec.arch.name: 1}.get(key, 0)


def assign_weights(values: Sequence[str], specs: Sequence[ModelSpec]) -> list[WeightSource]:
    """One weight source per spec: the most specific ``MODEL=SOURCE`` that names it, else
    the plain ``SOURCE``; UsageError for a file that does not exist, a key that names no
    model, two plain sources, or a model left without weights."""
    plain: list[str] = []
    keyed: list[tuple[str, str]] = []
    for value in values:
        key, source = split_source(value)
        (keyed.append((key, source)) if key is not None else plain.append(source))
    if len(set(plain)) > 1:
        raise UsageError(f"--weights {plain[0]} and --weights {plain[1]}: give one source for "
                         "all models, or MODEL=SOURCE for each (e.g. vit:small=deit_s.pth)")
    for key, _ in keyed:
        if not any(_matches(key, s) for s in specs):
            raise UsageError(f"--weights {key}=...: {key} is none of the models "
                             f"({', '.join(s.name for s in specs)})")
    out = []
    for spec in specs:
        ranked = sorted(((_matches(k, spec), src) for k, src in keyed if _matches(k, spec)),
                        key=lambda t: -t[0])
        source = ranked[0][1] if ranked else (plain[0] if plain else None)
        if source is None:
            raise UsageError(f"--weights: no weights for {spec.name}; give --weights timm, "
                             f"--weights PATH or --weights {spec.name}=SOURCE")
        out.append(_source(spec, source))
    return out


def _check_timm_head(spec: ModelSpec, tag: str) -> None:
    """timm drops the pretrained classifier (or stem) where ``num_classes`` (``in_chans``)
    differs from the weights', leaving it random: a ``timm:`` target overriding either is
    refused rather than scored with a random head."""
    if spec.arch.name != "timm":
        return
    import timm

    cfg = timm.models.get_pretrained_cfg(tag)
    wanted = {"num_classes": getattr(cfg, "num_classes", 1000),
              "in_chans": (getattr(cfg, "input_size", None) or (3,))[0]}
    for key, value in wanted.items():
        if key in spec.config and spec.config[key] != value:
            raise UsageError(f"--weights timm: {spec.name} sets {key}={spec.config[key]}, "
                             f"timm's {tag} weights have {value} (timm would leave that "
                             "layer random); drop the override or pass a checkpoint PATH")


def _source(spec: ModelSpec, source: str) -> WeightSource:
    if source == "timm":
        tag = timm_tag(spec)
        if tag is None:
            why = ("its token mixer is swapped" if spec.mixer else
                   f"timm has no {spec.arch.name} model" if spec.arch.name == "hornet" else
                   "no timm model matches it")
            raise UsageError(f"--weights timm: {spec.name} has no timm weights ({why}); "
                             f"pass --weights {spec.name}=PATH (a checkpoint file)")
        _check_timm_head(spec, tag)
        return WeightSource(spec.name, "timm", tag)
    path = Path(source).expanduser()
    if not path.is_file():
        raise UsageError(f"--weights {source}: no such file (give timm or a checkpoint path)")
    return WeightSource(spec.name, "path", str(path.resolve()))


def check_request(m: Any, settings: RunSettings, specs: Sequence[ModelSpec]) -> None:
    """The accuracy options against each other and the run, without torch."""
    if not m.data:
        given = [o for o, v in (("--weights", m.weights), ("--labels", m.labels),
                                ("--limit", m.limit)) if v]
        if given:
            raise UsageError(f"{given[0]} applies to --data DIR's evaluation; give --data")
        return
    if not m.weights:
        raise UsageError("--data needs --weights (timm, a checkpoint PATH, or MODEL=SOURCE): "
                         "the models are built with random weights")
    if not settings.latency:
        raise UsageError("--data evaluates each model after its timed trials; with "
                         "--no-latency nothing is timed (for a quick run: --repeat 1 "
                         "--min-time 0)")
    if settings.mode == "train":
        raise UsageError("--data evaluates the trained weights; with --mode train the timed "
                         "training steps change them first: use --mode infer")
    tokens = [s.name for s in specs if s.arch.input_kind != "image"]
    if tokens:
        raise UsageError(f"--data evaluates image classifiers; {tokens[0]} takes token "
                         "sequences")


def head_size(spec: ModelSpec, model: Any) -> int | None:
    """The model's class count: its config's ``num_classes``, else one meta forward."""
    import torch

    classes = spec.config.get("num_classes")
    if isinstance(classes, int) and not isinstance(classes, bool):
        return classes
    size = spec.img_size or 224
    try:
        out = model(torch.empty((1, 3, size, size), device="meta"))
    except Exception:
        return None  # left to the evaluation, which checks the scores it gets
    return int(out.shape[-1]) if isinstance(out, torch.Tensor) and out.dim() == 2 else None


def check_model(pm: Any, spec: ModelSpec, source: WeightSource, images: ImageSet,
                data: str) -> None:
    """The model (built on the meta device) against the data's classes and its weights."""
    import torch

    from archbench.core.mixers import collect_mixers
    from archbench.mixers.swap import plan_swap

    swap = plan_swap(spec, collect_mixers(pm)) if spec.mixer else None
    try:
        with torch.device("meta"):
            model = pm.hook.archbench_build_model(spec=spec, swap=swap)
    except Exception:
        return  # not on the meta device: the row builds it and checks what it gets
    if model is None:
        return  # no plugin builds it: its row fails with that
    head = head_size(spec, model)
    if head == 0:
        raise UsageError(f"--data: {spec.name} has no classification head (num_classes=0)")
    if head is not None:
        check_classes(images, head, spec.name, data)
    own = shapes(model.state_dict())
    if source.kind == "path":
        theirs, problem = checkpoint_problem(source.value)
    else:
        import timm

        with torch.device("meta"):
            theirs = shapes(timm.create_model(source.value, pretrained=False,
                                              **timm_kwargs(spec)).state_dict())
        problem = None
    problem = problem or mismatch(own, theirs)
    if problem:
        raise UsageError(f"--weights {source.label} does not fit {spec.name}: {problem}")


def plan_evaluation(pm: Any, m: Any, settings: RunSettings, specs: Sequence[ModelSpec]
                    ) -> Evaluation | None:
    """The run's :class:`Evaluation` (None without ``--data``), every check passed."""
    check_request(m, settings, specs)
    if not m.data:
        return None
    images = scan(m.data, m.labels)
    sources = assign_weights(m.weights, specs)
    for tag in dict.fromkeys(s.value for s in sources if s.kind == "timm"):
        problem = timm_download_problem(tag)
        if problem:
            raise UsageError(f"--weights timm: {problem}; pass --weights PATH (a checkpoint "
                             "file) instead")
    for spec, source in zip(specs, sources):
        check_model(pm, spec, source, images, m.data)
    return Evaluation(
        data=str(Path(m.data).expanduser().resolve()),
        labels=str(Path(m.labels).expanduser().resolve()) if m.labels else None,
        weights=tuple(sources), limit=m.limit, batch_size=EVAL_BATCH_SIZE,
        images=len(images.samples), classes=images.classes or 0, layout=images.layout)
