"""Where one iteration's time goes: a profiled pass (``torch.profiler``) over a row's
workload, with a ``record_function`` range around every module of interest (token mixers,
MLPs, norms, stages) and around the architecture's time-region functions, then the time
of every range read from the profiler's events. torch is imported inside the functions.

How time is attributed (the same on every device):

- CPU side: a range's time is the wall time between its begin and end on the thread that
  runs the model (inclusive: what it calls is in it). The lines of the breakdown are made
  disjoint by priority: time regions first (Swin's window partition, roll, ...), then the
  token mixer, the MLP, the norms; a norm inside an MLP is MLP time, a window partition
  inside a mixer is window time. ``other`` is the forward pass less those lines (patch
  embedding, merging, residual adds, the head, Python between modules).
- CUDA: each kernel (and memcpy/memset) goes to the line whose range was open when the op
  that launched it was called; its duration on the device is that line's kernel time, so
  a line has both a kernel time and a CPU-side (launch) time.

The hooks and patched functions exist only during the pass (removed in ``finally``); the
timed trials were taken before it, so it never touches the latency columns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from archbench.measure.profiled import (
    FORWARD,
    ITERATION,
    PREFIX,
    Timeline,
    instrumented,
    profiled_events,
    read_events,
)
from archbench.measure.spans import Spans, WorkIndex, intersect, length, merged, subtract

if TYPE_CHECKING:
    from torch import nn

#: The module lines, in priority order after the time regions.
MODULE_LINES = ("mixer", "mlp", "norm")
#: Module class names that are norms besides torch's own norm classes and their subclasses.
DEFAULT_NORM_NAMES = ("RmsNorm", "RMSNorm", "LayerNorm2d", "LayerNormAct2d",
                      "FrozenBatchNorm2d", "BatchNormAct2d", "GroupNormAct")
#: Untimed iterations with the hooks in place before the profiler starts.
WARMUP = 2
#: Profiled iterations: at least this many, and at most the cap (the events of every
#: iteration are read back in Python).
MIN_ITERATIONS = 5
MAX_ITERATIONS = 100


@dataclass(frozen=True)
class Lines:
    """What to time in one model: module class names per line, stage paths, time regions."""

    mixer_types: tuple[str, ...]
    mlp_types: tuple[str, ...]
    #: None: torch's norm classes (and subclasses) plus :data:`DEFAULT_NORM_NAMES`.
    norm_types: tuple[str, ...] | None = None
    stage_modules: tuple[str, ...] = ()
    regions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: The whole model is the token mixer (a mixer measured alone).
    root_is_mixer: bool = False


@dataclass
class Breakdown:
    """Per-iteration milliseconds of a profiled pass. ``cpu_ms`` and ``kernel_ms`` map every
    line (regions, ``mixer``, ``mlp``, ``norm``) and ``other`` to its time; ``found`` says how
    many modules (or region targets that ran) each line has."""

    iterations: int
    cuda: bool
    wall_ms: float
    forward_ms: float
    cpu_ms: dict[str, float]
    kernel_ms: dict[str, float] | None
    kernel_total_ms: float | None
    found: dict[str, int]
    stages: list[dict[str, Any]]
    modules: list[dict[str, Any]]
    regions: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    #: Each profiled iteration's wall time (its spread shows how steady the pass was).
    iteration_ms: list[float] = field(default_factory=list)


def iterations_for(median_ms: float, budget_s: float) -> int:
    """Profiled iterations: as many as fit in ``budget_s`` at the timed median, within
    [MIN_ITERATIONS, MAX_ITERATIONS]."""
    fit = int(budget_s * 1e3 / median_ms) if median_ms > 0 else MAX_ITERATIONS
    return max(MIN_ITERATIONS, min(MAX_ITERATIONS, fit))


# -- which modules and functions ----------------------------------------------------------


def is_norm(module: nn.Module) -> bool:
    """The default norms: torch's norm classes, their subclasses, and a few others by name."""
    from torch import nn

    bases = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._NormBase, nn.LocalResponseNorm,
             *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()))
    return isinstance(module, bases) or type(module).__name__ in DEFAULT_NORM_NAMES


def module_lines(model: nn.Module, lines: Lines) -> dict[str, list[tuple[str, nn.Module]]]:
    """``{line: [(path, module), ...]}`` for mixer, MLP and norm, in model order. A type
    is a class name, or ``Parent.attribute`` for a child without a class of its own (timm
    ConvNeXt's ``ConvNeXtBlock.conv_dw``)."""
    from archbench.measure.counting import module_types_of, type_keys

    types = module_types_of(model)
    found: dict[str, list[tuple[str, nn.Module]]] = {line: [] for line in MODULE_LINES}
    for path, module in model.named_modules():
        keys = type_keys(path, types)
        if (lines.root_is_mixer and not path) or keys & set(lines.mixer_types):
            found["mixer"].append((path or "model", module))
        elif keys & set(lines.mlp_types):
            found["mlp"].append((path, module))
        elif path and (keys & set(lines.norm_types) if lines.norm_types is not None
                       else is_norm(module)):
            found["norm"].append((path, module))
    return found


def stage_groups(model: nn.Module, patterns: Sequence[str]
                 ) -> dict[str, list[tuple[str, nn.Module]]]:
    """``{stage name: [(path, module), ...]}``: ``{i}`` patterns by index (``0``, ``1``...,
    as the module paths count), other patterns by their path; {} where none matches."""
    named = dict(model.named_modules())
    stages: dict[str, list[tuple[str, nn.Module]]] = {}
    for pattern in patterns:
        if "{i}" not in pattern:
            if pattern in named:
                stages.setdefault(pattern, []).append((pattern, named[pattern]))
            continue
        i = 0
        while pattern.format(i=i) in named:
            path = pattern.format(i=i)
            stages.setdefault(str(i), []).append((path, named[path]))
            i += 1
    return stages


def measure(model: nn.Module, fn: Callable[[], Any], lines: Lines, device: str,
            iterations: int) -> Breakdown:
    """Profile ``iterations`` calls of ``fn`` (one iteration of ``model``) with ranges on the
    modules of ``lines`` and the stages, and attribute the time (see the module docstring)."""
    notes: list[str] = []
    by_line = module_lines(model, lines)
    stages = stage_groups(model, lines.stage_modules)
    ranges = [(f"{PREFIX}{line}/{path}", module)
              for line, found in by_line.items() for path, module in found]
    ranges += [(f"{PREFIX}stage/{stage}/{path}", module)
               for stage, found in stages.items() for path, module in found]
    functions = {target: f"{PREFIX}{line}/{target}" for line, targets in lines.regions.items()
                 for target in targets if "::" not in target}
    ops = frozenset(t for targets in lines.regions.values() for t in targets if "::" in t)
    with instrumented(ranges, functions, notes):
        for _ in range(WARMUP):
            fn()
        events = profiled_events(fn, iterations, device)
    timeline = read_events(events, ops)
    del events
    return attribute(timeline, lines, by_line, stages, iterations, device, notes)


# -- attribution ---------------------------------------------------------------------------


def _union(timeline: Timeline, names: Sequence[str]) -> Spans:
    return merged([s for name in names for s in timeline.spans.get(name, [])])


def carve(timeline: Timeline, lines: Lines, by_line: Mapping[str, Sequence[tuple[str, Any]]],
          forward: Spans) -> tuple[dict[str, Spans], dict[str, int]]:
    """Each line's spans inside the forward pass, less every earlier line's (regions, then
    mixer, MLP, norm), and how many modules (or region targets that ran) each line has."""
    names = {line: [t if "::" in t else f"{PREFIX}{line}/{t}" for t in targets]
             for line, targets in lines.regions.items()}
    names.update({line: [f"{PREFIX}{line}/{path}" for path, _ in by_line[line]]
                  for line in MODULE_LINES})
    exclusive: dict[str, Spans] = {}
    found: dict[str, int] = {}
    covered: Spans = []
    for line, range_names in names.items():
        union = intersect(_union(timeline, range_names), forward)
        exclusive[line] = subtract(union, covered)
        covered = merged(covered + union)
        found[line] = (len(by_line[line]) if line in MODULE_LINES
                       else sum(1 for n in range_names if n in timeline.spans))
    return exclusive, found


def _split(spans: Spans, exclusive: Mapping[str, Spans], work: WorkIndex | None,
           per: float) -> dict[str, Any]:
    """Milliseconds per iteration of ``spans`` and of each line inside them (and kernel
    time launched there, on CUDA)."""
    row: dict[str, Any] = {"ms": length(spans) / per}
    for line, own in exclusive.items():
        row[f"{line}_ms"] = length(intersect(own, spans)) / per
    row["other_ms"] = row["ms"] - sum(row[f"{line}_ms"] for line in exclusive)
    if work is not None:
        row["kernel_ms"] = work.within(spans) / per
        for line, own in exclusive.items():
            row[f"{line}_kernel_ms"] = work.within(intersect(own, spans)) / per
    return row


def stage_rows(timeline: Timeline, stages: Mapping[str, Sequence[tuple[str, Any]]],
               exclusive: Mapping[str, Spans], forward: Spans, work: WorkIndex | None,
               per: float) -> list[dict[str, Any]]:
    """One row per stage (the whole model where there are none), and the time outside the
    stages (stem, head) where there are."""
    if not stages:
        return [{"stage": "model", "modules": [], **_split(forward, exclusive, work, per)}]
    rows, covered = [], []
    for name, found in stages.items():
        spans = intersect(_union(timeline, [f"{PREFIX}stage/{name}/{path}"
                                            for path, _ in found]), forward)
        covered += spans
        label = f"stage {int(name) + 1}" if name.isdigit() else name
        rows.append({"stage": label, "modules": [path for path, _ in found],
                     **_split(spans, exclusive, work, per)})
    rest = subtract(forward, merged(covered))
    rows.append({"stage": "outside stages", "modules": [],
                 **_split(rest, exclusive, work, per)})
    return rows


def attribute(timeline: Timeline, lines: Lines, by_line: Mapping[str, Sequence[tuple[str, Any]]],
              stages: Mapping[str, Sequence[tuple[str, Any]]], iterations: int, device: str,
              notes: list[str]) -> Breakdown:
    cuda = device.startswith("cuda")
    per = 1e6 * iterations  # ns over the pass -> ms per iteration
    forward = timeline.spans.get(FORWARD, [])
    exclusive, found = carve(timeline, lines, by_line, forward)
    work = WorkIndex(timeline.work) if cuda else None
    # over the whole iteration: the call around the forward pass is ``other`` time too, so
    # the lines add up to the profiled iteration (``wall_ms``)
    whole = _split(timeline.spans.get(ITERATION) or forward, exclusive, work, per)
    cpu = {line: whole[f"{line}_ms"] for line in [*exclusive, "other"]}
    kernel = None
    if work is not None:
        kernel = {line: whole[f"{line}_kernel_ms"] for line in exclusive}
        kernel["other"] = work.total / per - sum(kernel.values())
        unlinked = sum(ns for point, ns in timeline.work if point is None)
        if unlinked:
            notes.append(f"{unlinked / per:.3g} ms of device work per iteration has no "
                         "launching op in the trace: counted as other")
    modules = [{"module": path, "type": type(module).__name__, "line": line,
                "calls": timeline.counts.get(f"{PREFIX}{line}/{path}", 0) / iterations,
                **_inclusive(timeline.spans.get(f"{PREFIX}{line}/{path}", []), work, per)}
               for line in MODULE_LINES for path, module in by_line[line]]
    regions = [{"line": line, "target": target,
                "calls": timeline.counts.get(name, 0) / iterations,
                **_inclusive(intersect(timeline.spans.get(name, []), forward), work, per)}
               for line, targets in lines.regions.items() for target in targets
               for name in [target if "::" in target else f"{PREFIX}{line}/{target}"]]
    return Breakdown(
        iterations=iterations, cuda=cuda,
        wall_ms=whole["ms"], forward_ms=length(forward) / per,
        cpu_ms=cpu, kernel_ms=kernel,
        kernel_total_ms=work.total / per if work is not None else None, found=found,
        stages=stage_rows(timeline, stages, exclusive, forward, work, per),
        modules=modules, regions=regions, notes=notes,
        iteration_ms=[(end - start) / 1e6 for start, end in timeline.spans.get(ITERATION, [])])


def _inclusive(spans: Spans, work: WorkIndex | None, per: float) -> dict[str, float]:
    out = {"ms": length(spans) / per}
    if work is not None:
        out["kernel_ms"] = work.within(spans) / per
    return out
