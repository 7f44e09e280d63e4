"""Core plugin: accuracy next to cost.

- ``archbench_analyze``: the variant's published ImageNet-1k top-1 (``top1_published``,
  ``top1_source``, ``top1_pretrain``), from ``Variant.published``, for the variant as
  registered (not with overrides, a swapped mixer or another input size). The complexity
  cache keeps it with the analysis; its key covers the plugins' sources (where the
  figures live) and this module (``COUNTING_SOURCES``), so an edited figure is never stale.
- ``archbench_evaluate``: with ``--data``, the measured top-1 and top-5 of the model with
  its weights loaded (:mod:`archbench.accuracy.evaluate`), once per model after its timed
  trials; every batch size's row of the model carries the same figures (the per-image
  predictions are in the JSON details of its first row).
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from archbench import hookimpl
from archbench.core.accuracy import published_columns
from archbench.core.errors import error_text
from archbench.core.settings import RunSettings
from archbench.core.spec import ModelSpec

if TYPE_CHECKING:
    from torch import nn

    from archbench.measure.counting import AnalysisContext

#: Each evaluated model's result (columns, details) or the exception its evaluation
#: raised, until the model is freed: its other batch sizes' rows reuse it.
_measured: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@hookimpl
def archbench_analyze(ctx: AnalysisContext) -> dict[str, Any] | None:
    return published_columns(ctx.spec)


@hookimpl
def archbench_evaluate(spec: ModelSpec, model: nn.Module, settings: RunSettings
                       ) -> dict[str, Any] | None:
    if settings.evaluation is None or spec.arch.input_kind != "image":
        return None
    found = _measured.get(model)
    if found is not None:
        if isinstance(found, str):
            raise RuntimeError(f"the evaluation failed: {found}")
        return dict(found[0])
    from archbench.accuracy.evaluate import evaluate

    try:
        columns, details = evaluate(model, spec, settings)
    except Exception as exc:
        # its text only: the exception's traceback holds the model, which would never die
        _measured[model] = error_text(exc)
        raise
    _measured[model] = (columns, details)
    return {**columns, **details}
