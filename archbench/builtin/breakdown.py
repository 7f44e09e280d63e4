"""Core plugin: ``--breakdown``, where a timed row's time goes. After the row's trials (the
latency columns come from those, not from this pass), one profiled pass attributes the
time of an iteration to the token mixers, the MLPs, the norms, the architecture's time
regions (Swin's ``window``) and the rest (:mod:`archbench.measure.breakdown`), beside the
MAC shares the analysis counted. torch is imported lazily, as in every core plugin.

Module categories come from the architecture (``token_mixer_types``, ``mlp_types``,
``norm_types``, ``stage_modules``, ``time_regions``); a swapped-in mixer (``+msa``) sits in
the core's ``TokenMixerLayer``, as the analysis counts it; a mixer measured alone
(``archbench mixers``) is the whole model.
"""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Any

from archbench import hookimpl
from archbench.core.settings import RunSettings
from archbench.core.spec import ModelSpec
from archbench.mixers import SWAP_LAYER_TYPE
from archbench.mixers.alone import MIXER_ARCH

if TYPE_CHECKING:
    from archbench.measure.breakdown import Breakdown, Lines
    from archbench.measure.workload import Workload

#: Seconds the profiled pass aims at (at most ``--min-time``), in iterations at the row's
#: timed median, within the limits of :func:`archbench.measure.breakdown.iterations_for`.
PROFILE_SECONDS = 1.0
#: Names a time region's line cannot take: they are columns or ranges already.
RESERVED_LINES = frozenset({"mixer", "mlp", "norm", "other", "stage", "forward", "iteration",
                            "breakdown", "launch"})


def lines_of(spec: ModelSpec) -> tuple[Lines, list[str]]:
    """What to time in ``spec``'s model, and notes on what its architecture declares that
    cannot be used."""
    from archbench.measure.breakdown import Lines

    arch, notes = spec.arch, []
    regions = {}
    for line, targets in dict(arch.time_regions).items():
        if not (isinstance(line, str) and line.isidentifier()) or line in RESERVED_LINES:
            notes.append(f"time region line {line!r} of {arch.name!r} is not a usable "
                         "column name; not timed")
        else:
            regions[line] = tuple(targets)
    mixers = (SWAP_LAYER_TYPE,) if spec.mixer else tuple(arch.token_mixer_types)
    return Lines(mixer_types=mixers, mlp_types=tuple(arch.mlp_types),
                 norm_types=arch.norm_types, stage_modules=tuple(arch.stage_modules),
                 regions=regions, root_is_mixer=arch.name == MIXER_ARCH.name), notes


def _absent(line: str, lines: Lines) -> str:
    types = {"mixer": lines.mixer_types, "mlp": lines.mlp_types}.get(line)
    if types is not None:
        what = "token-mixer" if line == "mixer" else "MLP"
        named = ", ".join(types) if types else "none declared"
        return (f"{line}: no module of the architecture's {what} types ({named}) in this "
                "model; its time is in other_ms")
    if line == "norm":
        return "norm: no norm module in this model"
    return f"{line}: none of its functions or ops ran; its time line is empty"


def breakdown_columns(result: Breakdown, lines: Lines, median_ms: float,
                      notes: list[str]) -> dict[str, Any]:
    """The row's columns: each line's milliseconds per iteration (kernel time on CUDA, with
    the CPU-side time as ``*_cpu_ms``), time shares, the profiled total against the timed
    median; and the details (stages, modules, regions) for the JSON."""
    cuda = result.cuda
    shown = result.kernel_ms if cuda and result.kernel_ms is not None else result.cpu_ms
    total = result.kernel_total_ms if cuda else result.wall_ms
    notes = list(notes)
    if lines.root_is_mixer:
        notes.append("a token mixer measured alone: the whole model is the mixer")
    columns: dict[str, Any] = {}
    for line in [*lines.regions, "mixer", "mlp", "norm", "other"]:
        present = line == "other" or result.found.get(line, 0) > 0
        if not present and not lines.root_is_mixer:
            notes.append(_absent(line, lines))
        columns[f"{line}_ms"] = shown[line] if present else None
        if cuda:
            columns[f"{line}_cpu_ms"] = result.cpu_ms[line] if present else None
    for line in ("mixer", "mlp"):
        value = columns[f"{line}_ms"]
        columns[f"{line}_time_share"] = value / total if value is not None and total else None
    columns["breakdown_total_ms"] = result.wall_ms
    columns["breakdown_vs_median"] = result.wall_ms / median_ms if median_ms > 0 else None
    if cuda:
        columns["breakdown_kernel_ms"] = result.kernel_total_ms
        columns["breakdown_cpu_ms"] = result.forward_ms
        columns["launch_share"] = (max(0.0, 1 - result.kernel_total_ms / result.wall_ms)
                                   if result.wall_ms and result.kernel_total_ms is not None
                                   else None)
    columns["breakdown_iterations"] = result.iterations
    all_notes = notes + result.notes
    columns["breakdown_note"] = "; ".join(all_notes) or None
    columns["breakdown"] = {
        "iterations": result.iterations, "iteration_ms": result.iteration_ms,
        "attributed": "kernel (device) time of the work each line launched; *_cpu_ms: "
        "CPU-side wall time" if cuda else "CPU wall time on the thread running the model",
        "lines": {"regions": dict(lines.regions), "mixer_types": list(lines.mixer_types),
                  "mlp_types": list(lines.mlp_types), "found": result.found,
                  "priority": [*lines.regions, "mixer", "mlp", "norm"]},
        "stages": result.stages, "modules": result.modules, "regions": result.regions,
        "notes": all_notes,
    }
    return columns


@hookimpl(trylast=True)
def archbench_evaluate(spec: ModelSpec, workload: Workload, settings: RunSettings,
                       trials: list[list[float]]) -> dict[str, Any] | None:
    """With ``--breakdown``: the profiled pass, last of the evaluate hooks."""
    if not settings.breakdown:
        return None
    from archbench.measure.breakdown import iterations_for, measure

    median = statistics.median(s for trial in trials for s in trial)
    iterations = iterations_for(median, min(PROFILE_SECONDS, settings.min_time))
    lines, notes = lines_of(spec)
    result = measure(workload.model, workload.fn, lines, settings.device, iterations)
    return breakdown_columns(result, lines, median, notes)
