"""Turning a command's request into tasks, with every check that can fail done first: a
plan either holds runnable tasks or raises :class:`archbench.UsageError` before anything
is built or written.

- ``compare``: one task (one comparison group) of every target, or one task per target
  with ``--no-latency`` (counting needs no shared device, so it can fan out).
- ``sweep``: one group per input size.
- ``mixers``: one group per feature-map side, each mixer alone as a spec.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from archbench.core.errors import UsageError
from archbench.core.mixers import REFERENCE_MIXER, collect_mixers, find_mixer
from archbench.core.registry import Registry
from archbench.core.schema import check_spec
from archbench.core.settings import COMPILE_MODES, RunSettings, check_device_name, int_list
from archbench.core.spec import ModelSpec
from archbench.core.targets import Target, assignments
from archbench.mixers.swap import check_swappable
from archbench.run.request import Measurement, MixerRequest, ModelRequest
from archbench.run.task import Task

#: Bounds of the timing options: past them a value is a typo, not a measurement plan.
MAX_SECONDS = 86_400.0  # --min-time, --max-time: a day
MAX_WARMUP = 1_000_000
MAX_REPEAT = 100_000
MAX_THREADS = 4096
#: ``--set KEY=VALUE`` or ``--set ARCH.KEY=VALUE``.
_SET_KEY = re.compile(r"(?:[^.\s=]+\.)?[A-Za-z_][A-Za-z0-9_]*")


class Machine(Protocol):
    """What a plan asks of the machines the tasks run on (an executor answers)."""

    def resolve_device(self, device: str) -> str: ...

    def amp_dtype(self, device: str) -> str: ...

    def memory_budget_mb(self, settings: RunSettings) -> float: ...


def _this_machine() -> Machine:
    from archbench.run.local import LocalExecutor

    return LocalExecutor(None)


@dataclass(frozen=True)
class Plan:
    """The tasks of one run, what was asked (``names``, for the run folder), the settings
    recorded in the report, and the derived tables the session adds when the run ends."""

    kind: str
    tasks: tuple[Task, ...]
    names: tuple[str, ...]
    settings: dict[str, Any]
    tables: tuple[str, ...] = ()


def plan_models(pm: Any, registry: Registry, request: ModelRequest,
                machine: Machine | None = None) -> Plan:
    """The plan of ``compare`` or ``sweep``; UsageError for anything that cannot run.
    ``machine`` (the executor) says what the run's device is where the tasks run."""
    check_options(request.measurement)
    specs, size_index, names = model_specs(pm, registry, request)
    settings = run_settings(request.measurement, machine)
    if settings.mode == "train":
        check_trainable(pm, specs)
    from archbench.accuracy.checks import plan_evaluation

    evaluation = plan_evaluation(pm, request.measurement, settings, specs)  # --data
    settings = dataclasses.replace(settings, evaluation=evaluation)
    if not settings.latency:
        groups = [[i] for i in range(len(specs))]
    else:  # a compare is one comparison group; a sweep has one per size
        by_size: dict[int, list[int]] = {}
        for i, index in enumerate(size_index):
            by_size.setdefault(index if request.kind == "sweep" else 0, []).append(i)
        groups = list(by_size.values())
    tasks = tuple(Task(n, tuple(specs[i] for i in group), settings, tuple(group))
                  for n, group in enumerate(groups))
    tables = ("ratios", "slopes") if request.kind == "sweep" else ("ratios",)
    tables += ("frontier",)  # accuracy against latency and GMACs, where rows have a top-1
    return Plan(request.kind, tasks, names, dataclasses.asdict(settings), tables)


def model_specs(pm: Any, registry: Registry, request: ModelRequest
                ) -> tuple[list[ModelSpec], list[int], tuple[str, ...]]:
    """Every target at every requested input size, checked by the plugins and the core; the
    index of the size each was asked at (a sweep's comparison groups); and each target's
    resolved name (``swin`` → ``swin:tiny``, with run-level overrides and mixer), for the
    run folder."""
    overrides = parse_overrides(request.overrides)
    targets = [Target.parse(t) for t in request.targets]
    check_sizes(request, targets)
    check_scopes(registry, overrides, targets)
    tokens = [t for t in targets if registry.get(t.arch).input_kind == "tokens"]
    for t in targets:  # before any variant is looked up (timm's lookup imports torch)
        check_swappable(registry.get(t.arch), t.text, t.mixer or request.mixer)
    found: dict[tuple[str, str], tuple[ModelSpec, int]] = {}  # size by size, in order
    names = {}
    for i in range(max(len(request.img_sizes), len(request.seq_lens))):
        for t in targets:
            sizes = request.seq_lens if t in tokens else request.img_sizes
            if i < len(sizes):
                spec = registry.resolve(t, overrides=overrides, mixer=request.mixer,
                                        **{"seq_len" if t in tokens else "img_size": sizes[i]})
                found.setdefault((spec.name, spec.input_desc), (spec, i))
                names.setdefault(t.text, spec.name + (f"@{t.size}" if t.size else ""))
    specs = [spec for spec, _ in found.values()]
    images = [t for t in targets if t not in tokens]
    if any(request.img_sizes) and not images:
        raise UsageError(f"{_option(request, 'img')} applies to image models; {tokens[0].text} "
                         f"takes token sequences: use {_option(request, 'seq')}")
    if any(request.seq_lens) and not tokens:
        raise UsageError(f"{_option(request, 'seq')} applies to token models; "
                         f"{images[0].text} takes images: use {_option(request, 'img')}")
    validate(pm, specs)
    return specs, [i for _, i in found.values()], tuple(dict.fromkeys(names.values()))


def check_sizes(request: ModelRequest, targets: Sequence[Target]) -> None:
    for kind, values in (("img", request.img_sizes), ("seq", request.seq_lens)):
        bad = [v for v in values if v is not None and v < 1]
        if bad:
            raise UsageError(f"{_option(request, kind)} must be at least 1, got {bad[0]}")
    fixed = next((t for t in targets if t.size), None)
    if request.kind == "sweep" and fixed is not None:
        raise UsageError(f"{fixed.text}: a sweep sets the sizes itself (--img-sizes, "
                         f"--seq-lens); drop @{fixed.size}")


def check_scopes(registry: Registry, overrides: dict[str, str],
                 targets: Sequence[Target]) -> None:
    """``--set ARCH.KEY=VALUE`` must name an architecture among the targets: a scope that
    matches none would be ignored without a word."""
    asked = sorted({t.arch for t in targets})
    for key, value in overrides.items():
        scope = key.rpartition(".")[0]
        if not scope:
            continue
        if scope not in registry.architectures:
            try:
                registry.get(scope)
            except UsageError as exc:  # unknown architecture, with suggestions
                raise UsageError(f"--set {key}={value}: {exc}") from None
        if scope not in asked:
            raise UsageError(f"--set {key}={value}: {scope} is not among the targets "
                             f"({', '.join(asked)}); drop it or add a {scope} target")


def validate(pm: Any, specs: Sequence[ModelSpec]) -> None:
    """Every spec against its architecture's config schema (types, ranges, relations,
    rules and size: :func:`archbench.core.schema.check_spec`), then the plugins' own
    checks (``archbench_validate``), then each swap's."""
    from archbench.mixers.swap import plan_swap

    mixers = collect_mixers(pm) if any(s.mixer for s in specs) else {}
    for spec in specs:
        check_spec(spec)
        pm.hook.archbench_validate(spec=spec)
        plan_swap(spec, mixers)


def _option(request: ModelRequest, kind: str) -> str:
    names = {"img": ("--img-size", "--img-sizes"), "seq": ("--seq-len", "--seq-lens")}[kind]
    return names[request.kind == "sweep"]


def parse_overrides(values: Sequence[str]) -> dict[str, str]:
    """``--set KEY=VALUE`` / ``--set ARCH.KEY=VALUE`` options → {KEY: VALUE}; a key given
    twice or without a value is refused."""
    return assignments(values, lambda item: f"--set {item!r}",
                       "--set depth=6 or --set vit.depth=6", _SET_KEY)


def check_options(m: Measurement) -> tuple[int, ...]:
    """What can be checked in the options alone, without torch (so a typo fails at once);
    returns the batch sizes."""
    if m.max_batch and m.batch_sizes:
        raise UsageError("--max-batch finds the batch size itself; drop --batch-size")
    check_device_name(m.device)
    if m.cuda_graphs and m.device == "cpu":
        raise UsageError("--cuda-graphs needs a CUDA device; this run is on cpu")
    if m.compile_mode is not None and m.compile_mode not in COMPILE_MODES:
        raise UsageError(f"--compile {m.compile_mode!r}: expected one of "
                         f"{', '.join(COMPILE_MODES)}")
    check_timing(m)
    check_breakdown(m)
    if m.max_memory is not None and not math.isfinite(m.max_memory):
        raise UsageError(f"--max-memory must be a finite number of MB, got {m.max_memory}")
    if m.device == "cpu":
        check_precision("cpu", m.dtype)
    return int_list(m.batch_sizes or ("1",), "--batch-size")


def check_timing(m: Measurement) -> None:
    """The timing options: finite, in range, and only where they mean something."""
    if not math.isfinite(m.min_time) or not 0 <= m.min_time <= MAX_SECONDS:
        raise UsageError(f"--min-time must be between 0 and {MAX_SECONDS:.0f} seconds (a "
                         f"day), got {m.min_time}")
    if m.target_ci is not None:
        if not math.isfinite(m.target_ci) or not 0 < m.target_ci < 100:
            raise UsageError("--target-ci is a percentage of the median: more than 0 and "
                             f"less than 100, got {m.target_ci}")
        if m.no_latency:
            raise UsageError("--target-ci adds timed trials; with --no-latency nothing "
                             "is timed")
    if m.max_time is not None:
        if m.target_ci is None:
            raise UsageError("--max-time bounds the trials --target-ci adds; give "
                             "--target-ci too, or drop --max-time")
        if not math.isfinite(m.max_time) or not 0 < m.max_time <= MAX_SECONDS:
            raise UsageError(f"--max-time must be more than 0 and at most "
                             f"{MAX_SECONDS:.0f} seconds (a day), got {m.max_time}")
    for option, value, limit in (("--warmup", m.warmup, MAX_WARMUP),
                                 ("--repeat", m.repeat, MAX_REPEAT),
                                 ("--threads", m.threads, MAX_THREADS)):
        if value is not None and value > limit:
            raise UsageError(f"{option} must be at most {limit}, got {value}")


def check_breakdown(m: Measurement) -> None:
    """``--breakdown`` profiles a timed forward pass op by op, after the row's trials."""
    if not m.breakdown:
        return
    if m.no_latency:
        raise UsageError("--breakdown profiles a timed row after its trials; with "
                         "--no-latency nothing is timed")
    if m.mode == "train":
        raise UsageError("--breakdown attributes a forward pass to modules; with --mode "
                         "train the backward pass and the optimizer step would have no "
                         "module: use --mode infer")
    for option, given in (("--compile", m.compile_mode is not None),
                          ("--cuda-graphs", m.cuda_graphs)):
        if given:
            raise UsageError(f"--breakdown times modules by their forward hooks, which "
                             f"{option} runs past (one graph, not module by module); drop "
                             f"one of them")


def check_precision(device: str, dtype: str) -> None:
    """fp16 on the CPU is refused: PyTorch's CPU kernels have no fast fp16 path, so timing
    (and the fp16 matmul peak measured first) would take hours, not seconds."""
    if dtype == "fp16" and device == "cpu":
        raise UsageError("--dtype fp16 on the CPU: PyTorch has no fast fp16 kernels there "
                         "(timing would take hours); use --dtype bf16 or fp32 on the CPU, "
                         "or a CUDA device")


def run_settings(m: Measurement, machine: Machine | None = None) -> RunSettings:
    """The measurement options checked against each other and the machine the tasks run
    on (this one unless an executor says otherwise)."""
    machine = machine or _this_machine()
    batch_sizes = check_options(m)
    device = machine.resolve_device(m.device)
    dtype = machine.amp_dtype(device) if m.amp else m.dtype
    check_precision(device, dtype)
    if m.cuda_graphs and not device.startswith("cuda"):
        raise UsageError(f"--cuda-graphs needs a CUDA device; this run is on {device}")
    if m.compile_mode is not None:
        import torch

        if not hasattr(torch, "compile"):
            raise UsageError(f"--compile needs torch.compile (torch >= 2.0); this is torch "
                             f"{torch.__version__}")
    return RunSettings(
        batch_sizes=batch_sizes, device=device, dtype=dtype, warmup=m.warmup,
        min_time=m.min_time, repeat=m.repeat, threads=m.threads, latency=not m.no_latency,
        mode=m.mode, channels_last=m.channels_last, compile=m.compile_mode,
        cuda_graphs=m.cuda_graphs, max_batch=m.max_batch, max_memory_mb=m.max_memory,
        debug=m.debug, target_ci=m.target_ci, max_time=m.max_time, cache=not m.no_cache,
        breakdown=m.breakdown,
    )


def check_trainable(pm: Any, specs: Sequence[ModelSpec]) -> None:
    """``--mode train`` needs parameters that require grad; checked on the meta device. A
    model that fails to build here is left to its row, where the failure is reported."""
    import torch

    from archbench.mixers.swap import plan_swap

    mixers = collect_mixers(pm) if any(s.mixer for s in specs) else {}
    for spec in specs:
        try:
            with torch.device("meta"):
                model = pm.hook.archbench_build_model(spec=spec, swap=plan_swap(spec, mixers))
        except Exception:
            continue  # the worker builds it again and fails that model's rows
        if model is not None and not any(p.requires_grad for p in model.parameters()):
            raise UsageError(f"--mode train: {spec.name} has no parameters that require grad")


def plan_mixers(pm: Any, request: MixerRequest, machine: Machine | None = None) -> Plan:
    """The plan of ``mixers``: each mixer alone at each size, one group per size."""
    from archbench.mixers.alone import mixer_config_check, mixer_spec

    machine = machine or _this_machine()
    mixers = collect_mixers(pm)
    if not mixers:
        raise UsageError("no token mixer is registered (archbench_token_mixers)")
    names = list(dict.fromkeys(request.names)) or sorted(
        mixers, key=lambda n: (n != REFERENCE_MIXER, list(mixers).index(n)))
    chosen = [find_mixer(mixers, name) for name in names]
    check_options(request.measurement)
    for mixer in chosen:  # before torch is imported: a bad config fails at once
        for size in request.sizes:
            mixer_config_check(mixer, dataclasses.replace(request.base, size=size))
    settings = run_settings(request.measurement, machine)
    budget = machine.memory_budget_mb(settings)
    tasks = []
    for n, size in enumerate(request.sizes):
        cfg = dataclasses.replace(request.base, size=size)
        specs = tuple(mixer_spec(m, cfg, budget, settings.dtype, max(settings.batch_sizes))
                      for m in chosen)
        # rows in the report: each mixer across its sizes, then the next mixer
        positions = tuple(i * len(request.sizes) + n for i in range(len(chosen)))
        tasks.append(Task(n, specs, settings, positions))
    base = {k: v for k, v in dataclasses.asdict(request.base).items() if k != "size"}
    recorded = {**dataclasses.asdict(settings), **base, "sizes": list(request.sizes),
                "memory_budget_mb": budget}
    return Plan("mixers", tuple(tasks), tuple(names), recorded, ("mixers",))
