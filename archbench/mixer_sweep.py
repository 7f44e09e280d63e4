"""``archbench mixers``: each registered token mixer alone, swept over feature-map sizes
(analytic and counted MACs, latency, memory, fitted slopes, the crossover against global
MSA).

Light at import (no torch, no pandas): ``archbench --help`` imports this module.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from archbench.mixers import (
    REFERENCE_MIXER,
    Layout,
    MixerConfig,
    TokenMixer,
    check_mixer_config,
    registered_mixers,
    unknown_mixer,
)
from archbench.spec import UsageError

# -- the sweep ---------------------------------------------------------------------------


def _int_list(value: str, option: str) -> list[int]:
    try:
        values = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"{option} {value!r}: expected comma-separated integers") from None
    if not values:
        raise UsageError(f"{option}: give at least one value")
    if min(values) < 1:
        raise UsageError(f"{option}: every value must be at least 1, got {min(values)}")
    return list(dict.fromkeys(values))


ELEMENT_BYTES = {"fp32": 4, "tf32": 4, "fp16": 2, "bf16": 2}


@dataclass
class _Item:
    mixer: TokenMixer
    cfg: MixerConfig
    row: dict[str, Any]
    fn: Callable[[], Any] | None = None
    trials: list[list[float]] = dataclasses.field(default_factory=list)


def crossover(
    sizes: Sequence[int], faster: Sequence[float], reference: Sequence[float]
) -> dict[str, Any]:
    """Where ``faster`` (latencies by size) drops below ``reference``: the first measured size
    where it is faster, and the size interpolated on log(size) against log(ratio)."""
    ratios = [f / r for f, r in zip(faster, reference)]
    first = next((s for s, q in zip(sizes, ratios) if q < 1), None)
    result: dict[str, Any] = {"first_faster_size": first, "crossover_size": None}
    if first is None:
        result["note"] = "never faster at the measured sizes"
    elif first == sizes[0]:
        result["crossover_size"] = None
        result["note"] = f"already faster at the smallest size {sizes[0]}"
    else:
        i = list(sizes).index(first)
        x0, x1 = math.log(sizes[i - 1]), math.log(sizes[i])
        y0, y1 = math.log(ratios[i - 1]), math.log(ratios[i])
        x = x0 + (0 - y0) * (x1 - x0) / (y1 - y0) if y1 != y0 else x1
        result["crossover_size"] = math.exp(x)
        result["crossover_tokens"] = math.exp(2 * x)
    result["latency_ratios"] = ", ".join(f"{s}: {q:.3g}" for s, q in zip(sizes, ratios))
    return result


def analysis_tables(rows: list[dict[str, Any]], order: list[str]) -> dict[str, list[dict]]:
    """The fitted log-log slopes per mixer and the crossover against global MSA."""
    from archbench.analysis_tables import fit_slope

    slopes = []
    by_mixer: dict[str, list[dict]] = {}
    for row in rows:
        by_mixer.setdefault(row["model"], []).append(row)
    for name in order:
        rs = sorted(by_mixer.get(name, []), key=lambda r: r["img_size"])
        ok = [r for r in rs if r["status"] == "ok"]
        entry: dict[str, Any] = {"mixer": name, "sizes": ", ".join(str(r["img_size"]) for r in rs)}
        for label, column, pool in (
            ("macs_formula", "macs_formula", rs),
            ("macs_counted", "macs_counted", rs),
            ("latency", "latency_ms_median", ok),
            ("memory", "memory_mb", ok),
        ):
            points = [(r["tokens"], r.get(column)) for r in pool if r.get(column)]
            entry[f"slope_{label}"] = fit_slope([p[0] for p in points], [p[1] for p in points])
        slopes.append(entry)
    tables = {"Scaling: log-log slopes against tokens (2 = quadratic, 1 = linear)": slopes}
    reference = {r["img_size"]: r for r in by_mixer.get(REFERENCE_MIXER, []) if r["status"] == "ok"}
    cross = []
    for name in order:
        if name == REFERENCE_MIXER:
            continue
        rs = sorted(
            (
                r
                for r in by_mixer.get(name, [])
                if r["status"] == "ok" and r["img_size"] in reference
            ),
            key=lambda r: r["img_size"],
        )
        if not rs or not all(r.get("latency_ms_median") for r in rs):
            continue
        sizes = [r["img_size"] for r in rs]
        entry = {
            "mixer": name,
            "against": REFERENCE_MIXER,
            **crossover(
                sizes,
                [r["latency_ms_median"] for r in rs],
                [reference[s]["latency_ms_median"] for s in sizes],
            ),
        }
        first_macs = next(
            (
                r["img_size"]
                for r in rs
                if r["macs_formula"] < reference[r["img_size"]]["macs_formula"]
            ),
            None,
        )
        entry["first_cheaper_size_macs"] = first_macs
        cross.append(entry)
    if cross:
        tables[
            "Crossover: latency against global MSA on this device (analytic: W-MSA is "
            "cheaper in MACs once N > M^2, Swin eqs. 1-2)"
        ] = cross
    return tables


def run_sweep(
    pm: Any,
    names: list[str],
    base: MixerConfig,
    sizes: list[int],
    device: str,
    dtype: str,
    budget_mb: float,
    warmup: int,
    min_time: float,
    repeat: int,
    progress: Callable[[str], None],
) -> list[dict[str, Any]]:
    """Build, count and time every (mixer, size); return one row each (see ``mixers_command``).

    Trials are interleaved across every (mixer, size) (A B C A B C ...) as in
    :class:`archbench.runner.Runner`, so drift hits every row alike.
    """
    import torch

    from archbench.builtin.latency import peak_memory_mb
    from archbench.complexity import CORE_HANDLERS, count_flops
    from archbench.runner import Runner, error_text, status_of
    from archbench.timing import MIN_ITERATIONS, summarize, time_trial
    from archbench.workload import torch_dtype

    mixers = registered_mixers()
    if device == "cpu":
        _return_freed_memory()
    items: list[_Item] = []
    for name in names:
        mixer = mixers[name]
        for size in sizes:
            cfg = dataclasses.replace(base, size=size)
            macs = mixer.macs(cfg)
            row: dict[str, Any] = {
                "model": name,
                "arch": mixer.plugin,
                "variant": name,
                "input": f"{size}x{size}",
                "img_size": size,
                "batch_size": cfg.batch,
                "device": device,
                "dtype": dtype,
                "mode": "infer",
                "mixer": name,
                "layout": mixer.layout,
                "tokens": cfg.tokens,
                "dim": cfg.dim,
                "heads": cfg.heads,
                "window": cfg.window,
                "order": cfg.order,
                "macs_formula": macs,
                "mixer_gmacs_formula": macs / 1e9,
            }
            item = _Item(mixer, cfg, row)
            items.append(item)
            if mixer.attention_bytes is not None:
                estimate = cfg.batch * mixer.attention_bytes(cfg) * ELEMENT_BYTES[dtype] / 2**20
                row["attention_mb_estimate"] = estimate
                if estimate > budget_mb:
                    row.update(
                        status="skipped",
                        error=f"attention matrix ~{estimate:.0f} MB "
                        f"> memory budget {budget_mb:.0f} MB (--max-memory)",
                    )
                    progress(f"{name} {size}x{size}: skipped ({row['error']})")
                    continue
            progress(f"{name} {size}x{size}: building and counting")
            try:
                module = mixer.build(cfg).eval()
                sample = _example(mixer.layout, cfg, 1)
                handlers = {
                    **CORE_HANDLERS,
                    **(mixer.flop_handlers() if mixer.flop_handlers else {}),
                }
                with torch.no_grad():
                    counted = count_flops(module, (sample,), handlers)
                row["macs_counted"] = counted.total
                row["gmacs"] = counted.total / 1e9
                row["macs_diff"] = (counted.total - macs) / macs if macs else None
                row["params"] = sum(p.numel() for p in module.parameters())
                module = module.to(device=device, dtype=torch_dtype(dtype))
                x = _example(mixer.layout, cfg, cfg.batch).to(
                    device=device, dtype=torch_dtype(dtype)
                )

                def fn(module=module, x=x):
                    with torch.no_grad():
                        return module(x)

                item.fn = fn
            except Exception as exc:
                row.update(status=status_of(exc), error=error_text(exc))
                progress(f"  {row['status']}: {row['error']}")
                Runner.release()
    live = [i for i in items if i.fn is not None]
    per_trial = min_time / repeat
    min_iterations = -(-MIN_ITERATIONS // repeat)
    for trial in range(repeat):
        for item in live:
            if item.fn is None:
                continue
            try:
                item.trials.append(
                    time_trial(
                        item.fn, device, warmup if trial == 0 else 1, per_trial, min_iterations
                    )
                )
            except Exception as exc:
                item.row.update(status=status_of(exc), error=error_text(exc))
                progress(
                    f"{item.row['model']} {item.row['input']}: {item.row['status']}: "
                    f"{item.row['error']}"
                )
                item.fn = None
                Runner.release()
        progress(f"trial {trial + 1}/{repeat} done")
    for item in live:
        if item.fn is None:
            continue
        try:
            stats = summarize(item.trials, item.cfg.batch)
            item.row.update(
                {
                    k: stats[k]
                    for k in (
                        "latency_ms_median",
                        "latency_ms_ci95_low",
                        "latency_ms_ci95_high",
                        "latency_ms_p10",
                        "latency_ms_p90",
                        "latency_ms_iqr",
                        "iterations",
                    )
                }
            )
            item.row["memory_mb"] = peak_memory_mb(item.fn, device)
            item.row.update(status="ok", error=None)
        except Exception as exc:
            item.row.update(status=status_of(exc), error=error_text(exc))
        item.fn = None
        Runner.release()
    rows = []
    for item in items:
        row = dict(item.row)
        status, error = row.pop("status", "error"), row.pop("error", None)
        rows.append({**row, "status": status, "error": error, "_trials": item.trials})
    return rows


def _return_freed_memory() -> None:
    """Make the CPU's RSS growth a repeatable peak: glibc's malloc keeps freed blocks below
    its (self-raising) mmap threshold in the heap, so a second forward pass shows ~0 growth.
    A fixed 64 KiB threshold (M_MMAP_THRESHOLD) returns every activation to the OS on free.
    No-op where the C library is not glibc."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-3, 64 * 1024)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


def _example(layout: Layout, cfg: MixerConfig, batch: int) -> Any:
    import torch

    gen = torch.Generator().manual_seed(0)
    shape = {
        "tokens": (batch, cfg.tokens, cfg.dim),
        "channels_first": (batch, cfg.dim, cfg.size, cfg.size),
        "channels_last": (batch, cfg.size, cfg.size, cfg.dim),
    }[layout]
    return torch.randn(shape, generator=gen)


# -- the command -------------------------------------------------------------------------


@click.command("mixers")
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
    import datetime as dt
    import shlex

    from archbench.cli import chosen_writers, fail, make_run_dir, resolve_device
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
        size_list = _int_list(sizes, "--sizes")
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
    from archbench.spec import RunSettings
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
    from archbench.cli import pd_table

    for title, table in report.tables.items():
        if table:
            click.echo(f"\n{title}")
            click.echo(pd_table(table))
    for row in report.rows:
        if row["status"] not in ("ok", "skipped"):
            click.echo(f"{row['model']} {row['input']}: {row['status']}: {row['error']}")
    click.echo(f"\nreports: {run_dir}", err=True)
    sys.exit(1 if any(r["status"] == "error" for r in report.rows) else 0)
