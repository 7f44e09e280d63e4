"""The ``archbench`` command line.

Start-up stays light: torch, timm, fvcore and pandas are imported only by the commands
that measure, after every argument has been checked.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shlex
import sys
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
    for arch, name in registry.match(pattern):
        variant = arch.variants[name]
        rows.append({
            "name": f"{arch.name}:{name}",
            "default": name == arch.default_variant,
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
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins_command(as_json: bool) -> None:
    """Show installed plugins: distribution, version, hooks implemented, load errors.

    \b
    Example:
      archbench plugins --json
    """
    from dataclasses import asdict

    pm, _ = _setup()
    infos = list(pm.infos.values())
    if as_json:
        click.echo(json.dumps([asdict(i) for i in infos], indent=2))
        return
    for info in infos:
        click.echo(f"{info.name} ({info.kind}; {info.distribution} {info.version}; {info.module})")
        if info.error:
            click.echo(f"  FAILED TO LOAD: {info.error}")
        else:
            click.echo(f"  hooks: {', '.join(info.hooks) or '-'}")


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


def make_run_dir(out: Path, specs: list[ModelSpec], kind: str) -> Path:
    """A fresh folder under ``out`` for this run; fails with exit 2 if it cannot be written."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    names = "_".join(dict.fromkeys(s.arch.name for s in specs))[:40]
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


@main.command("compare")
@click.argument("targets", nargs=-1, required=True, metavar="ARCH[:VARIANT]...")
@click.option("--img-size", type=int, help="Input resolution for image models "
              "(default: each variant's own).")
@click.option("--seq-len", type=int, help="Sequence length for token models "
              "(default: each variant's own).")
@click.option("--batch-size", "batch_sizes", multiple=True, metavar="N[,N...]",
              help="Batch size(s) for latency; repeatable or comma-separated. Default 1.")
@click.option("--device", default="auto", show_default=True,
              help="auto, cpu, cuda or cuda:N.")
@click.option("--dtype", type=click.Choice(["fp32", "fp16", "bf16"]), default="fp32",
              show_default=True, help="Evaluation dtype (counting always runs in fp32).")
@click.option("--warmup", type=click.IntRange(min=0), default=3, show_default=True,
              help="Untimed iterations before timing.")
@click.option("--min-time", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Seconds of timed iterations per row (at least 5 iterations).")
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads for torch "
              "(default: torch's own choice; recorded either way).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("results"),
              show_default=True, help="Folder that receives a fresh run folder.")
@click.option("--format", "formats", multiple=True, metavar="FMT",
              help="Report format(s): csv, md, json (default all) or a plugin's.")
@click.option("--no-latency", is_flag=True, help="Complexity only: params, FLOPs, formulas.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config field of every model (ARCH.KEY=VALUE for one "
              "architecture), e.g. --set depth=6.")
@click.option("--debug", is_flag=True, help="Print tracebacks of failed rows.")
def compare_command(targets: tuple[str, ...], img_size: int | None, seq_len: int | None,
                    batch_sizes: tuple[str, ...], device: str, dtype: str, warmup: int,
                    min_time: float, threads: int | None, out: Path, formats: tuple[str, ...],
                    no_latency: bool, overrides: tuple[str, ...], debug: bool) -> None:
    """Build, count and time each ARCH[:VARIANT]; print one table and write the reports.

    Each architecture's default variant is in the papers' ~4.5 GMACs class
    (ViT: DeiT-S, Swin: tiny, HorNet: tiny), so 'archbench compare vit swin hornet' is an
    iso-FLOP comparison. See 'archbench list' for names.

    \b
    Examples:
      archbench compare vit swin hornet
      archbench compare vit:small vit:base --batch-size 1,8 --threads 2
      archbench compare vit:base --img-size 384 --no-latency --set depth=6
    """
    pm, registry = _setup()
    sizes = _batch_sizes(batch_sizes)
    try:
        specs = resolve_specs(registry, targets, img_size, seq_len, _overrides(overrides))
        for spec in specs:
            pm.hook.archbench_validate(spec=spec)
    except UsageError as exc:
        fail(str(exc))
    writers = {w.format: w for ws in reversed(pm.hook.archbench_report_writers()) for w in ws}
    unknown = [f for f in formats if f not in writers]
    if unknown:
        fail(f"--format {unknown[0]!r}: choose from {', '.join(sorted(writers))}")
    chosen = [writers[f] for f in dict.fromkeys(formats or writers)]
    device = resolve_device(device)
    settings = RunSettings(batch_sizes=sizes, device=device, dtype=dtype, warmup=warmup,
                           min_time=min_time, threads=threads, latency=not no_latency,
                           debug=debug)
    run_dir = make_run_dir(out, specs, "compare")
    sys.exit(execute(pm, specs, settings, run_dir, chosen, "compare"))


def execute(pm, specs: list[ModelSpec], settings: RunSettings, run_dir: Path,
            writers: list, kind: str) -> int:
    """Run the specs, print the table, and return the exit code."""
    import dataclasses

    from archbench import environment
    from archbench.report import Report
    from archbench.runner import Runner

    report = Report(
        kind=kind,
        command=shlex.join(["archbench", *sys.argv[1:]]),
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        environment=environment.collect(settings.device),
        settings={k: v for k, v in dataclasses.asdict(settings).items()},
    )
    runner = Runner(pm, settings, report, run_dir, writers)
    try:
        runner.run(specs)
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted: {len(report.rows)} finished row(s) are in {run_dir}",
                   err=True)
        return EXIT_INTERRUPTED
    print_table(report)
    click.echo(f"\nreports: {run_dir}{os.sep} ({', '.join(w.filename for w in writers)})",
               err=True)
    failed = [r for r in report.rows if r["status"] != "ok"]
    return EXIT_FAILED_ROWS if failed else 0


def print_table(report: Any) -> None:
    frame = report.summary_frame()
    click.echo(frame.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    for row in report.rows:
        if row["status"] != "ok":
            click.echo(f"{row['model']}: {row['status']}: {row['error']}")
