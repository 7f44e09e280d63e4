"""The hooks archbench calls: the plugin author's reference.

A plugin is a module (or object) with functions marked ``@archbench.hookimpl`` whose names
are the hook names below; install it under the ``archbench`` entry-point group::

    [project.entry-points.archbench]
    myarch = "archbench_myarch"

The core's own behaviour (parameter and FLOP counting, latency, example inputs, the report
writers) is implemented by plugins on the same hooks (:mod:`archbench.builtin`), so any of
it can be extended or replaced.

The hooks run in this order for every model of ``archbench compare`` (the core calls
each through ``pm.hook``, so ``wrapper=True`` implementations run around the others)::

    archbench_architectures            once, at start-up (also for ``archbench list``)
    archbench_validate                 for every requested model, after the core checked its
                                       config schema, before anything is built
    archbench_build_model              each model in turn (kept on the device for timing)
    archbench_example_inputs           once for analysis (batch 1), once per batch size
    archbench_flop_handlers            once per model, before the analysis
    archbench_analyze                  once per model
    archbench_evaluate                 once per model and batch size, after its timing
    archbench_report_writers           whenever the report files are (re)written

``archbench mixers`` calls ``archbench_token_mixers`` once and runs each mixer alone
through the same hooks, as a spec of the core's ``mixer`` architecture
(:mod:`archbench.mixers.alone`); plugins ignore it as they ignore any architecture they do
not own.

Rules shared by ``archbench_analyze`` and ``archbench_evaluate``: the returned dict's keys
are column names, with the unit in the name (``gmacs``, ``latency_ms_median``). A scalar
value (number, string, bool, ``None``) becomes a column of the table; a ``dict`` or
``list`` value is kept only in ``report.json``, under the row's ``details``. Two plugins
returning the same column is an error naming both, so name columns after what they
measure. An exception raised inside a hook costs that model's rows, and the row's
``error`` names the plugin and the hook.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import torch

    from archbench.core.settings import RunSettings
    from archbench.core.spec import Architecture, ModelSpec
    from archbench.measure.counting import AnalysisContext
    from archbench.measure.workload import Workload
    from archbench.mixers import TokenMixer
    from archbench.mixers.swap import Swap
    from archbench.report.report import ReportWriter

hookspec = pluggy.HookspecMarker("archbench")


@hookspec
def archbench_architectures() -> list[Architecture]:
    """Register the architectures this plugin provides.

    Receives nothing. Returns a list of :class:`archbench.Architecture` (name, family,
    paper, input kind, named variants with their config and default input size, default
    variant). Return an empty list, or do not implement the hook, to register none.

    Called by the core once, when the plugin manager is set up (``archbench list`` and every
    command that resolves ``ARCH[:VARIANT]``). It must be cheap: do not import torch or
    build anything here. An implementation that raises or returns anything but a list of
    ``Architecture`` costs its plugin a warning and its answer; where two plugins register
    the same architecture name, the first registered (archbench's own first) keeps it and
    the other is warned about, naming both.
    """


@hookspec
def archbench_validate(spec: ModelSpec) -> None:
    """Check a requested model before anything is built; raise :class:`archbench.UsageError`.

    Most checks need no hook: declare what each config key may hold in
    ``Architecture(schema=Schema(...))`` (:mod:`archbench.core.schema`): per key a
    ``Field(kind, minimum=, maximum=, above=, below=, choices=, odd=, multiple_of=,
    items=, length=, ...)``, the input size under ``img_size``/``seq_len``, cross-key
    ``rules`` (module-level ``rule(spec) -> str | None``) and a ``params(spec)`` estimate
    that the core refuses above ``MAX_PARAMS``. The core checks every spec against it
    (keys without a field get one inferred from their default: positive ints, finite
    floats, ...) before calling this hook, so here every key already has its declared type
    and range.

    Receives the :class:`archbench.ModelSpec` (architecture, variant, config with the
    user's overrides applied, input size). Returns nothing; raise ``UsageError`` with a
    one-line message for a configuration that cannot work (the CLI prints it and exits
    with code 2; any other exception is also one line, naming the plugin, and exit 2).
    Ignore specs of architectures you do not own (``spec.arch.name``).

    Called by the core for every requested model before the first model is built, so a
    typo in the last argument fails in a second, not after an hour. Must not import torch
    or build the model; check the arithmetic of the config instead.
    """


@hookspec(firstresult=True)
def archbench_build_model(spec: ModelSpec, swap: Swap | None) -> torch.nn.Module | None:
    """Build the model for ``spec``, randomly initialised, on the CPU, in fp32.

    Receives the :class:`archbench.ModelSpec` and, for an architecture that declares
    ``Architecture.mixer_swap`` and a spec with a mixer (``swin:tiny+msa``), ``swap``: a
    factory, ``swap(stage)`` returning a fresh token-mixer layer for one block of that
    stage, in the block's layout (``swap.mixer_layout`` is the layout the mixer itself takes);
    None otherwise. Returns an ``nn.Module`` if this plugin owns ``spec.arch.name``,
    otherwise ``None`` (the first non-``None`` answer wins). A plugin that declares swaps
    must put ``swap(stage)`` in every block: the core counts the swapped layers after
    building and fails the row if they are not all there.

    Called by the core once per model, in the order asked; the core puts it in eval mode,
    analyses it on the CPU, then moves it to the device and dtype. Without timing
    (``--no-latency``) one model is alive at a time; with timing the built models stay on
    the device until their interleaved trials end. An exception here costs that model's rows
    (``status=error``), not the run. The core also calls it under
    ``with torch.device("meta")`` to check ``--mode train`` before anything runs, and runs
    the model with meta tensors for the FLOP cross-check, so build with ordinary
    ``torch.nn`` constructors, keep tensors in parameters and buffers, and do not move
    tensors to a fixed device.

    In a count-only run (``--no-latency``: nothing timed or evaluated) the core builds
    without paying for most of the random initialisation
    (:mod:`archbench.measure.shapes_only`): each parameter is zero when a module registers
    it, and value writes to a parameter (``torch.nn.init``'s functions, ``uniform_``,
    ``copy_``...) do nothing; shapes, ``requires_grad`` and buffers are made as usual. A
    build that fails that way, or a model that cannot then be counted, is built again the
    ordinary way. Counts that depend on parameter values (an argmax router) are taken with
    those zeros.
    """


@hookspec(firstresult=True)
def archbench_example_inputs(
    spec: ModelSpec, model: torch.nn.Module, batch_size: int
) -> tuple[Any, ...] | None:
    """Make example inputs for one forward pass: ``model(*inputs)``.

    Receives the spec, the built model (on the CPU) and the batch size. Returns a tuple of
    tensors on the CPU, or ``None`` to leave it to the next plugin. The core's own plugin
    (which runs last) answers for every architecture: a ``(B, 3, H, W)`` normal image
    batch for ``input_kind="image"``, ``(B, seq_len)`` token ids below
    ``config["vocab_size"]`` for ``input_kind="tokens"``. Implement it only for a model
    with other inputs (an encoder-decoder's source and target, say).

    Called by the core once for the complexity analysis (batch 1) and once per batch size
    for evaluation; the core moves floating-point tensors to the run's device and dtype.
    """


@hookspec
def archbench_flop_handlers(spec: ModelSpec) -> dict[str, Callable[..., Any] | None]:
    """Add fvcore FLOP handlers for operators fvcore does not count in this model.

    Receives the spec of the model about to be counted. Returns ``{"aten::op_name":
    handle}``, where ``handle(inputs, outputs)`` follows fvcore's ``Handle`` protocol
    (``inputs``/``outputs`` are lists of ``torch._C.Value``; return the op's
    multiply-accumulate count). A handle of ``None`` marks an op as deliberately not
    counted, so it is not listed as unsupported. Return handlers only for your own
    architectures unless they are right for every model (the core's
    ``aten::scaled_dot_product_attention`` handler is).

    Called by the core once per model, before ``archbench_analyze``; the merged handlers
    (on top of those of a ``--mixer`` swap's token mixer, ``TokenMixer.flop_handlers``)
    give ``ctx.flops``. Two plugins handling the same op for one model is an error.
    """


@hookspec
def archbench_analyze(ctx: AnalysisContext) -> dict[str, Any] | None:
    """Add complexity columns for one model: counts and analytic formulas.

    Receives an :class:`archbench.measure.counting.AnalysisContext`: ``ctx.spec``,
    ``ctx.model`` (CPU, fp32, eval mode), ``ctx.inputs`` (batch 1), ``ctx.settings`` (the
    run's :class:`archbench.RunSettings`), ``ctx.swap`` (the ``--mixer`` swap built into
    the model, or None), and ``ctx.flops``, the model's
    fvcore count with every plugin's handlers (computed once, on first use, shared by all
    plugins: ``total``, ``by_module``, ``by_operator``, ``unsupported``). Returns a dict
    of columns (see the module docstring), or ``None`` for a model you have nothing to
    say about.

    Called by the core once per model, before any evaluation. The core's complexity
    plugin answers for every model with parameters, GMACs/GFLOPs, the token-mixer
    breakdown and the ``FlopCounterMode`` cross-check; its swaps plugin answers for a
    swapped model (``ctx.swap``: the mixer's formula per stage, as MSA and W-MSA, after
    checking the count); architecture plugins add their analytic formulas (e.g. Swin eqs.
    1 and 2) for their own unswapped models and return None when ``ctx.swap`` is set.

    The merged answers are kept in the on-disk complexity cache, and a later run asking
    for the same model reuses them without building it (``--no-cache`` counts afresh). So
    an analysis must depend only on the spec (architecture, variant, config, input size,
    mixer), ``ctx.settings.mode`` and plugin code, never on parameter values (a count-only
    run skips initialisation: see ``archbench_build_model``). The cache key holds those,
    and the version and a hash of the ``.py`` files of every plugin implementing this hook,
    ``archbench_build_model``, ``archbench_example_inputs``, ``archbench_flop_handlers``
    or ``archbench_token_mixers``.
    """


@hookspec
def archbench_evaluate(
    spec: ModelSpec,
    model: torch.nn.Module,
    workload: Workload,
    batch_size: int,
    settings: RunSettings,
    trials: list[list[float]],
    analysis: Mapping[str, Any],
    peak_gmacs_per_s: float | None,
) -> dict[str, Any] | None:
    """Add evaluation columns for one model at one batch size, after it has been timed.

    Receives the spec; the model (on ``settings.device`` in ``settings.dtype``); the
    :class:`archbench.measure.workload.Workload` that was timed (``workload.fn()`` runs one more
    iteration: a forward pass, or a training step with ``--mode train``); the batch size;
    the run's :class:`archbench.RunSettings`; the row's timing ``trials`` (one list of
    per-iteration milliseconds per trial); the model's ``analysis`` columns (``gmacs``...);
    and the device's measured dense matmul rate in GMAC/s. Implementations take only the
    arguments they need. Returns a dict of columns, or ``None``.

    Called by the core once per model and batch size, when the row's last trial has
    ended; not called with ``--no-latency``. The core's latency plugin adds the latency
    statistics (median, bootstrap 95% CI, p10, p90, IQR), throughput, achieved GMAC/s and
    fraction of the matmul peak, and peak memory. A CUDA out-of-memory raised here marks
    the row ``status=oom``; any other exception ``status=error``.
    """


@hookspec
def archbench_report_writers() -> list[ReportWriter]:
    """Provide report writers, one per output format.

    Receives nothing. Returns a list of :class:`archbench.report.report.ReportWriter`
    (``format`` as given to ``--format``, the ``filename`` it writes, and
    ``render(report)`` returning the file's ``str``/``bytes``, or ``{filename: content}``
    for a format that writes several files). A later plugin's writer for the same format
    replaces an earlier one. The core writes every writer's files to temporary files and
    then renames them all, so an interrupted run leaves whole files holding the same rows.
    A ``render`` that raises costs its own files (one warning; the others are written and
    the exit code does not change); an implementation of this hook that raises or returns
    anything but a list of ``ReportWriter`` costs its plugin a warning.

    Called by the core to learn the valid ``--format`` values, and after every finished
    row to rewrite the run's files. The core's writers plugin provides ``csv``, ``md`` and
    ``json``.
    """


@hookspec
def archbench_token_mixers() -> list[TokenMixer]:
    """Register token mixers that ``archbench mixers`` can build and measure on their own.

    Receives nothing. Returns a list of :class:`archbench.mixers.TokenMixer` (a name such
    as ``msa``, ``w-msa`` or ``gnconv``, a builder taking a
    :class:`archbench.mixers.MixerConfig` (width, heads, window, order, feature-map size),
    the analytic MAC formula for one sample, the input layout (``tokens`` (B, N, C),
    ``channels_first`` or ``channels_last``), and optionally a config check raising
    ``UsageError``, the attention matrix's size in elements (to skip sizes that cannot
    fit) and extra fvcore handlers). Like ``archbench_architectures`` it must be cheap:
    import torch inside the builder only.

    Called by the core whenever it needs the registered mixers (so keep it cheap and free of
    side effects): for ``archbench mixers``, and for ``compare``/``sweep`` with a swap
    (``+MIXER`` or ``--mixer``) when the plan is checked and in each worker that builds a
    swapped model. The core checks each swap against each stage of the architecture's
    :class:`archbench.mixers.MixerSwap` and builds it into the model through the ``swap``
    argument of ``archbench_build_model``. As for ``archbench_architectures``, a failing
    or malformed answer costs its plugin a warning, and a mixer name registered twice stays
    with the first plugin, with a warning naming both.
    """
