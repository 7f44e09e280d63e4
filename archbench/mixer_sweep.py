"""The sweep behind ``archbench mixers``: each registered token mixer alone, across
feature-map sizes (analytic and counted MACs, latency, memory), and the tables computed
from it (fitted slopes, the crossover against global MSA).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from archbench.mixers import (
    REFERENCE_MIXER,
    Layout,
    MixerConfig,
    TokenMixer,
    registered_mixers,
)
from archbench.spec import UsageError

# -- the sweep ---------------------------------------------------------------------------


def int_list(value: str, option: str) -> list[int]:
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
