"""The pipeline of ``archbench compare``: build → analyse → evaluate → rows → writers.

One model is alive at a time. A failure inside one model costs its rows (``status`` and
``error`` columns), never the run; the report files are rewritten after every row.
"""

from __future__ import annotations

import gc
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from archbench.complexity import AnalysisContext, Handle
from archbench.report import Report, ReportWriter, write_atomic
from archbench.spec import ModelSpec, RunSettings

if TYPE_CHECKING:
    from torch import nn


class PluginConflict(Exception):
    """Two plugins answered for the same column or FLOP handler."""


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def merge_columns(results: Iterable[tuple[str, Mapping[str, Any] | None]]) -> tuple[dict, dict]:
    """Split hook results into table columns (scalars) and JSON details (dicts and lists)."""
    columns: dict[str, Any] = {}
    details: dict[str, Any] = {}
    owner: dict[str, str] = {}
    for plugin, result in results:
        for key, value in (result or {}).items():
            if key in owner:
                raise PluginConflict(
                    f"column {key!r} is returned by both {owner[key]!r} and {plugin!r}"
                )
            owner[key] = plugin
            (details if isinstance(value, (dict, list, tuple)) else columns)[key] = value
    return columns, details


def call_each(hook: pluggy.HookCaller, **kwargs: Any) -> list[tuple[str, Any]]:
    """Call every implementation of ``hook`` in pluggy's order (tryfirst ones first, then the
    most recently registered), keeping who answered, so conflicts can name the plugins."""
    results = []
    for impl in reversed(hook.get_hookimpls()):
        if impl.hookwrapper or impl.wrapper:
            continue
        args = {name: kwargs[name] for name in impl.argnames}
        results.append((impl.plugin_name, impl.function(**args)))
    return results


def status_of(exc: BaseException) -> str:
    import torch

    return "oom" if isinstance(exc, torch.cuda.OutOfMemoryError) else "error"


def error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:500]


class Runner:
    """Runs a list of model specs through the plugins into one :class:`Report`."""

    def __init__(
        self,
        pm: pluggy.PluginManager,
        settings: RunSettings,
        report: Report,
        run_dir: Path | None,
        writers: list[ReportWriter],
        on_progress: Callable[[str], None] = progress,
    ) -> None:
        self.pm = pm
        self.hook = pm.hook
        self.settings = settings
        self.report = report
        self.run_dir = run_dir
        self.writers = writers
        self.progress = on_progress

    # -- the stages -------------------------------------------------------------------

    def build(self, spec: ModelSpec) -> nn.Module:
        model = self.hook.archbench_build_model(spec=spec)
        if model is None:
            raise RuntimeError(f"no plugin builds {spec.arch.name!r} (registered by "
                               f"{spec.arch.plugin!r})")
        return model.eval()

    def inputs(self, spec: ModelSpec, model: nn.Module, batch_size: int) -> tuple[Any, ...]:
        return tuple(self.hook.archbench_example_inputs(spec=spec, model=model,
                                                        batch_size=batch_size))

    def flop_handlers(self, spec: ModelSpec) -> dict[str, Handle | None]:
        handlers: dict[str, Handle | None] = {}
        owner: dict[str, str] = {}
        for plugin, result in call_each(self.hook.archbench_flop_handlers, spec=spec):
            for op, handle in (result or {}).items():
                if op in owner:
                    raise PluginConflict(f"FLOP handler for {op!r} is given by both "
                                         f"{owner[op]!r} and {plugin!r}")
                owner[op] = plugin
                handlers[op] = handle
        return handlers

    def analyze(self, spec: ModelSpec, model: nn.Module) -> tuple[dict, dict]:
        import torch

        ctx = AnalysisContext(
            spec=spec,
            model=model,
            inputs=self.inputs(spec, model, 1),
            handlers=self.flop_handlers(spec),
            rebuild=lambda: self.build(spec),
        )
        with torch.no_grad():
            return merge_columns(call_each(self.hook.archbench_analyze, ctx=ctx))

    def evaluate(self, spec: ModelSpec, model: nn.Module, batch_size: int) -> tuple[dict, dict]:
        import torch

        dtype = torch_dtype(self.settings.dtype)
        inputs = tuple(
            x.to(self.settings.device, dtype=dtype if x.is_floating_point() else None)
            if isinstance(x, torch.Tensor) else x
            for x in self.inputs(spec, model, batch_size)
        )
        with torch.inference_mode():
            return merge_columns(call_each(
                self.hook.archbench_evaluate, spec=spec, model=model, inputs=inputs,
                batch_size=batch_size, settings=self.settings,
            ))

    # -- the loop ---------------------------------------------------------------------

    def run(self, specs: list[ModelSpec]) -> Report:
        import torch

        if self.settings.threads:
            torch.set_num_threads(self.settings.threads)
        for index, spec in enumerate(specs, 1):
            self.progress(f"[{index}/{len(specs)}] {spec.name} ({spec.input_desc})")
            self.run_one(spec)
        return self.report

    def run_one(self, spec: ModelSpec) -> None:
        import torch

        model = None
        try:
            self.progress("  building and counting")
            model = self.build(spec)
            columns, details = self.analyze(spec, model)
        except Exception as exc:
            self.progress(f"  failed: {error_text(exc)}")
            if self.settings.debug:
                traceback.print_exc()
            for batch_size in self.settings.batch_sizes:
                self.add_row(spec, batch_size, {}, {}, status_of(exc), error_text(exc))
            del model
            self.release()
            return
        if not self.settings.latency:
            self.add_row(spec, None, columns, details, "ok", None)
        else:
            model = model.to(self.settings.device, dtype=torch_dtype(self.settings.dtype))
            for batch_size in self.settings.batch_sizes:
                try:
                    evaluated, extra = self.evaluate(spec, model, batch_size)
                except Exception as exc:
                    self.progress(f"  batch {batch_size}: {status_of(exc)}: {error_text(exc)}")
                    if self.settings.debug:
                        traceback.print_exc()
                    self.add_row(spec, batch_size, columns, details, status_of(exc),
                                 error_text(exc))
                    if torch.cuda.is_available():
                        torch.cuda.empty_cache()
                    continue
                median = evaluated.get("latency_ms_median")
                if median is not None:
                    self.progress(f"  batch {batch_size}: {median:.3f} ms median")
                self.add_row(spec, batch_size, {**columns, **evaluated}, {**details, **extra},
                             "ok", None)
        del model
        self.release()

    def add_row(self, spec: ModelSpec, batch_size: int | None, columns: dict, details: dict,
                status: str, error: str | None) -> None:
        row = {
            "model": spec.name,
            "arch": spec.arch.name,
            "variant": spec.variant,
            "input": spec.input_desc,
            "img_size": spec.img_size,
            "seq_len": spec.seq_len,
            "batch_size": batch_size,
            "device": self.settings.device,
            "dtype": self.settings.dtype,
            **columns,
            "status": status,
            "error": error,
        }
        self.report.add_row(row, {"config": dict(spec.config), **details})
        self.write()

    def write(self) -> None:
        if self.run_dir is None:
            return
        for writer in self.writers:
            write_atomic(self.run_dir / writer.filename, writer.render(self.report))

    @staticmethod
    def release() -> None:
        import torch

        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def torch_dtype(name: str) -> Any:
    """The torch dtype of a ``--dtype`` name (fp32, fp16, bf16)."""
    import torch

    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[name]
