"""How stable are latency ratios between models from one run to the next?

    python benchmarks/bench_stability.py [--runs 5] [--config "--threads 1" ...]

Runs ``archbench compare vit swin hornet`` ``--runs`` times per configuration, in fresh
processes, alternating the configurations (A B A B ...) so that drift of the machine hits
all alike. For each configuration prints, over its runs: the spread of each model's median
(max / min - 1), the spread of each ratio against the first model, the widest 95% ratio
interval, and how many rows were flagged ``contended``. The first configuration is the
reference (archbench's defaults); the last column is each spread against the reference's.
Not a test: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

TARGETS = ["vit", "swin", "hornet"]


def one_run(extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([sys.executable, "-m", "archbench", "compare", *TARGETS, "--out", out,
                        *extra], check=True, capture_output=True)
        return json.loads(next(Path(out).glob("*/report.json")).read_text())


def spreads(reports: list[dict]) -> dict[str, float]:
    """Over runs: max/min - 1 of each model's median and of each ratio to the first model."""
    result: dict[str, float] = {}
    medians: dict[str, list[float]] = {}
    ratios: dict[str, list[float]] = {}
    widest, busy = 0.0, 0
    for report in reports:
        rows = {r["model"]: r for r in report["rows"]}
        first = report["rows"][0]["model"]
        for model, row in rows.items():
            medians.setdefault(model, []).append(row["latency_ms_median"])
            busy += bool(row.get("contended"))
            if model != first:
                ratios.setdefault(f"{model}/{first}", []).append(
                    row["latency_ms_median"] / rows[first]["latency_ms_median"])
        for table in report["tables"].values():
            for r in table:
                if "ci95_low" in r and r.get("ci95_low"):
                    widest = max(widest, r["ci95_high"] / r["ci95_low"] - 1)
    for name, values in {**medians, **ratios}.items():
        result[name] = max(values) / min(values) - 1
    result["widest ratio CI (high/low - 1)"] = widest
    result["contended rows"] = busy
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--config", action="append", default=None,
                        help='extra compare options of one configuration, e.g. "--threads 1"'
                        ' (repeatable; the defaults are always the first)')
    args = parser.parse_args()
    configs = ["", *(args.config or ["--threads 1", "--warmup 10"])]
    reports: dict[str, list[dict]] = {c: [] for c in configs}
    for n in range(args.runs):
        for config in configs:
            reports[config].append(one_run(shlex.split(config)))
            print(f"run {n + 1}/{args.runs} [{config or 'defaults'}] done", file=sys.stderr)
    reference = spreads(reports[""])
    for config in configs:
        found = spreads(reports[config])
        print(f"\n[{config or 'defaults'}] over {args.runs} consecutive runs")
        for name, value in found.items():
            if name == "contended rows":
                print(f"  {name:36s} {int(value)}")
                continue
            against = value / reference[name] if reference.get(name) else float("nan")
            print(f"  {name:36s} {value * 100:6.1f}%   x{against:.2f} of defaults")


if __name__ == "__main__":
    main()
