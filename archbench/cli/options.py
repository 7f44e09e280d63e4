"""What the commands share: errors as one line and exit 2, the plugin manager and registry,
the measurement and output options (declared once), progress, and printing a report."""

from __future__ import annotations

import contextlib
import shlex
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import click

from archbench.core.errors import UsageError, error_text
from archbench.core.settings import DTYPES
from archbench.run.executor import EXECUTORS
from archbench.run.request import Measurement, Output
from archbench.run.session import EXIT_INTERRUPTED, EXIT_USAGE


def fail(message: str) -> NoReturn:
    """A one-line error and exit code 2: the user's input cannot work."""
    click.echo(f"archbench: error: {message}", err=True)
    sys.exit(EXIT_USAGE)


@contextlib.contextmanager
def usage_errors() -> Iterator[None]:
    """Turn a UsageError raised while checking the input into ``fail``."""
    try:
        yield
    except UsageError as exc:
        fail(str(exc))


@contextlib.contextmanager
def planning_errors() -> Iterator[None]:
    """While a plan is made (plugins validate, the device is looked up): bad input, or a
    plugin failing before anything runs, is one line and exit 2; Ctrl-C is exit 130."""
    try:
        with usage_errors():
            yield
    except KeyboardInterrupt:
        click.echo("\ninterrupted before anything ran", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # no row to hold a traceback: the line says who raised
        text = error_text(exc).replace(" (--debug shows the traceback)", "")
        fail(f"while checking the input: {text}")


def setup() -> tuple[Any, Any]:
    """The plugin manager (one per process) and the architecture registry; no torch."""
    from pluggy import PluginValidationError

    from archbench.core.registry import Registry
    from archbench.plugins import get_plugin_manager

    try:
        pm = get_plugin_manager()
        return pm, Registry.from_plugins(pm)
    except PluginValidationError as exc:
        fail(f"invalid plugin: {exc}")
    except UsageError as exc:
        fail(str(exc))


def command_line() -> str:
    return shlex.join(["archbench", *sys.argv[1:]])


def progress(message: str) -> None:
    click.echo(message, err=True)


def _options(warmup: int, min_time: float, repeat: int) -> list[Callable]:
    return [
        click.option("--batch-size", "batch_sizes", multiple=True, metavar="N[,N...]",
                     help="Batch size(s); repeatable or comma-separated. Default 1."),
        click.option("--max-batch", is_flag=True, help="Find the largest batch that fits "
                     "(doubling, then bisection) and time that; not with --batch-size."),
        click.option("--max-memory", type=click.FloatRange(min=0, min_open=True), metavar="MB",
                     help="Memory budget for --max-batch and for skipping token-mixer sizes "
                     "(default: 90% of free memory)."),
        click.option("--device", default="auto", show_default=True,
                     help="auto, cpu, cuda or cuda:N."),
        click.option("--dtype", type=click.Choice(list(DTYPES)),
                     default="fp32", show_default=True, help="Evaluation dtype; TF32 matmuls "
                     "only with tf32 (counting always runs in fp32)."),
        click.option("--amp", is_flag=True,
                     help="Shorthand for --dtype bf16 (fp16 on GPUs without bf16)."),
        click.option("--mode", type=click.Choice(["infer", "train"]), default="infer",
                     show_default=True, help="Time a forward pass, or a training step "
                     "(forward, loss, backward, SGD step)."),
        click.option("--channels-last", is_flag=True, help="Channels-last memory format."),
        click.option("--compile", "compile_mode", is_flag=False, flag_value="default",
                     default=None, metavar="[MODE]", help="torch.compile the model (default, "
                     "reduce-overhead, max-autotune); compile time is its own column."),
        click.option("--cuda-graphs", is_flag=True, help="Replay a captured CUDA graph."),
        click.option("--warmup", type=click.IntRange(min=0), default=warmup, show_default=True,
                     help="Untimed iterations before the first trial."),
        click.option("--min-time", type=click.FloatRange(min=0), default=min_time,
                     show_default=True, help="Seconds of timed iterations per row, over all "
                     "trials (at least 40 iterations per row and 5 per trial, whatever the time)."),
        click.option("--repeat", type=click.IntRange(min=1), default=repeat, show_default=True,
                     help="Trials per row; rows of a group are interleaved across trials."),
        click.option("--target-ci", type=float, metavar="PCT",
                     help="Add trials until every row's 95% interval half-width is within "
                     "PCT% of its median, or --max-time runs out."),
        click.option("--max-time", type=float, metavar="S",
                     help="With --target-ci: seconds of trials a group may take in all "
                     "(default 60)."),
        click.option("--threads", type=click.IntRange(min=1), help="CPU threads for torch "
                     "(default when timing on the CPU: torch's own choice, less one core left "
                     "to the rest of the machine; recorded either way)."),
        click.option("--no-cache", is_flag=True, help="Count params and FLOPs afresh: "
                     "neither read nor write the complexity cache."),
        click.option("--no-latency", is_flag=True, help="Complexity only: params, FLOPs, "
                     "formulas."),
        click.option("--breakdown", is_flag=True, help="After each row's trials, profile "
                     "it and attribute its time to the token mixers, MLPs, norms and the "
                     "rest (time shares beside MAC shares; per stage and module in JSON)."),
        click.option("--debug", is_flag=True, help="Print tracebacks of failed rows."),
        *_output_options(),
    ]


def _output_options() -> list[Callable]:
    return [
        click.option("--out", type=click.Path(path_type=Path), default=Path("results"),
                     show_default=True, help="Folder that receives a fresh run folder."),
        click.option("--format", "formats", multiple=True, metavar="FMT",
                     help="Report format(s): csv, md, json (default), latex, or a plugin's."),
        click.option("--figure-format", type=click.Choice(["png", "pdf", "svg"]),
                     default="png", show_default=True, help="Figures' file format; "
                     "report.md shows PNGs and links the others."),
        click.option("--columns", metavar="COL[,COL...]", help="Summary columns (terminal, "
                     "md, latex), from the core's; every column stays in csv and json."),
        click.option("--executor", type=click.Choice(list(EXECUTORS)), default="local",
                     show_default=True, envvar="ARCHBENCH_EXECUTOR",
                     help="Where tasks run: local (this process) or ray (a Ray cluster; "
                     "pip install 'archbench[ray]')."),
        click.option("--ray-address", metavar="ADDR",
                     help="Ray cluster to join (default: RAY_ADDRESS, else start a local Ray "
                     "instance for the run and shut it down after)."),
        click.option("--retries", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Times a task whose worker died is run again (ray); a retried "
                     "timing is a different measurement."),
        *_store_options(),
    ]


def _store_options() -> list[Callable]:
    """The results store, the baseline and the regression gate (README "Results over
    time")."""
    return [
        click.option("--store", metavar="PATH",
                     type=click.Path(path_type=Path, dir_okay=False),
                     envvar="ARCHBENCH_STORE", help="Results store (SQLite) the run is "
                     "recorded in when it ends [default: <--out>/archbench.sqlite]."),
        click.option("--no-store", is_flag=True, help="Do not record the run in the store."),
        click.option("--baseline", metavar="RUN", help="Compare every row with a baseline "
                     "run: a run folder, a run id from 'archbench history', or latest (the "
                     "newest stored run with such rows on this device model)."),
        click.option("--baseline-any-device", is_flag=True, help="Compare latency with a "
                     "baseline measured on another device model too (counts always are)."),
        click.option("--fail-on", "fail_on", multiple=True, metavar="METRIC:THRESHOLD",
                     help="With --baseline: exit 3 on a regression: latency:5% (a significant "
                     "slow-down over 5%), gmacs:0 or params:0 (any change); repeatable."),
    ]


def measurement_options(warmup: int = 3, min_time: float = 1.0, repeat: int = 5
                        ) -> Callable[[Callable], Callable]:
    """The options of every measuring command (compare, sweep, mixers), with the command's
    own timing defaults; they arrive as one ``measurement`` keyword (a :class:`Measurement`)
    and one ``output`` keyword (an :class:`Output`)."""

    def decorate(command: Callable) -> Callable:
        def bundled(**kwargs: Any) -> Any:
            output = Output(out=kwargs.pop("out"), formats=kwargs.pop("formats"),
                            executor=kwargs.pop("executor"),
                            ray_address=kwargs.pop("ray_address"),
                            retries=kwargs.pop("retries"),
                            figure_format=kwargs.pop("figure_format"),
                            columns=tuple(c.strip() for c in (kwargs.pop("columns") or "")
                                          .split(",") if c.strip()),
                            **{k: kwargs.pop(k) for k in ("store", "no_store", "baseline",
                                                          "fail_on", "baseline_any_device")})
            fields = Measurement.__dataclass_fields__
            measurement = Measurement(**{k: kwargs.pop(k) for k in list(kwargs)
                                         if k in fields})
            return command(measurement=measurement, output=output, **kwargs)

        bundled.__name__, bundled.__doc__ = command.__name__, command.__doc__
        bundled.__click_params__ = list(getattr(command, "__click_params__", []))
        for option in reversed(_options(warmup, min_time, repeat)):
            bundled = option(bundled)
        return bundled

    return decorate


def model_options(command: Callable) -> Callable:
    """``--set`` and ``--mixer``: run-level defaults that a target's own
    ``+MIXER``/``[KEY=VALUE]`` override."""
    command = click.option(
        "--mixer", metavar="NAME", help="Default token mixer for every target, in every block "
        "(see 'archbench mixers'); a target's own +MIXER wins.")(command)
    return click.option(
        "--set", "overrides", multiple=True, metavar="KEY=VALUE",
        help="Override a config field of every model (ARCH.KEY=VALUE for one architecture), "
        "e.g. --set depth=6; a target's own [KEY=VALUE] wins.")(command)


def accuracy_options(command: Callable) -> Callable:
    """``--data``, ``--labels``, ``--weights``, ``--limit``: measured top-1/top-5 beside the
    timing (docs/accuracy.md). Applied outside :func:`measurement_options`, whose bundle
    takes them into the :class:`Measurement`."""
    for option in reversed([
        click.option("--data", metavar="DIR", help="Measure top-1/top-5 on these images "
                     "after each model's trials: class folders (ImageFolder), or a flat "
                     "folder with --labels."),
        click.option("--labels", metavar="FILE.csv", help="With a flat --data folder: "
                     "'filename,label' rows (label: class index, WordNet id or name)."),
        click.option("--weights", multiple=True, metavar="SOURCE", help="Weights to evaluate: "
                     "timm (timm's pretrained weights of the matching model), a checkpoint "
                     "PATH, or MODEL=SOURCE for one model; repeatable."),
        click.option("--limit", type=click.IntRange(min=1), metavar="N",
                     help="Evaluate N images, evenly spaced through --data (a quick check)."),
    ]):
        command = option(command)
    return command


def run_plan(pm: Any, plan_fn: Callable[[Any], Any], output: Output) -> None:
    """Check everything (exit 2 on bad input), run the plan in a session, print the
    report, and exit with the session's code."""
    from archbench.report.baseline import parse_gates
    from archbench.report.report import check_columns
    from archbench.run.executor import make_executor
    from archbench.run.session import Session, choose_writers
    from archbench.store import store_location

    with planning_errors():
        check_columns(output.columns)
        parse_gates(output.fail_on, output.baseline)
        writers = choose_writers(pm, output.formats)
        executor = make_executor(output.executor, pm, progress, address=output.ray_address,
                                 retries=output.retries)
        try:  # the run folder last: nothing is written for input that cannot run
            plan = plan_fn(executor)
            store = store_location(output.out, output.store)
            baseline = load_baseline(output, plan, store)
            session = Session(plan, writers, output.out, command_line(), progress,
                              figure_format=output.figure_format, columns=output.columns,
                              store=None if output.no_store else store, baseline=baseline)
        except BaseException:
            executor.close()
            raise
    code = session.run(executor)
    if code == EXIT_INTERRUPTED:
        click.echo(f"\ninterrupted: {len(session.report.rows)} finished row(s) are in "
                   f"{session.run_dir}" + (f" and in {session.store} as incomplete run "
                                           f"{session.run_id}" if session.run_id else ""),
                   err=True)
        sys.exit(code)
    print_report(session.report)
    print_regressions(session)
    click.echo(f"\nreports: {session.run_dir}/ "
               f"({', '.join(w.filename for w in session.writers)})", err=True)
    if session.run_id:
        click.echo(f"recorded as run {session.run_id} in {session.store}", err=True)
    sys.exit(code)


def load_baseline(output: Output, plan: Any, store: Path) -> Any:
    """``--baseline`` and ``--fail-on`` checked against the plan and the baseline loaded,
    before anything runs (UsageError otherwise); None without ``--baseline``."""
    from archbench.report.baseline import parse_gates
    from archbench.store.resolve import load_baseline as load

    gates = parse_gates(output.fail_on, output.baseline, plan.settings.get("latency", True))
    if output.baseline_any_device and not output.baseline:
        raise UsageError("--baseline-any-device needs --baseline RUN")
    if not output.baseline:
        return None
    return load(output.baseline, store, plan, executor=output.executor,
                any_device=output.baseline_any_device, gates=gates)


def print_regressions(session: Any) -> None:
    """The gates' regressions against the baseline, in one block."""
    if session.regressions:
        gates = " ".join(f"--fail-on {g.spec}" for g in session.baseline.gates)
        click.echo(f"\nREGRESSIONS against baseline {session.baseline.run} ({gates}):")
        for line in session.regressions:
            click.echo(f"  {line}")


def print_report(report: Any) -> None:
    """The summary table, the derived tables, then one line per failed row."""
    from archbench.report.cells import text_table

    click.echo(text_table(report.summary_records(), report.summary_columns())
               if report.rows else "(no rows)")
    for title, rows in report.tables.items():
        if rows:
            click.echo(f"\n{title}")
            click.echo(text_table(rows))
    for row in report.rows:
        if row["status"] not in ("ok", "skipped"):
            click.echo(f"{row['model']} ({row['input']}): {row['status']}: {row['error']}")
    for note in report.notes:
        click.echo(f"\nnote: {note}")
