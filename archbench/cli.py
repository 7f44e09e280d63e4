"""The ``archbench`` command line.

Start-up stays light: torch, timm, fvcore and pandas are imported only by the commands
that measure, after every argument has been checked.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fnmatch
import json
import os
import re
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from archbench import __version__
from archbench.spec import ModelSpec, RunSettings, UsageError

EXIT_USAGE = 2
EXIT_FAILED_ROWS = 1
EXIT_INTERRUPTED = 130


def fail(message: str) -> NoReturn:
    """A one-line error and exit code 2: the user's input cannot work."""
    click.echo(f"archbench: error: {message}", err=True)
    sys.exit(EXIT_USAGE)


def _setup():
    """The plugin manager and the architecture registry (no torch)."""
    from pluggy import PluginValidationError

    from archbench.plugins import get_plugin_manager
    from archbench.registry import Registry

    try:
        pm = get_plugin_manager()
        return pm, Registry.from_plugins(pm)
    except PluginValidationError as exc:
        fail(f"invalid plugin: {exc}")
    except UsageError as exc:
        fail(str(exc))


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="archbench")
def main() -> None:
    """Compare vision-Transformer architectures, measured, side by side.

    \b
    Example:
      archbench compare vit swin hornet
    """


# -- list -----------------------------------------------------------------------------


@main.command("list")
@click.argument("pattern", default="*")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_command(pattern: str, as_json: bool) -> None:
    """List architectures and their variants matching PATTERN (fnmatch, e.g. 'vit:base*').

    \b
    Examples:
      archbench list
      archbench list 'swin:*384'
    """
    _, registry = _setup()
    rows = []
    try:
        matches = registry.match(pattern)
    except UsageError as exc:
        fail(str(exc))
    for arch, name, variant in matches:
        rows.append({
            "name": f"{arch.name}:{name}",
            "default": name == arch.default_variant and name in arch.variants,
            "family": arch.family,
            "input_kind": arch.input_kind,
            "input": f"seq {variant.seq_len}" if arch.input_kind == "tokens"
            else f"{variant.img_size}x{variant.img_size}",
            "description": variant.description,
            "plugin": arch.plugin,
            "paper": arch.paper,
            "config": dict(variant.config),
        })
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if ":" not in pattern:
        for arch in registry.architectures.values():
            if arch.find_variants is not None and fnmatch.fnmatchcase(arch.name, pattern):
                rows.append({"name": f"{arch.name}:<name>", "default": False,
                             "family": arch.family, "input_kind": arch.input_kind,
                             "input": "model's own", "plugin": arch.plugin,
                             "paper": arch.paper, "description": arch.description or
                             f"list them: archbench list '{arch.name}:*PATTERN*'"})
    if not rows:
        fail(f"no architecture matches {pattern!r}; known: {', '.join(registry.names())}")
    from tabulate import tabulate

    table = [[r["name"] + (" *" if r["default"] else ""), r["family"], r["input_kind"],
              r["input"], r["description"], r["plugin"]] for r in rows]
    click.echo(tabulate(table, headers=["name (* default)", "family", "kind", "input",
                                        "description", "plugin"]))
    papers = {(r["family"], r["paper"]) for r in rows}
    click.echo("\n" + "\n".join(f"{family}: {paper}" for family, paper in sorted(papers)))


# -- plugins --------------------------------------------------------------------------


@main.command("plugins")
@click.argument("name", required=False)
@click.option("--hook", "hook_name", metavar="HOOK", help="Only plugins implementing HOOK.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins_command(name: str | None, hook_name: str | None, as_json: bool) -> None:
    """Show installed plugins: distribution, version, hooks implemented, load errors.

    \b
    Examples:
      archbench plugins
      archbench plugins vit --json
      archbench plugins --hook archbench_analyze
    """
    from dataclasses import asdict

    from archbench import hookspecs

    pm, _ = _setup()
    infos = list(pm.infos.values())
    if name is not None:
        infos = [i for i in infos if i.name == name]
        if not infos:
            fail(f"no plugin named {name!r} is installed; installed: "
                 f"{', '.join(sorted(pm.infos))}")
    if hook_name is not None:
        if not hook_name.startswith("archbench_"):
            hook_name = f"archbench_{hook_name}"
        if not hasattr(hookspecs, hook_name):
            hooks = sorted(h for h in dir(hookspecs) if h.startswith("archbench_"))
            fail(f"--hook {hook_name!r} is not an archbench hook; hooks: {', '.join(hooks)}")
        infos = [i for i in infos if hook_name in i.hooks]
    if as_json:
        click.echo(json.dumps([asdict(i) for i in infos], indent=2))
        return
    for info in infos:
        click.echo(f"{info.name} ({info.kind}; {info.distribution} {info.version}; {info.module})")
        if info.error:
            click.echo(f"  FAILED TO LOAD: {info.error}")
        else:
            click.echo(f"  hooks: {', '.join(info.hooks) or '-'}")


# -- report ---------------------------------------------------------------------------


@main.command("report")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path),
                metavar="RUN_DIR...")
@click.option("--out", type=click.Path(path_type=Path), default=Path("results"),
              show_default=True, help="Folder that receives the merged run folder.")
def report_command(run_dirs: tuple[Path, ...], out: Path) -> None:
    """Merge run folders (from several machines or days) into one report.

    Rows keep their run, device and environment; report.md flags a table that mixes
    devices.

    \b
    Example:
      archbench report results/20261125-101500-compare-vit results/20261126-*-compare-vit
    """
    pm, _ = _setup()
    from archbench.report import merge_runs

    try:
        merged = merge_runs(list(run_dirs), shlex.join(["archbench", *sys.argv[1:]]),
                            dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    except UsageError as exc:
        fail(str(exc))
    run_dir = make_run_dir(out, "report", sorted({r["arch"] for r in merged.rows}))
    for writer in report_writers(pm).values():
        writer.write(merged, run_dir)
    print_table(merged)
    for note in merged.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(f"\nreports: {run_dir}{os.sep}", err=True)


# -- compare --------------------------------------------------------------------------


def _batch_sizes(values: tuple[str, ...]) -> tuple[int, ...]:
    sizes = []
    for value in values or ("1",):
        for part in value.split(","):
            try:
                size = int(part)
            except ValueError:
                fail(f"--batch-size {part!r} is not an integer")
            if size < 1:
                fail(f"--batch-size must be at least 1, got {size}")
            sizes.append(size)
    return tuple(dict.fromkeys(sizes))


def _overrides(values: tuple[str, ...]) -> dict[str, str]:
    result = {}
    for item in values:
        key, eq, value = item.partition("=")
        if not eq or not key:
            fail(f"--set {item!r}: expected KEY=VALUE (e.g. --set depth=6)")
        result[key.strip()] = value.strip()
    return result


def resolve_device(device: str) -> str:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` → a device string that exists here."""
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", device):
        fail(f"--device {device!r}: expected auto, cpu, cuda or cuda:N")
    if device == "cpu":
        return device
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available():
        fail(f"--device {device}: CUDA is not available here (torch {torch.__version__}); "
             "use --device cpu")
    index = int(device.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        fail(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) here")
    return device


def resolve_specs(registry, targets: tuple[str, ...], img_size: int | None,
                  seq_len: int | None, overrides: dict[str, str]) -> list[ModelSpec]:
    """Every target as a spec, with every input-size rule checked; raises UsageError."""
    for option, value in (("--img-size", img_size), ("--seq-len", seq_len)):
        if value is not None and value < 1:
            raise UsageError(f"{option} must be at least 1, got {value}")
    specs = [registry.resolve(t, img_size=img_size, seq_len=seq_len, overrides=overrides)
             for t in targets]
    kinds = {s.arch.input_kind for s in specs}
    if img_size is not None and "image" not in kinds:
        raise UsageError(f"--img-size applies to image models; {specs[0].name} takes token "
                         "sequences: use --seq-len")
    if seq_len is not None and "tokens" not in kinds:
        raise UsageError(f"--seq-len applies to token models; {specs[0].name} takes images: "
                         "use --img-size")
    for spec in specs:
        limit = spec.arch.max_seq_len
        if spec.seq_len is not None and limit is not None and spec.seq_len > limit:
            raise UsageError(f"{spec.name}: --seq-len {spec.seq_len} is above the "
                             f"architecture's maximum of {limit}")
    return specs


def report_writers(pm) -> dict[str, Any]:
    """Format name → writer; a later plugin's writer replaces an earlier one's."""
    return {w.format: w for ws in reversed(pm.hook.archbench_report_writers()) for w in ws}


def make_run_dir(out: Path, kind: str, arch_names: list[str]) -> Path:
    """A fresh folder under ``out`` for this run; fails with exit 2 if it cannot be written."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    names = "_".join(dict.fromkeys(arch_names))[:40]
    try:
        out.mkdir(parents=True, exist_ok=True)
        for n in range(1000):
            run_dir = out / (f"{stamp}-{kind}-{names}" + ("" if n == 0 else f"-{n}"))
            try:
                run_dir.mkdir()
                break
            except FileExistsError:
                continue
        probe = run_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        fail(f"--out {out}: cannot write there ({exc.strerror or exc})")
    return run_dir


def measurement_options(command: Callable) -> Callable:
    """The options ``compare`` and ``sweep`` share: how models are built, timed and reported."""
    options = [
        click.option("--batch-size", "batch_sizes", multiple=True, metavar="N[,N...]",
                     help="Batch size(s) for latency; repeatable or comma-separated. "
                     "Default 1."),
        click.option("--max-batch", is_flag=True, help="Find the largest batch that fits "
                     "(doubling, then bisection) and time that; not with --batch-size."),
        click.option("--max-memory", type=click.FloatRange(min=1), metavar="MB",
                     help="Memory budget for --max-batch (default: 90% of free memory)."),
        click.option("--device", default="auto", show_default=True,
                     help="auto, cpu, cuda or cuda:N."),
        click.option("--dtype", type=click.Choice(["fp32", "tf32", "fp16", "bf16"]),
                     default="fp32", show_default=True,
                     help="Evaluation dtype; TF32 matmuls only with tf32 (counting always "
                     "runs in fp32)."),
        click.option("--amp", "amp", is_flag=True,
                     help="Shorthand for --dtype bf16 (fp16 on GPUs without bf16)."),
        click.option("--mode", type=click.Choice(["infer", "train"]), default="infer",
                     show_default=True, help="Time a forward pass, or a training step "
                     "(forward, loss, backward, SGD step)."),
        click.option("--channels-last", is_flag=True, help="Channels-last memory format."),
        click.option("--compile", "compile_mode", is_flag=False, flag_value="default",
                     default=None, metavar="[MODE]",
                     help="torch.compile the model (default, reduce-overhead, max-autotune);"
                     " compile time is its own column."),
        click.option("--cuda-graphs", is_flag=True, help="Replay a captured CUDA graph."),
        click.option("--warmup", type=click.IntRange(min=0), default=3, show_default=True,
                     help="Untimed iterations before the first trial."),
        click.option("--min-time", type=click.FloatRange(min=0), default=1.0,
                     show_default=True, help="Seconds of timed iterations per row, over "
                     "all trials (at least 5 iterations)."),
        click.option("--repeat", type=click.IntRange(min=1), default=5, show_default=True,
                     help="Trials per row; models are interleaved across trials."),
        click.option("--threads", type=click.IntRange(min=1), help="CPU threads for torch "
                     "(default: torch's own choice; recorded either way)."),
        click.option("--out", type=click.Path(path_type=Path), default=Path("results"),
                     show_default=True, help="Folder that receives a fresh run folder."),
        click.option("--format", "formats", multiple=True, metavar="FMT",
                     help="Report format(s): csv, md, json (default all) or a plugin's."),
        click.option("--no-latency", is_flag=True,
                     help="Complexity only: params, FLOPs, formulas."),
        click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                     help="Override a config field of every model (ARCH.KEY=VALUE for one "
                     "architecture), e.g. --set depth=6."),
        click.option("--debug", is_flag=True, help="Print tracebacks of failed rows."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def run_settings(pm, specs: list[ModelSpec], o: dict[str, Any]) -> RunSettings:
    """Check the measurement options against each other and the machine; exit 2 if bad."""
    if o["max_batch"] and o["batch_sizes"]:
        fail("--max-batch finds the batch size itself; drop --batch-size")
    dtype = o["dtype"]
    device = resolve_device(o["device"])
    if o["amp"]:
        dtype = "bf16"
        if device.startswith("cuda"):
            import torch

            dtype = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if o["cuda_graphs"] and not device.startswith("cuda"):
        fail(f"--cuda-graphs needs a CUDA device; this run is on {device}")
    if o["compile_mode"] is not None:
        import torch

        if not hasattr(torch, "compile"):
            fail(f"--compile needs torch.compile (torch >= 2.0); this is torch "
                 f"{torch.__version__}")
        if o["compile_mode"] not in ("default", "reduce-overhead", "max-autotune",
                                     "max-autotune-no-cudagraphs"):
            fail(f"--compile {o['compile_mode']!r}: expected default, reduce-overhead or "
                 "max-autotune")
    if o["mode"] == "train":
        check_trainable(pm, specs)
    return RunSettings(
        batch_sizes=_batch_sizes(o["batch_sizes"]), device=device, dtype=dtype,
        warmup=o["warmup"], min_time=o["min_time"], repeat=o["repeat"], threads=o["threads"],
        latency=not o["no_latency"], mode=o["mode"], channels_last=o["channels_last"],
        compile=o["compile_mode"], cuda_graphs=o["cuda_graphs"], max_batch=o["max_batch"],
        max_memory_mb=o["max_memory"], debug=o["debug"],
    )


def check_trainable(pm, specs: list[ModelSpec]) -> None:
    """``--mode train`` needs parameters that require grad; checked on the meta device."""
    import torch

    for spec in specs:
        with torch.device("meta"):
            model = pm.hook.archbench_build_model(spec=spec)
        if model is not None and not any(p.requires_grad for p in model.parameters()):
            fail(f"--mode train: {spec.name} has no parameters that require grad")


def chosen_writers(pm, formats: tuple[str, ...]) -> list:
    writers = report_writers(pm)
    unknown = [f for f in formats if f not in writers]
    if unknown:
        fail(f"--format {unknown[0]!r}: choose from {', '.join(sorted(writers))}")
    return [writers[f] for f in dict.fromkeys(formats or writers)]


def validated_specs(pm, registry, targets, img_sizes, seq_lens, overrides,
                    mixer: str | None = None) -> list[ModelSpec]:
    """Every target at every requested input size, checked by the core and the plugins;
    ``mixer`` (``--mixer``) swaps every model's token mixer."""
    try:
        specs = []
        for img_size in img_sizes:
            for seq_len in seq_lens:
                specs += resolve_specs(registry, targets, img_size, seq_len,
                                       _overrides(overrides))
        if mixer is not None:
            from archbench.mixers import registered_mixers, unknown_mixer

            names = list(registered_mixers(pm))
            if mixer not in names:
                raise UsageError(f"--mixer: {unknown_mixer(mixer, names)}")
            specs = [s.replace(mixer=mixer) for s in specs]
        unique = list({(s.name, s.input_desc): s for s in specs}.values())
        for spec in unique:
            pm.hook.archbench_validate(spec=spec)
        return unique
    except UsageError as exc:
        fail(str(exc))


@main.command("compare")
@click.argument("targets", nargs=-1, required=True, metavar="ARCH[:VARIANT]...")
@click.option("--img-size", type=int, help="Input resolution for image models "
              "(default: each variant's own).")
@click.option("--seq-len", type=int, help="Sequence length for token models "
              "(default: each variant's own).")
@click.option("--mixer", metavar="NAME", help="Build every model with this token mixer in "
              "every block (see 'archbench mixers'), e.g. swin:tiny --mixer msa.")
@measurement_options
def compare_command(targets: tuple[str, ...], img_size: int | None, seq_len: int | None,
                    mixer: str | None, **options: Any) -> None:
    """Build, count and time each ARCH[:VARIANT]; print one table and write the reports.

    Each architecture's default variant is in the papers' ~4.5 GMACs class
    (ViT: DeiT-S, Swin: tiny, HorNet: tiny), so 'archbench compare vit swin hornet' is an
    iso-FLOP comparison. See 'archbench list' for names.

    \b
    Examples:
      archbench compare vit swin hornet
      archbench compare vit:small vit:base --batch-size 1,8 --threads 2
      archbench compare vit:base --img-size 384 --no-latency --set depth=6
      archbench compare vit swin hornet --device cuda --dtype bf16 --batch-size 1,64
      archbench compare swin:tiny hornet:tiny --mixer msa --no-latency
    """
    pm, registry = _setup()
    specs = validated_specs(pm, registry, targets, [img_size], [seq_len], options["overrides"],
                            mixer=mixer)
    writers = chosen_writers(pm, options["formats"])
    settings = run_settings(pm, specs, options)
    run_dir = make_run_dir(options["out"], "compare", [s.arch.name for s in specs])
    sys.exit(execute(pm, specs, settings, run_dir, writers, "compare"))


def _sizes(value: str | None, option: str) -> list[int | None]:
    if value is None:
        return [None]
    try:
        return [int(v) for v in value.split(",")]
    except ValueError:
        fail(f"{option} {value!r}: expected comma-separated integers, e.g. 224,384")


@main.command("sweep")
@click.argument("targets", nargs=-1, required=True, metavar="ARCH[:VARIANT]...")
@click.option("--img-sizes", help="Image sizes for image models, e.g. 224,384,512,768.")
@click.option("--seq-lens", help="Sequence lengths for token models, e.g. 128,512,2048.")
@measurement_options
def sweep_command(targets: tuple[str, ...], img_sizes: str | None, seq_lens: str | None,
                  **options: Any) -> None:
    """Cost against input size for whole models, with fitted log-log slopes.

    Every ARCH[:VARIANT] runs at every size; the report adds, per model, the slope of
    log(GMACs), log(latency) and log(memory) against log(tokens) (≈2 where global
    attention dominates, ≈1 for windowed attention and convolutions).

    \b
    Examples:
      archbench sweep vit swin hornet --img-sizes 224,384,512,768 --no-latency
      archbench sweep transformer --seq-lens 128,512,2048
    """
    if img_sizes is None and seq_lens is None:
        fail("give --img-sizes (image models) and/or --seq-lens (token models)")
    pm, registry = _setup()
    specs = []
    images = [t for t in targets if registry.get(t.partition(":")[0]).input_kind == "image"]
    tokens = [t for t in targets if t not in images]
    if images:
        specs += validated_specs(pm, registry, images, _sizes(img_sizes, "--img-sizes"),
                                 [None], options["overrides"])
    if tokens:
        specs += validated_specs(pm, registry, tokens, [None],
                                 _sizes(seq_lens, "--seq-lens"), options["overrides"])
    writers = chosen_writers(pm, options["formats"])
    settings = run_settings(pm, specs, options)
    run_dir = make_run_dir(options["out"], "sweep", [s.arch.name for s in specs])
    sys.exit(execute(pm, specs, settings, run_dir, writers, "sweep"))


def execute(pm, specs: list[ModelSpec], settings: RunSettings, run_dir: Path,
            writers: list, kind: str) -> int:
    """Run the specs, print the table, and return the exit code."""
    from archbench import analysis_tables, environment
    from archbench.report import Report
    from archbench.runner import Runner
    from archbench.workload import apply_precision_flags

    flags = apply_precision_flags(settings)
    report = Report(
        kind=kind,
        command=shlex.join(["archbench", *sys.argv[1:]]),
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        environment={**environment.collect(settings.device), **flags},
        settings=dataclasses.asdict(settings),
    )
    runner = Runner(pm, settings, report, run_dir, writers)
    try:
        runner.run(specs)
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted: {len(report.rows)} finished row(s) are in {run_dir}",
                   err=True)
        return EXIT_INTERRUPTED
    if settings.latency and len(report.rows) > 1:
        report.tables["Latency ratios (95% bootstrap CI; not significant where it spans 1)"] = (
            analysis_tables.latency_ratios(report))
    if kind == "sweep":
        report.tables["Scaling: log-log slopes against tokens"] = (
            analysis_tables.scaling_slopes(report))
    runner.write()
    print_table(report)
    for title, rows in report.tables.items():
        if rows:
            click.echo(f"\n{title}")
            click.echo(pd_table(rows))
    click.echo(f"\nreports: {run_dir}{os.sep} ({', '.join(w.filename for w in writers)})",
               err=True)
    failed = [r for r in report.rows if r["status"] != "ok"]
    return EXIT_FAILED_ROWS if failed else 0


def pd_table(rows: list[dict]) -> str:
    import pandas as pd

    return pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.4g}")


def print_table(report: Any) -> None:
    frame = report.summary_frame()
    click.echo(frame.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    for row in report.rows:
        if row["status"] != "ok":
            click.echo(f"{row['model']}: {row['status']}: {row['error']}")


# -- mixers --------------------------------------------------------------------------


@main.command("mixers")
@click.argument("names", nargs=-1, metavar="[MIXER...]")
@click.option("--dim", type=int, default=96, show_default=True, help="Channels C.")
@click.option("--heads", type=int, default=3, show_default=True, help="Attention heads.")
@click.option(
    "--window", type=int, default=7, show_default=True, help="Window M of w-msa / sw-msa."
)
@click.option("--order", type=int, default=3, show_default=True, help="gnConv order (1..5).")
@click.option(
    "--sizes",
    default="7,14,28,56,112",
    show_default=True,
    metavar="S[,S...]",
    help="Feature-map sides h = w.",
)
@click.option("--batch-size", type=int, default=1, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option(
    "--dtype",
    type=click.Choice(["fp32", "tf32", "fp16", "bf16"]),
    default="fp32",
    show_default=True,
)
@click.option(
    "--max-memory",
    type=click.FloatRange(min=0, min_open=True),
    metavar="MB",
    help="Skip sizes whose attention matrix (batch x heads x N^2 x bytes) is larger "
    "(default: 90% of the device's free memory).",
)
@click.option("--warmup", type=click.IntRange(min=0), default=1, show_default=True)
@click.option(
    "--min-time",
    type=click.FloatRange(min=0),
    default=0.3,
    show_default=True,
    help="Seconds of timed iterations per row, over all trials (at least 5 iterations).",
)
@click.option(
    "--repeat",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Trials per row; rows are interleaved across trials.",
)
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads for torch.")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("results"),
    show_default=True,
    help="Folder that receives a run folder.",
)
@click.option(
    "--format",
    "formats",
    multiple=True,
    metavar="FMT",
    help="Report format(s): csv, md, json (default all).",
)
def mixers_command(
    names: tuple[str, ...],
    dim: int,
    heads: int,
    window: int,
    order: int,
    sizes: str,
    batch_size: int,
    device: str,
    dtype: str,
    max_memory: float | None,
    warmup: int,
    min_time: float,
    repeat: int,
    threads: int | None,
    out: Path,
    formats: tuple[str, ...],
) -> None:
    """Each token mixer alone, against the feature-map size: analytic and counted MACs,
    latency, memory, fitted log-log slopes and the W-MSA / MSA latency crossover.

    Global MSA (ViT) is quadratic in the tokens N = h·w; W-MSA / SW-MSA (Swin) and gnConv
    (HorNet) are linear. Default MIXER list: every registered one.

    \b
    Examples:
      archbench mixers
      archbench mixers msa w-msa --sizes 14,28,56 --dim 128 --heads 4
      archbench mixers --device cuda --dtype bf16 --batch-size 8 --max-memory 4000
    """

    from archbench.mixer_sweep import analysis_tables, int_list, run_sweep
    from archbench.mixers import (
        REFERENCE_MIXER,
        MixerConfig,
        check_mixer_config,
        registered_mixers,
        unknown_mixer,
    )
    from archbench.plugins import get_plugin_manager

    try:
        pm = get_plugin_manager()
        mixers = registered_mixers(pm)
        if not mixers:
            raise UsageError("no token mixer is registered (archbench_token_mixers)")
        for name in names:
            if name not in mixers:
                raise UsageError(unknown_mixer(name, list(mixers)))
        # Default: every registered mixer, global MSA (the reference) first.
        chosen = list(dict.fromkeys(names)) or sorted(
            mixers, key=lambda n: (n != REFERENCE_MIXER, list(mixers).index(n))
        )
        size_list = int_list(sizes, "--sizes")
        base = MixerConfig(
            dim=dim, heads=heads, window=window, order=order, size=size_list[0], batch=batch_size
        )
        for name in chosen:
            for size in size_list:
                check_mixer_config(mixers[name], dataclasses.replace(base, size=size))
    except UsageError as exc:
        fail(str(exc))
    writers = chosen_writers(pm, formats)
    device = resolve_device(device)
    if dtype == "fp16" and device == "cpu":
        fail("--dtype fp16 needs a CUDA device; use bf16 on the CPU")
    import torch

    from archbench import environment
    from archbench.report import Report
    from archbench.runner import device_budget_mb
    from archbench.workload import apply_precision_flags

    if threads:
        torch.set_num_threads(threads)
    settings = RunSettings(
        batch_sizes=(batch_size,),
        device=device,
        dtype=dtype,
        warmup=warmup,
        min_time=min_time,
        repeat=repeat,
        threads=threads,
        max_memory_mb=max_memory,
    )
    budget = device_budget_mb(settings)
    flags = apply_precision_flags(settings)
    run_dir = make_run_dir(out, "mixers", chosen)
    report = Report(
        kind="mixers",
        command=shlex.join(["archbench", *sys.argv[1:]]),
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        environment={**environment.collect(device), **flags},
        settings={
            **dataclasses.asdict(settings),
            **dataclasses.asdict(base),
            "sizes": size_list,
            "memory_budget_mb": budget,
        },
    )

    def progress(message: str) -> None:
        click.echo(message, err=True)

    try:
        rows = run_sweep(
            pm, chosen, base, size_list, device, dtype, budget, warmup, min_time, repeat, progress
        )
    except KeyboardInterrupt:
        click.echo("\ninterrupted", err=True)
        sys.exit(130)
    for row in rows:
        trials = row.pop("_trials")
        report.add_row(row, {"latency_samples_ms": trials} if trials else {})
    report.tables.update(analysis_tables(report.rows, chosen))
    report.tables["Token mixers: cost against size"] = [
        {
            "mixer": r["model"],
            "size": r["img_size"],
            "tokens": r["tokens"],
            "gmacs_formula": r["macs_formula"] / 1e9,
            "gmacs_counted": (r["macs_counted"] / 1e9) if r.get("macs_counted") else None,
            "diff": r.get("macs_diff"),
            "latency_ms": r.get("latency_ms_median"),
            "memory_mb": r.get("memory_mb"),
            "status": r["status"],
        }
        for r in report.rows
    ]
    for writer in writers:
        writer.write(report, run_dir)
    for title, table in report.tables.items():
        if table:
            click.echo(f"\n{title}")
            click.echo(pd_table(table))
    for row in report.rows:
        if row["status"] not in ("ok", "skipped"):
            click.echo(f"{row['model']} {row['input']}: {row['status']}: {row['error']}")
    click.echo(f"\nreports: {run_dir}", err=True)
    sys.exit(1 if any(r["status"] == "error" for r in report.rows) else 0)
