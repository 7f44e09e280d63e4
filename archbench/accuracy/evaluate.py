"""The evaluation pass: load the weights, stream the images through the model on the run's
device and dtype, count top-1 and top-5.

Images that cannot be decoded are skipped and counted (``eval_skipped``, the first ones
named in the JSON), never silently: ``top1`` is over ``eval_images``, the images that
were read. A model whose every image failed, or whose output is not one score per class,
fails its row.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from archbench.accuracy.data import ImageSet, chosen, scan
from archbench.accuracy.preprocess import data_config, describe, make_transform
from archbench.accuracy.weights import file_digest, load_into, read_checkpoint, timm_state
from archbench.core.accuracy import Evaluation, WeightSource
from archbench.core.settings import RunSettings
from archbench.core.spec import ModelSpec

if TYPE_CHECKING:
    import torch

#: Top-k accuracies reported.
TOPK = (1, 5)
#: Skipped images named in the JSON details.
SKIPPED_NAMED = 20
#: Below this many images the pass decodes in this process; above, in loader workers.
WORKERS_FROM = 512


def topk_correct(logits: torch.Tensor, targets: torch.Tensor, ks: Sequence[int] = TOPK
                 ) -> dict[int, int | None]:
    """How many rows of ``logits`` (batch, classes) have their target among the ``k``
    highest scores, per k; None for a k above the class count."""
    out: dict[int, int | None] = {}
    ranked = logits.topk(min(max(ks), logits.shape[-1]), dim=-1).indices
    for k in ks:
        if k > logits.shape[-1]:
            out[k] = None
            continue
        out[k] = int((ranked[:, :k] == targets[:, None]).any(dim=1).sum())
    return out


def accuracy(correct: dict[int, int | None], images: int) -> dict[str, float | None]:
    """Percentages from counts: ``{"top1": ..., "top5": ...}``."""
    return {f"top{k}": (100.0 * c / images if c is not None and images else None)
            for k, c in correct.items()}


class Images:
    """(image tensor, label, position, error text) per sample; an image that cannot be
    decoded comes back as zeros with its error, for the loop to leave out and count."""

    def __init__(self, samples: Sequence[tuple[str, int]], transform: Any,
                 shape: tuple[int, ...]) -> None:
        self.samples, self.transform, self.shape = samples, transform, shape

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[Any, int, int, str]:
        import torch
        from PIL import Image

        path, label = self.samples[i]
        try:
            with Image.open(path) as image:
                return self.transform(image.convert("RGB")), label, i, ""
        except Exception as exc:
            return torch.zeros(self.shape), label, i, f"{type(exc).__name__}: {exc}"[:300]


def load_weights(model: torch.nn.Module, spec: ModelSpec, source: WeightSource) -> str:
    """Put ``source``'s weights into ``model``; returns what was loaded, for the report."""
    if source.kind == "timm":
        load_into(model, timm_state(source.value, spec), f"timm {source.value}", spec.name)
        return source.label
    load_into(model, read_checkpoint(source.value), source.value, spec.name)
    return f"{source.value} (sha256 {file_digest(source.value)})"


def _outputs(model: torch.nn.Module, x: torch.Tensor, images: ImageSet, top: int, name: str
             ) -> torch.Tensor:
    """The model's class scores for ``x``, checked against the data's classes (``top``:
    its highest label)."""
    import torch

    out = model(x)
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        out = out[0]
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != x.shape[0]:
        raise RuntimeError(f"{name}'s output is not one row of class scores per image "
                           f"(got {getattr(out, 'shape', type(out).__name__)})")
    if images.classes is not None and out.shape[1] != images.classes:
        raise RuntimeError(f"{name} scores {out.shape[1]} classes; the data has "
                           f"{images.classes} ({images.layout})")
    if images.classes is None and out.shape[1] <= top:
        raise RuntimeError(f"{name} scores {out.shape[1]} classes; the data has label {top}")
    return out.float()


def _loader(images: Images, batch_size: int) -> Any:
    from torch.utils.data import DataLoader

    workers = 0 if len(images) < WORKERS_FROM else max(1, min(8, (os.cpu_count() or 2) // 2))
    return DataLoader(images, batch_size=batch_size, shuffle=False, num_workers=workers)


class Progress:
    """A line on stderr about every tenth of the images (and at the end)."""

    def __init__(self, name: str, total: int, say: Callable[[str], None] | None = None) -> None:
        self.name, self.total, self.next = name, total, max(1, total // 10)
        self.say = say or (lambda text: print(text, file=sys.stderr, flush=True))
        self.start = time.perf_counter()

    def update(self, seen: int, evaluated: int, correct: int) -> None:
        """``seen`` images so far, of which ``evaluated`` could be read."""
        if seen < self.next and seen < self.total:
            return
        self.next = seen + max(1, self.total // 10)
        rate = seen / max(time.perf_counter() - self.start, 1e-9)
        skipped = f" ({seen - evaluated} unreadable, skipped)" if seen > evaluated else ""
        self.say(f"  {self.name}: {seen:,}/{self.total:,} images{skipped}, top-1 so far "
                 f"{100 * correct / max(evaluated, 1):.2f}%, {rate:.1f} images/s")


def run_pass(model: torch.nn.Module, spec: ModelSpec, settings: RunSettings,
             samples: Sequence[tuple[str, int]], config: dict[str, Any], images: ImageSet
             ) -> dict[str, Any]:
    """Every sample through the model: counts, predictions and skipped images."""
    import torch

    from archbench.measure.workload import place_inputs

    evaluation = settings.evaluation
    dataset = Images(samples, make_transform(config), tuple(config["input_size"]))
    progress = Progress(spec.name, len(samples))
    correct = {k: 0 for k in TOPK}
    top = max(label for _, label in images.samples)
    predictions: list[int] = []
    targets: list[int] = []
    skipped: list[str] = []
    with torch.no_grad():
        for x, y, index, errors in _loader(dataset, evaluation.batch_size):
            keep = torch.tensor([not e for e in errors], dtype=torch.bool)
            skipped += [f"{samples[int(i)][0]}: {e}" for i, e in zip(index, errors) if e]
            if keep.any():
                (inputs,) = place_inputs((x[keep],), settings)
                logits = _outputs(model, inputs, images, top, spec.name).cpu()
                found = topk_correct(logits, y[keep])
                for k, c in found.items():
                    correct[k] = None if c is None else correct[k] + c
                predictions += logits.argmax(dim=1).tolist()
                targets += y[keep].tolist()
            progress.update(len(predictions) + len(skipped), len(predictions), correct[1] or 0)
    return {"correct": correct, "predictions": predictions, "targets": targets,
            "skipped": skipped}


def evaluate(model: torch.nn.Module, spec: ModelSpec, settings: RunSettings
             ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Load the model's weights, evaluate it on ``--data``: (columns, JSON details)."""
    evaluation: Evaluation = settings.evaluation
    source = evaluation.source_for(spec.name)
    if source is None:
        raise RuntimeError(f"the plan gave no weights for {spec.name}")
    images: ImageSet = scan(evaluation.data, evaluation.labels)
    if len(images.samples) != evaluation.images:
        raise RuntimeError(f"--data {evaluation.data} held {evaluation.images} images when "
                           f"the run was planned and {len(images.samples)} now")
    loaded = load_weights(model, spec, source)
    config, config_source = data_config(spec)
    samples = chosen(images.samples, evaluation.limit)
    start = time.perf_counter()
    found = run_pass(model, spec, settings, samples, config, images)
    seconds = time.perf_counter() - start
    done = len(found["predictions"])
    if not done:
        raise RuntimeError(f"none of the {len(samples)} images could be read; the first: "
                           f"{found['skipped'][0]}")
    columns: dict[str, Any] = {
        **accuracy(found["correct"], done),
        "eval_images": done, "eval_skipped": len(found["skipped"]), "eval_weights": loaded,
        "eval_preprocess": describe(config), "eval_labels": images.layout,
        "eval_s": seconds, "eval_images_per_s": done / seconds if seconds else None,
    }
    details = {
        "eval_preprocess_config": {**config, "source": config_source},
        "eval_predictions": found["predictions"], "eval_targets": found["targets"],
        "eval_skipped_files": found["skipped"][:SKIPPED_NAMED],
    }
    notes = []
    if found["skipped"]:
        notes.append(f"{len(found['skipped'])} of {len(samples)} images could not be read "
                     f"and were skipped; top-1/top-5 are over the {done} that were (the "
                     f"first: {found['skipped'][0]})")
    if columns.get("top5") is None:
        notes.append("no top-5: the model has fewer than 5 classes")
    if notes:
        columns["eval_note"] = "; ".join(notes)
    return columns, details
