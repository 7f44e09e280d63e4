"""Running one :class:`~archbench.run.task.Task` in this process: build (hook) → analyse
(hooks, one fvcore count) → place on the device → time (one interleaved timing path) →
evaluate (hooks) → :class:`~archbench.run.task.RowResult`. Every executor runs tasks
through :func:`run_task`; a failure inside one model costs its rows, never the task.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import socket
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from archbench.core.columns import Answer, merge_answers, split_columns
from archbench.core.errors import RowSkipped, error_text
from archbench.core.settings import RunSettings
from archbench.core.spec import ModelSpec
from archbench.core.stats import ci_halfwidth_pct
from archbench.measure import timing
from archbench.measure.contention import cpu_columns, gpu_columns, load_per_core, timing_threads
from archbench.measure.device import (
    apply_precision_flags,
    is_oom,
    objects_frozen,
    release_memory,
)
from archbench.mixers.swap import Swap, plan_swap
from archbench.run.task import RowResult, Task

if TYPE_CHECKING:
    from torch import nn

    from archbench.measure.workload import Workload

Progress = Callable[[str], None]


def run_task(pm: Any, task: Task, progress: Progress) -> Iterator[RowResult]:
    """The rows of ``task``, each yielded as soon as it is finished. Whatever happens, every
    row the task owes comes back: a failure outside any one model (the device's peak, a
    bug) turns the rows not yet finished into error rows."""
    done: set[tuple[int, ...]] = set()
    try:
        for result in TaskRun(pm, task, progress).rows():
            done.add(result.key)
            yield result
    except Exception as exc:
        yield from lost_rows(task, exc, done)


def lost_rows(task: Task, exc: BaseException, done: Iterable[tuple[int, ...]] = ()
              ) -> Iterator[RowResult]:
    """Error rows for every row of ``task`` not in ``done`` (keys of finished rows): what an
    executor reports for a task that failed as a whole, or whose worker died."""
    run = TaskRun(None, task, lambda _: None)
    finished = set(done)
    settings = task.settings
    sizes = (None,) if settings.max_batch or not settings.latency else settings.batch_sizes
    for spec, position in zip(task.specs, task.positions):
        for size in sizes:
            row = run.result(spec, position, size, {}, {}, "error", error_text(exc))
            if row.key not in finished:
                yield row


#: The columns that say which row it is, not what was measured.
IDENTITY = ("model", "arch", "variant", "input", "img_size", "seq_len", "batch_size", "device",
            "dtype", "mode")


def analysis_of(row: RowResult) -> tuple[dict[str, Any], dict[str, Any]]:
    """A count-only row's analysis (columns, details), to hand to the task that times it."""
    return ({k: v for k, v in row.columns.items() if k not in IDENTITY},
            {k: v for k, v in row.details.items() if k != "config"})


def timing_task(task: Task, counted: dict[int, RowResult]) -> tuple[Task | None, list[RowResult]]:
    """``task`` with the analyses of its models, counted elsewhere (``counted``: the
    count-only row of each position); a model whose counting failed is left out, and its
    failure is each of its rows."""
    sizes = (None,) if task.settings.max_batch else task.settings.batch_sizes
    keep, failed = [], []
    for spec, position in zip(task.specs, task.positions):
        row = counted[position]
        if row.status == "ok":
            keep.append((spec, position, analysis_of(row)))
            continue
        failed += [dataclasses.replace(row, task=task.index, key=(position, i),
                                       columns={**row.columns, "batch_size": size})
                   for i, size in enumerate(sizes)]
    if not keep:
        return None, failed
    specs, positions, analyses = zip(*keep)
    return Task(task.index, specs, task.settings, positions, analyses), failed


#: ``--max-time`` when ``--target-ci`` is given without it (seconds per group).
DEFAULT_MAX_TIME = 60.0
#: Bootstrap resamples of ``--target-ci``'s check after every trial (the row's reported
#: interval uses the full count): enough to tell 2% from 3%, cheap enough not to eat
#: ``--max-time``.
CHECK_RESAMPLES = 300


def precision_of(settings: RunSettings) -> timing.Precision | None:
    """``--target-ci``'s stopping rule for :func:`~archbench.measure.timing.interleave`."""
    if not settings.target_ci:
        return None
    target = settings.target_ci
    return timing.Precision(
        lambda trials: ci_halfwidth_pct(trials, resamples=CHECK_RESAMPLES) <= target,
                            settings.max_time or DEFAULT_MAX_TIME)


@functools.cache
def worker_environment(device: str) -> dict[str, Any]:
    """This process's environment on ``device`` (versions, CPU, GPU, driver), once."""
    from archbench.report.environment import collect

    return collect(device)


@dataclass
class Prepared:
    """A built, analysed model on its device, and its workloads by batch size."""

    spec: ModelSpec
    position: int
    model: nn.Module
    columns: dict[str, Any]
    details: dict[str, Any]
    workloads: dict[int, Workload] = field(default_factory=dict)
    extra: dict[int, dict[str, Any]] = field(default_factory=dict)


class TaskRun:
    """One task's run: the stages, each through ``pm.hook`` so plugin wrappers apply."""

    def __init__(self, pm: Any, task: Task, progress: Progress) -> None:
        self.pm = pm
        self.hook = pm.hook if pm is not None else None
        self.task = task
        self.settings = task.settings
        self.progress = progress
        self.where: dict[str, Any] = {"host": socket.gethostname(), "pid": os.getpid(),
                                      "device": self.settings.device}
        self._mixers: dict | None = None

    # -- the stages ---------------------------------------------------------------------

    def swap(self, spec: ModelSpec) -> Swap | None:
        if not spec.mixer:
            return None
        if self._mixers is None:
            from archbench.core.mixers import collect_mixers

            self._mixers = collect_mixers(self.pm)
        return plan_swap(spec, self._mixers)

    def build(self, spec: ModelSpec, swap: Swap | None, ordinary: bool = False) -> nn.Module:
        """The plugin's model, in eval mode; in a count-only run, unless ``ordinary``, with
        its initialisation skipped (:mod:`archbench.measure.shapes_only`)."""
        from archbench.measure.shapes_only import build_for_counting

        def build() -> nn.Module:
            model = self.hook.archbench_build_model(spec=spec, swap=swap)
            if model is None:
                raise RuntimeError(f"no plugin builds {spec.arch.name!r} (registered by "
                                   f"{spec.arch.plugin!r})")
            return model

        skipped = not (ordinary or self.settings.latency)
        return (build_for_counting(build) if skipped else build()).eval()

    def inputs(self, spec: ModelSpec, model: nn.Module, batch_size: int) -> tuple[Any, ...]:
        return tuple(self.hook.archbench_example_inputs(spec=spec, model=model,
                                                        batch_size=batch_size))

    def analyze(self, spec: ModelSpec, model: nn.Module, swap: Swap | None,
                retry: bool = True) -> tuple[dict, dict]:
        import torch

        from archbench.measure.counting import AnalysisContext

        handlers = swap.flop_handlers() if swap is not None else {}
        handlers.update(merge_answers(self.hook.archbench_flop_handlers(spec=spec),
                                      what="FLOP handler for"))
        ctx = AnalysisContext(spec=spec, model=model, inputs=self.inputs(spec, model, 1),
                              handlers=handlers, settings=self.settings, swap=swap)
        try:
            with torch.no_grad():
                return split_columns(merge_answers(self.hook.archbench_analyze(ctx=ctx)))
        except Exception:
            if self.settings.latency or not retry:
                raise
        # a model that cannot run with the count-only build's zeros: count the ordinary one
        return self.analyze(spec, self.build(spec, swap, ordinary=True), swap, retry=False)

    def workload(self, item: Prepared, batch_size: int) -> Workload:
        from archbench.measure.workload import make_workload, place_inputs

        inputs = place_inputs(self.inputs(item.spec, item.model, batch_size), self.settings)
        return make_workload(item.model, inputs, batch_size, self.settings)

    def evaluate(self, item: Prepared, size: int, trials: list[list[float]]
                 ) -> tuple[dict, dict]:
        answers = self.hook.archbench_evaluate(
            spec=item.spec, model=item.model, workload=item.workloads[size], batch_size=size,
            settings=self.settings, trials=trials, analysis=item.columns,
            peak_gmacs_per_s=self.where.get("matmul_peak_gmacs_per_s"))
        return split_columns(merge_answers([Answer(item.extra.get(size, {}), plugin="core"),
                                            *answers]))

    # -- the run ------------------------------------------------------------------------

    def rows(self) -> Iterator[RowResult]:
        import torch

        threads = torch.get_num_threads()
        if self.settings.threads:
            torch.set_num_threads(self.settings.threads)
        elif self.settings.latency and not self.settings.device.startswith("cuda"):
            torch.set_num_threads(timing_threads(threads))
        if self.settings.compile:
            torch._dynamo.reset()  # no earlier task's graphs or recompile budget
        # counting runs on the CPU wherever the rows will be timed
        environment = worker_environment(self.settings.device if self.settings.latency
                                         else "cpu")
        self.where.update(apply_precision_flags(self.settings), threads=torch.get_num_threads(),
                          device_name=environment.get("device_name"), environment=environment)
        try:
            with objects_frozen():
                prepared = []
                counted = self.task.analysis or (None,) * len(self.task.specs)
                for spec, position, analysis in zip(self.task.specs, self.task.positions,
                                                    counted):
                    item, failed = self.prepare(spec, position, analysis)
                    yield from failed
                    if item is not None:
                        prepared.append(item)
                if prepared:
                    yield from self.time(prepared)
        finally:
            torch.set_num_threads(threads)

    def prepare(self, spec: ModelSpec, position: int, analysis: tuple[dict, dict] | None = None
                ) -> tuple[Prepared | None, list[RowResult]]:
        """Build and analyse (unless ``analysis`` was counted elsewhere, or is in the
        complexity cache: then a count-only row is finished without building anything);
        without latency, the row is finished here and the model freed."""
        from archbench.measure.workload import place_model
        from archbench.run.complexity_cache import cache_entry

        sizes = (None,) if self.settings.max_batch else self.settings.batch_sizes
        model = None
        try:
            entry = None
            if analysis is None:
                entry = cache_entry(self.pm, self.settings, spec, self.progress)
                analysis = entry.read()
                if analysis is None:
                    self.progress(f"{spec.name} ({spec.input_desc}): building and counting")
                else:
                    self.progress(f"{spec.name} ({spec.input_desc}): params and FLOPs "
                                  "from the complexity cache")
                    if not self.settings.latency:
                        return None, [self.result(spec, position, None, *analysis)]
            if analysis is not None:
                self.progress(f"{spec.name} ({spec.input_desc}): building")
            swap = self.swap(spec)
            model = self.build(spec, swap)
            columns, details = analysis or entry.write(*self.analyze(spec, model, swap))
            if self.settings.latency:
                model = place_model(model, self.settings)
        except Exception as exc:
            del model
            return None, self.fail_rows(spec, position, sizes, {}, {}, exc)
        if not self.settings.latency:
            del model
            release_memory()
            return None, [self.result(spec, position, None, columns, details)]
        return Prepared(spec, position, model, columns, details), []

    def time(self, prepared: list[Prepared]) -> Iterator[RowResult]:
        from archbench.measure.peak import matmul_peak_gmacs_per_s

        settings = self.settings
        try:
            self.where["matmul_peak_gmacs_per_s"] = matmul_peak_gmacs_per_s(
                settings.device, settings.dtype, self.progress)
        except Exception as exc:  # the peak is a reference, not worth the group's rows
            self.progress(f"  matmul peak not measured: {error_text(exc)}")
            release_memory()
        slots = []
        for item in prepared:
            sizes, failed = self.batch_sizes(item)
            yield from failed
            slots += [self.slot(item, size) for size in sizes]
        load = load_per_core()
        for slot, exc in timing.interleave(slots, settings.device, settings.warmup,
                                           settings.min_time, settings.repeat, self.progress,
                                           precision_of(settings)):
            item, size = slot.key
            if exc is None:
                item.extra.setdefault(size, {}).update(self.trust(slot, load))
            yield (self.fail_row(item, size, exc) if exc is not None
                   else self.evaluated(item, size, slot.trials))
            item.workloads.pop(size, None)
        prepared.clear()
        release_memory()

    def slot(self, item: Prepared, size: int) -> timing.Slot:
        """One row to time: its workload is made at its first trial; around every trial,
        ``torch.compile``'s graph count is checked (a recompile would be timed)."""
        def make() -> Callable[[], Any]:
            item.workloads[size] = self.workload(item, size)
            return item.workloads[size].fn

        return timing.Slot((item, size), make,
                           before=lambda: item.workloads[size].count_graphs(),
                           check=lambda: item.workloads[size].check_no_recompile())

    def trust(self, slot: timing.Slot, load: float | None) -> dict[str, Any]:
        """How far a timed row can be trusted: the machine's load when its group started,
        and whether others competed for its cores or GPU."""
        import torch

        columns: dict[str, Any] = {"load_start": load}
        if self.settings.device.startswith("cuda"):
            columns.update(gpu_columns(slot.usage))
        else:
            columns.update(cpu_columns(slot.usage, torch.get_num_threads()))
        return columns

    def batch_sizes(self, item: Prepared) -> tuple[tuple[int, ...], list[RowResult]]:
        """The batch sizes to time: the settings', or the largest that fits."""
        if not self.settings.max_batch:
            return self.settings.batch_sizes, []
        from archbench.measure.device import memory_budget_mb
        from archbench.measure.max_batch import find_max_batch

        try:
            size, probes = find_max_batch(lambda b: self.workload(item, b).fn,
                                          self.settings.device,
                                          memory_budget_mb(self.settings), self.progress)
        except Exception as exc:
            return (), self.fail_rows(item.spec, item.position, (None,), item.columns,
                                      item.details, exc)
        item.extra[size] = {"max_batch": size, "max_batch_probes": probes}
        return (size,), []

    def evaluated(self, item: Prepared, size: int, trials: list[list[float]]) -> RowResult:
        """The finished row of a timed (model, batch): the evaluate hooks' columns."""
        label = f"{item.spec.name} ({item.spec.input_desc}) batch {size}"
        try:
            columns, details = self.evaluate(item, size, trials)
        except Exception as exc:
            return self.fail_row(item, size, exc)
        median = columns.get("latency_ms_median")
        self.progress(f"  {label}: {median:.3f} ms median" if median else f"  {label}: done")
        return self.result(item.spec, item.position, size, {**item.columns, **columns},
                           {**item.details, **details})

    # -- rows ---------------------------------------------------------------------------

    def fail_row(self, item: Prepared, size: int, exc: BaseException) -> RowResult:
        return self.fail_rows(item.spec, item.position, (size,), item.columns, item.details,
                              exc)[0]

    def fail_rows(self, spec: ModelSpec, position: int, sizes: Iterable[int | None],
                  columns: dict, details: dict, exc: BaseException) -> list[RowResult]:
        status = "skipped" if isinstance(exc, RowSkipped) else "oom" if is_oom(exc) else "error"
        if isinstance(exc, RowSkipped):
            columns = {**exc.columns, **columns}
        self.progress(f"  {spec.name} ({spec.input_desc}): {status}: {error_text(exc)}")
        if self.settings.debug and status != "skipped":
            traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        release_memory()
        return [self.result(spec, position, size, columns, details, status, error_text(exc))
                for size in sizes]

    def result(self, spec: ModelSpec, position: int, batch_size: int | None, columns: dict,
               details: dict, status: str = "ok", error: str | None = None) -> RowResult:
        sizes = list(self.settings.batch_sizes)
        identity = {  # the keys of IDENTITY
            "model": spec.name, "arch": spec.arch.name, "variant": spec.variant,
            "input": spec.input_desc, "img_size": spec.img_size, "seq_len": spec.seq_len,
            "batch_size": batch_size, "device": self.settings.device,
            "dtype": self.settings.dtype, "mode": self.settings.mode,
        }
        key = (position, sizes.index(batch_size) if batch_size in sizes else 0)
        return RowResult(task=self.task.index, key=key, columns={**identity, **columns},
                         details={"config": dict(spec.config), **details}, status=status,
                         error=error, where=dict(self.where))
