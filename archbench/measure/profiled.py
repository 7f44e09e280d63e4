"""The profiled pass of ``--breakdown``: ``record_function`` ranges around modules (forward
pre/post hooks) and around module-level functions (patched for the pass only), the
profiler run over a row's iterations, and its events read back as spans by range name.
torch is imported inside the functions."""

from __future__ import annotations

import contextlib
import functools
import importlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from archbench.measure.spans import Spans, merged

if TYPE_CHECKING:
    from torch import nn

#: Every range the pass opens is named ``archbench/...``: ``archbench/mixer/<module path>``,
#: ``archbench/mlp/...``, ``archbench/norm/...``, ``archbench/stage/<i>/<path>``,
#: ``archbench/<line>/<function path>``, and these two around each iteration.
PREFIX = "archbench/"
ITERATION = PREFIX + "iteration"
FORWARD = PREFIX + "forward"
#: Device activities that are work on the GPU (kineto's activity types).
DEVICE_WORK = frozenset({"kernel", "gpu_memcpy", "gpu_memset"})

def _hook(module: nn.Module, name: str) -> list[Any]:
    """Forward pre/post hooks that open and close a ``record_function`` range."""
    from torch.autograd.profiler import record_function

    open_ranges: list[Any] = []

    def enter(_module: nn.Module, _args: Any) -> None:
        rf = record_function(name)
        rf.__enter__()
        open_ranges.append(rf)

    def leave(_module: nn.Module, _args: Any, _output: Any) -> None:
        if open_ranges:
            open_ranges.pop().__exit__(None, None, None)

    return [module.register_forward_pre_hook(enter),
            module.register_forward_hook(leave, always_call=True)]

def _patch(path: str, name: str) -> tuple[Any, str, Any]:
    """Replace the function at dotted ``path`` by one that runs it inside a range; returns
    what restores it. ImportError/AttributeError/TypeError for a path that is no function."""
    from torch.autograd.profiler import record_function

    module_name, _, attr = path.rpartition(".")
    owner = importlib.import_module(module_name)
    original = getattr(owner, attr)
    if not callable(original):
        raise TypeError(f"{path} is not a function")

    @functools.wraps(original)
    def timed(*args: Any, **kwargs: Any) -> Any:
        with record_function(name):
            return original(*args, **kwargs)

    setattr(owner, attr, timed)
    return owner, attr, original


@contextlib.contextmanager
def instrumented(ranges: Sequence[tuple[str, nn.Module]], functions: Mapping[str, str],
                 notes: list[str]) -> Iterator[None]:
    """Module ranges (``(range name, module)``) and wrapped functions (``{dotted path: range
    name}``) in place inside, removed and restored on the way out whatever happens; a
    function path that cannot be wrapped is a note."""
    handles: list[Any] = []
    patched: list[tuple[Any, str, Any]] = []
    try:
        for name, module in ranges:
            handles += _hook(module, name)
        for path, name in functions.items():
            try:
                patched.append(_patch(path, name))
            except (ImportError, AttributeError, TypeError, ValueError) as exc:
                notes.append(f"time region {path!r} not timed: {type(exc).__name__}: {exc}")
        yield
    finally:
        for handle in handles:
            handle.remove()
        for owner, attr, original in reversed(patched):
            setattr(owner, attr, original)


def profiled_events(fn: Callable[[], Any], iterations: int, device: str) -> list[Any]:
    """The profiler's events of ``iterations`` calls of ``fn``, each inside an
    ``archbench/iteration`` range (with a CUDA synchronisation at its end) and an
    ``archbench/forward`` range (the call alone). Garbage collection is off meanwhile, as
    in the timed trials."""
    import torch
    from torch.autograd.profiler import record_function
    from torch.profiler import ProfilerActivity, profile

    from archbench.measure.memory import stderr_silenced
    from archbench.measure.timing import collector_paused

    cuda = device.startswith("cuda")
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    prof = profile(activities=activities)
    if cuda:
        torch.cuda.synchronize(device)
    with stderr_silenced():
        prof.start()
    try:
        with collector_paused():
            for _ in range(iterations):
                with record_function(ITERATION):
                    with record_function(FORWARD):
                        fn()
                    if cuda:
                        torch.cuda.synchronize(device)
    finally:
        with stderr_silenced():
            prof.stop()
    return list(prof.profiler.kineto_results.events())


@dataclass
class Timeline:
    """The events that matter: CPU spans by range (or op) name on the model's thread, and
    every piece of device work as (launch time of the op that issued it or None, ns)."""

    spans: dict[str, Spans]
    work: list[tuple[int | None, int]]
    #: How many times each range or op ran, outermost calls only (an op that calls itself,
    #: as ``aten::roll`` over two dims does, is one call).
    counts: dict[str, int] = field(default_factory=dict)


def read_events(events: Sequence[Any], op_names: frozenset[str]) -> Timeline:
    """The spans of the ``archbench/`` ranges and of the ops named in ``op_names`` on the
    thread that ran the iterations; each device activity (kernel, memcpy, memset) with the
    start of the CPU op it is linked to (kineto's correlation ids)."""
    from torch.autograd import DeviceType

    main = next((e.start_thread_id() for e in events if e.name() == ITERATION), None)
    if main is None:
        raise RuntimeError("the profiler recorded none of the profiled iterations")
    spans: dict[str, Spans] = {}
    launched: dict[int, int] = {}
    device: list[tuple[int, int]] = []
    for e in events:
        if e.activity_type() in DEVICE_WORK:
            device.append((e.linked_correlation_id(), e.duration_ns()))
            continue
        if e.device_type() != DeviceType.CPU or e.start_thread_id() != main:
            continue
        name = e.name()
        if name.startswith(PREFIX) or name in op_names:
            spans.setdefault(name, []).append((e.start_ns(), e.end_ns()))
        if e.linked_correlation_id() == 0 and e.activity_type() == "cpu_op":
            launched[e.correlation_id()] = e.start_ns()
    joined = {name: merged(found) for name, found in spans.items()}
    return Timeline(joined, [(launched.get(corr), ns) for corr, ns in device],
                    {name: len(found) for name, found in joined.items()})

