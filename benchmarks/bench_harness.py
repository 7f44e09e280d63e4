"""How much the harness itself costs, and how repeatable its medians are.

    python benchmarks/bench_harness.py overhead          # per-iteration cost of the timing loop
    python benchmarks/bench_harness.py repeat [ARCH...]  # two consecutive compares, medians compared

``overhead`` times an empty callable with archbench's CPU timing loop and reports the
per-iteration cost over a bare ``perf_counter`` loop doing the same calls (goal < 20 µs).
``repeat`` runs ``archbench compare ARCH... --threads T`` twice, one run after the other, and
prints each model's median latency in both and their difference (goal: within 3%).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from archbench.measure.timing import time_cpu


def overhead(iterations: int) -> None:
    def empty() -> None:
        return None

    start = time.perf_counter()
    for _ in range(iterations):
        empty()
    bare_us = (time.perf_counter() - start) / iterations * 1e6
    start = time.perf_counter()
    samples = time_cpu(empty, warmup=0, min_time=0.0, min_iterations=iterations)
    loop_us = (time.perf_counter() - start) / len(samples) * 1e6
    inside_us = statistics.median(samples) * 1e3
    print(f"iterations: {len(samples)}")
    print(f"bare loop: {bare_us:.3f} µs/iter; archbench loop: {loop_us:.3f} µs/iter")
    print(f"harness overhead per iteration: {loop_us - bare_us:.3f} µs (goal < 20 µs)")
    print(f"median of what an empty model reads as its latency: {inside_us:.3f} µs")


def compare_medians(archs: list[str], threads: int, min_time: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as out:
        program = Path(sys.executable).with_name("archbench")
        subprocess.run([str(program), "compare", *archs, "--device", "cpu", "--threads",
                        str(threads), "--min-time", str(min_time), "--out", out],
                       check=True, capture_output=True)
        (run,) = Path(out).iterdir()
        rows = json.loads((run / "report.json").read_text())["rows"]
    return {row["model"]: row["latency_ms_median"] for row in rows}


def repeat(archs: list[str], threads: int, min_time: float) -> None:
    first = compare_medians(archs, threads, min_time)
    second = compare_medians(archs, threads, min_time)
    print(f"{'model':<16} {'run 1 ms':>10} {'run 2 ms':>10} {'diff':>8}")
    worst = 0.0
    for model, ms in first.items():
        diff = second[model] / ms - 1
        worst = max(worst, abs(diff))
        print(f"{model:<16} {ms:10.2f} {second[model]:10.2f} {diff:+8.2%}")
    print(f"largest difference: {worst:.2%} (goal: within 3%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    sub.add_parser("overhead").add_argument("--iterations", type=int, default=200_000)
    rep = sub.add_parser("repeat")
    rep.add_argument("archs", nargs="*", default=["vit", "swin", "hornet"])
    rep.add_argument("--threads", type=int, default=2)
    rep.add_argument("--min-time", type=float, default=5.0)
    args = parser.parse_args()
    if args.what == "overhead":
        overhead(args.iterations)
    else:
        repeat(args.archs, args.threads, args.min_time)


if __name__ == "__main__":
    main()
