"""The pipeline of ``archbench compare``: build → analyse → time → evaluate → rows → writers.

A failure inside one model costs its rows (``status`` and
``error`` columns), never the run; the report files are rewritten after every row.
"""

from __future__ import annotations

import gc
import statistics
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from archbench.complexity import AnalysisContext, Handle
from archbench.report import Report, ReportWriter
from archbench.spec import ModelSpec, RunSettings
from archbench.workload import Workload, make_workload, place_inputs, place_model, torch_dtype

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


def is_oom(exc: BaseException) -> bool:
    """An out-of-memory on any device: CUDA's, the CPU allocator's ``MemoryError``, or a
    ``RuntimeError`` saying so (the CPU allocator's "DefaultCPUAllocator: not enough memory")."""
    import torch

    if isinstance(exc, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    message = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in message
                                              or "not enough memory" in message)


def status_of(exc: BaseException) -> str:
    return "oom" if is_oom(exc) else "error"


def error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:500]


@dataclass
class Prepared:
    """A built, analysed model on its device, with the trials of each of its batch sizes."""

    spec: ModelSpec
    model: nn.Module
    columns: dict[str, Any]
    details: dict[str, Any]
    workloads: dict[int, Workload] = field(default_factory=dict)
    trials: dict[int, list[list[float]]] = field(default_factory=dict)
    extra: dict[int, dict[str, Any]] = field(default_factory=dict)


class Runner:
    """Runs a list of model specs through the plugins into one :class:`Report`.

    With ``--no-latency`` one model is alive at a time. Otherwise every model is built and
    analysed first (one at a time, then kept on the device), and the timing trials are
    interleaved across models and batch sizes (A B C A B C ...), so that drift in the
    machine's speed hits every row alike; a row is written when its last trial ends.
    """

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
        self.peak_gmacs_per_s: float | None = None
        #: Each spec's place in the user's list, to keep the report's rows in that order.
        self.positions: dict[tuple[str, str], int] = {}

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
        """The plugins' handlers for this model, on top of those of a ``--mixer`` swap's
        token mixer (which count the swapped layers whatever the backbone)."""
        handlers: dict[str, Handle | None] = {}
        if spec.mixer:
            from archbench.mixers import get_token_mixer

            mixer = get_token_mixer(spec.mixer)
            handlers.update(mixer.flop_handlers() if mixer.flop_handlers else {})
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
            settings=self.settings,
        )
        with torch.no_grad():
            return merge_columns(call_each(self.hook.archbench_analyze, ctx=ctx))

    def workload(self, item: Prepared, batch_size: int) -> Workload:
        inputs = place_inputs(self.inputs(item.spec, item.model, batch_size), self.settings)
        return make_workload(item.model, inputs, batch_size, self.settings)

    def evaluate(self, item: Prepared, batch_size: int) -> tuple[dict, dict]:
        return merge_columns(call_each(
            self.hook.archbench_evaluate, spec=item.spec, model=item.model,
            workload=item.workloads[batch_size], batch_size=batch_size,
            settings=self.settings, trials=item.trials[batch_size],
            analysis=item.columns, peak_gmacs_per_s=self.peak_gmacs_per_s,
        ))

    # -- the loop ---------------------------------------------------------------------

    def run(self, specs: list[ModelSpec]) -> Report:
        import torch

        if self.settings.threads:
            torch.set_num_threads(self.settings.threads)
        self.report.complete = False
        self.write()  # whole (empty) files from the start
        prepared: list[Prepared] = []
        self.positions = {(s.name, s.input_desc): i for i, s in enumerate(specs)}
        for index, spec in enumerate(specs, 1):
            self.progress(f"[{index}/{len(specs)}] {spec.name} ({spec.input_desc}): "
                          "building and counting")
            item = self.prepare(spec)
            if item is not None:
                prepared.append(item)
        if prepared:
            self.time_all(prepared)
        self.report.complete = True
        return self.report

    def prepare(self, spec: ModelSpec) -> Prepared | None:
        """Build and analyse; without latency, write the row and free the model."""
        model = None
        try:
            model = self.build(spec)
            columns, details = self.analyze(spec, model)
            if self.settings.latency:
                model = place_model(model, self.settings)
        except Exception as exc:
            self.fail_rows(spec, self.settings.batch_sizes, {}, {}, exc)
            del model
            self.release()
            return None
        if not self.settings.latency:
            self.add_row(spec, None, columns, details, "ok", None)
            del model
            self.release()
            return None
        return Prepared(spec, model, columns, details)

    def time_all(self, prepared: list[Prepared]) -> None:
        from archbench.timing import MIN_ITERATIONS, time_trial

        settings = self.settings
        if self.peak_gmacs_per_s is None:
            self.progress(f"measuring the {settings.device} {settings.dtype} matmul peak")
            self.peak_gmacs_per_s = matmul_peak_gmacs_per_s(settings)
            self.report.environment["matmul_peak_gmacs_per_s"] = self.peak_gmacs_per_s
        for item in prepared:
            sizes = settings.batch_sizes
            if settings.max_batch:
                try:
                    size, probes = find_max_batch(self, item)
                except Exception as exc:
                    self.fail_rows(item.spec, (None,), item.columns, item.details, exc)
                    continue
                sizes = (size,)
                item.extra[size] = {"max_batch": size, "max_batch_probes": probes}
            for size in sizes:
                item.trials[size] = []
        per_trial = settings.min_time / settings.repeat
        min_iterations = -(-MIN_ITERATIONS // settings.repeat)
        for trial in range(settings.repeat):
            for item in prepared:
                for size in list(item.trials):
                    label = f"{item.spec.name} batch {size}"
                    try:
                        if size not in item.workloads:
                            item.workloads[size] = self.workload(item, size)
                        workload = item.workloads[size]
                        item.trials[size].append(time_trial(
                            workload.fn, settings.device,
                            settings.warmup if trial == 0 else 1, per_trial, min_iterations,
                        ))
                        workload.check_no_recompile()
                        if trial == settings.repeat - 1:
                            columns, details = self.evaluate(item, size)
                            extra_columns, extra_details = merge_columns(
                                [("core", item.extra.get(size))])
                            columns = {**item.columns, **extra_columns, **columns}
                            details = {**extra_details, **details}
                            median = columns.get("latency_ms_median")
                            self.progress(f"  {label}: {median:.3f} ms median" if median
                                          else f"  {label}: done")
                            self.add_row(item.spec, size, columns,
                                         {**item.details, **details}, "ok", None)
                    except Exception as exc:
                        del item.trials[size]
                        item.workloads.pop(size, None)
                        self.fail_rows(item.spec, (size,), item.columns, item.details, exc)
            self.progress(f"trial {trial + 1}/{settings.repeat} done")
        prepared.clear()
        self.release()

    def fail_rows(self, spec: ModelSpec, sizes: Iterable[int | None], columns: dict,
                  details: dict, exc: Exception) -> None:
        self.progress(f"  {spec.name}: {status_of(exc)}: {error_text(exc)}")
        if self.settings.debug:
            traceback.print_exception(exc)
        for size in sizes:
            self.add_row(spec, size, columns, details, status_of(exc), error_text(exc))
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
            "mode": self.settings.mode,
            **columns,
            "status": status,
            "error": error,
        }
        sizes = list(self.settings.batch_sizes)
        key = (self.positions.get((spec.name, spec.input_desc), 0),
               sizes.index(batch_size) if batch_size in sizes else 0)
        self.report.add_row(row, {"config": dict(spec.config), **details}, key)
        self.write()

    def write(self) -> None:
        if self.run_dir is None:
            return
        for writer in self.writers:
            writer.write(self.report, self.run_dir)

    @staticmethod
    def release() -> None:
        import torch

        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def matmul_peak_gmacs_per_s(settings: RunSettings) -> float:
    """The device's own dense matmul rate in the run's dtype: a large square matmul,
    timed like the models, in GMAC/s (n³ multiply-adds per product)."""
    import torch

    from archbench.timing import time_trial

    n = 8192 if settings.device.startswith("cuda") else 2048
    dtype = torch_dtype(settings.dtype)
    a = torch.randn(n, n, device=settings.device, dtype=dtype)
    b = torch.randn(n, n, device=settings.device, dtype=dtype)
    samples = time_trial(lambda: a @ b, settings.device, warmup=2, min_time=0.5)
    return n**3 / (statistics.median(samples) / 1e3) / 1e9


def device_budget_mb(settings: RunSettings) -> float:
    """``--max-memory`` or 90% of the device's free memory, in MB."""
    if settings.max_memory_mb:
        return settings.max_memory_mb
    if settings.device.startswith("cuda"):
        import torch

        free, _ = torch.cuda.mem_get_info(settings.device)
        return 0.9 * free / 2**20
    import psutil

    return 0.9 * psutil.virtual_memory().available / 2**20


def find_max_batch(runner: Runner, item: Prepared, limit: int = 1 << 16) -> tuple[int, list]:
    """The largest batch whose iteration runs within the memory budget: doubling, then
    bisection. A batch that raises out-of-memory, or whose measured peak is over budget,
    does not fit. Returns the batch and every probe (batch, fits, memory MB)."""
    import torch

    from archbench.builtin.latency import peak_memory_mb

    budget = device_budget_mb(runner.settings)
    probes: list[tuple[int, bool, float | None]] = []

    def fits(size: int) -> bool:
        try:
            workload = runner.workload(item, size)
            memory = peak_memory_mb(workload.fn, runner.settings.device)
            ok = memory <= budget
        except Exception as exc:
            if not is_oom(exc):
                raise
            ok, memory = False, None
        runner.release()
        probes.append((size, ok, memory))
        runner.progress(f"  max batch probe {size}: {'fits' if ok else 'does not fit'}")
        return ok

    if not fits(1):
        raise torch.cuda.OutOfMemoryError("batch 1 does not fit in the memory budget "
                                          f"of {budget:.0f} MB")
    good, bad = 1, None
    while bad is None and good < limit:
        if fits(good * 2):
            good *= 2
        else:
            bad = good * 2
    while bad is not None and bad - good > 1:
        middle = (good + bad) // 2
        good, bad = (middle, bad) if fits(middle) else (good, middle)
    return good, probes


